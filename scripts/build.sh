#!/usr/bin/env bash
# Configures and builds hpsearch in build/ (or $HPSEARCH_BUILD_DIR), installing missing Debian packages
# first. CUDA kernels are compiled when nvcc is at /usr/local/cuda/bin/nvcc (or $CUDACXX); with
# HPSEARCH_REQUIRE_CUDA=1 a missing CUDA compiler is an error (CI sets it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}

if [ "$(id -u)" -eq 0 ]; then
  "$root/scripts/install-deps.sh"
elif ! "$root/scripts/install-deps.sh" >/dev/null 2>&1; then
  echo "build: some Debian packages are missing; installing them with sudo" >&2
  sudo "$root/scripts/install-deps.sh"
fi

# Release: debug info alone costs a third of the build time in LibTorch-heavy files.
cmake_args=(-G Ninja "-DCMAKE_BUILD_TYPE=${HPSEARCH_BUILD_TYPE:-Release}")
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [ -x "$nvcc" ]; then
  cmake_args+=(-DCMAKE_CUDA_COMPILER="$nvcc")
fi
if [ "${HPSEARCH_REQUIRE_CUDA:-0}" = 1 ]; then
  cmake_args+=(-DHPSEARCH_REQUIRE_CUDA=ON)
fi

# HPSEARCH_CMAKE_ARGS is a list of words (-DA=1 -DB=2).
# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" "${cmake_args[@]}" ${HPSEARCH_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "${HPSEARCH_JOBS:-$(nproc)}"
