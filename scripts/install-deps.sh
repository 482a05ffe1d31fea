#!/usr/bin/env bash
# Installs every Debian 12 package hpsearch builds, tests and runs with. Idempotent: packages already
# present are left alone and apt-get is only called when something is missing. Run as root.
#
#   scripts/install-deps.sh             # everything: build, test and run
#   scripts/install-deps.sh --runtime   # only what the built programs load (container images' last stage)
set -euo pipefail

# The shared libraries hpsearch, hpsearch-worker and hpsearch-core load, and the Python the example
# command trials run with. Keep in step with the -dev packages below.
runtime_packages=(
  libgrpc++1.51 libprotobuf32 libsqlite3-0 libabsl20220623 libspdlog1.10 libyaml-cpp0.7
  libtorch1.13 libopenblas0 openssl ca-certificates libcpp-httplib0.11
  python3 python3-sklearn python3-numpy
)

packages=(
  # toolchain, and the linters scripts/check-deploy.sh runs on docker/ and deploy/
  cmake ninja-build g++ pkg-config git shellcheck yamllint
  # fuzzing (scripts/fuzz.sh, outside the default build): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # service stack
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3 libabsl-dev libspdlog-dev libyaml-cpp-dev libcli11-dev libssl-dev
  # the web dashboard's HTTP server (a compiled library; its header wants zlib's and brotli's)
  libcpp-httplib-dev zlib1g-dev libbrotli-dev
  # TLS: the tests make their certificates with the openssl CLI (docs/security.md shows the commands)
  openssl
  # training core (LibTorch 1.13 CPU; OpenBLAS so torch does not fall back to the reference BLAS)
  libtorch-dev libopenblas-dev
  # header-only libraries shared by every part
  nlohmann-json3-dev catch2
  # example command trials and Python peers (run with /usr/bin/python3; the TF-IDF baseline reads the
  # study file with python3-yaml); the Python package python/
  # (python3-grpcio + python3-protobuf, stubs generated with protoc + grpc_python_plugin above; pandas for
  # data frames; pytest runs its tests; pip, setuptools, wheel and venv install it offline)
  python3 python3-sklearn python3-optuna python3-numpy python3-grpcio python3-protobuf python3-pandas
  python3-yaml
  python3-pytest python3-pip python3-setuptools python3-wheel python3-venv
  # the Slurm launcher's test runs a throw-away single-node Slurm (tests/deploy/slurm_launcher_test.sh)
  slurmctld slurmd slurm-client munge
  # the Kubernetes manifests' check (tests/deploy/kubernetes/): Node.js runs a validator npm installed
  nodejs npm
  # the dashboard's browser tests (tests/dashboard/) drive headless Chromium
  chromium
)

case "${1:-}" in
  --runtime) packages=("${runtime_packages[@]}") ;;
  "") ;;
  *) echo "install-deps: unknown argument '$1' (use --runtime or nothing)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  # Node.js from elsewhere (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's)
  # is as good as Debian's.
  if { [ "$p" = nodejs ] || [ "$p" = npm ]; } && command -v node >/dev/null && command -v npm >/dev/null; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (sudo $0) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Update the package lists when they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
