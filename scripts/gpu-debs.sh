#!/usr/bin/env bash
# Brings the Debian 12 packages of hpsearch's service stack (gRPC, protobuf, SQLite, Abseil, spdlog,
# yaml-cpp, CLI11, nlohmann-json, Catch2 and the libraries they need) to a GPU machine that has a
# compiler, CMake, CUDA and PyTorch but none of these, and cannot reach a package registry.
#
#   scripts/gpu-debs.sh download          # on a Debian 12 machine with apt: the .deb files into .gpu-debs/
#   scripts/gpu-debs.sh unpack [PREFIX]   # on the GPU machine: dpkg -x each one into PREFIX
#   scripts/gpu-debs.sh env [PREFIX]      # prints the exports a build and a run there need
#
# PREFIX defaults to /tmp/hpsearch-debs. .gpu-debs/ is git-ignored: copy it beside the checkout on the GPU
# machine (about 22 MB). Nothing is installed: the packages are unpacked into PREFIX and used from there
# (CMAKE_PREFIX_PATH at configure time, LD_LIBRARY_PATH at build and run time). docs/gpu.md has the whole
# procedure and its traps.
#
# The C library, the C++ runtime and the toolchain are the GPU machine's own and are never brought: their
# Debian packages are left out of the download. The binaries in these packages need glibc 2.36 or newer.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
debs_dir=${HPSEARCH_GPU_DEBS:-$root/.gpu-debs}

# What hpsearch's CMakeLists.txt finds outside LibTorch (the same names as scripts/install-deps.sh).
roots=(
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libabsl-dev libspdlog-dev libyaml-cpp-dev libcli11-dev
  nlohmann-json3-dev catch2
)
# The GPU machine's own: the C library and its headers, the C++ runtime, pkg-config, and what only
# libc6-dev pulls in. Unpacking Debian's glibc headers into PREFIX would shadow the machine's own.
own='^(gcc-[0-9]+-base|libc6|libc6-dev|libc-dev-bin|libcrypt1|libcrypt-dev|libgcc-s1|libstdc\+\+6|linux-libc-dev|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|rpcsvc-proto|libcom-err2|libgssapi-krb5-2|libk5crypto3|libkeyutils1|libkrb5-3|libkrb5support0|pkgconf|pkgconf-bin|libpkgconf3)$'

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

download() {
  if ! command -v apt-get >/dev/null || ! command -v apt-cache >/dev/null; then
    echo "gpu-debs: download needs apt-get and apt-cache (a Debian 12 machine)" >&2
    exit 1
  fi
  local packages
  packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${roots[@]}" | grep -v '^[ <]' | sort -u | grep -Ev "$own")
  mkdir -p "$debs_dir"
  # shellcheck disable=SC2086  # one word per package
  (cd "$debs_dir" && apt-get download -q $packages)
  echo "gpu-debs: $(find "$debs_dir" -name '*.deb' | wc -l) packages, $(du -sh "$debs_dir" | cut -f1), in $debs_dir"
}

unpack() {
  local prefix=$1
  local debs=("$debs_dir"/*.deb)
  [ -e "${debs[0]}" ] || { echo "gpu-debs: no .deb files in $debs_dir: run 'scripts/gpu-debs.sh download' on a Debian 12 machine and copy the folder here" >&2; exit 1; }
  mkdir -p "$prefix"
  for deb in "${debs[@]}"; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$prefix"
    else
      # No dpkg: a .deb is an ar archive holding data.tar.*.
      local tmp
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$prefix")
      rm -rf "$tmp"
    fi
  done
  echo "gpu-debs: ${#debs[@]} packages unpacked into $prefix"
  echo "gpu-debs: now run: eval \"\$(scripts/gpu-debs.sh env $prefix)\""
}

env_lines() {
  local prefix=$1
  local lib=$prefix/usr/lib/x86_64-linux-gnu
  [ -d "$lib" ] || { echo "gpu-debs: $lib is missing: run 'scripts/gpu-debs.sh unpack $prefix' first" >&2; exit 1; }
  # CMake finds the packages' config files and protoc under the prefix; protoc, grpc_cpp_plugin and the
  # programs built against these libraries load them from LD_LIBRARY_PATH (Debian's libraries carry no
  # RPATH, and the linker resolves their own dependencies through it too).
  echo "export HPSEARCH_DEBS_PREFIX=$prefix"
  echo "export CMAKE_PREFIX_PATH=$prefix/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
  echo "export LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  echo "export PATH=$prefix/usr/bin:\$PATH"
}

case "${1:-}" in
  download) download ;;
  unpack) unpack "${2:-/tmp/hpsearch-debs}" ;;
  env) env_lines "${2:-/tmp/hpsearch-debs}" ;;
  *) usage ;;
esac
