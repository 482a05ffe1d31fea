#!/usr/bin/env bash
# The CUDA build of the whole worker, then the tiny demo study on one GPU, on a machine that has a compiler,
# CMake, Ninja, CUDA and a CUDA PyTorch but not hpsearch's service libraries and no registry to fetch them
# from (docs/gpu.md). The Debian packages come from .gpu-debs/ (made beforehand on a Debian 12 machine with
# `scripts/gpu-debs.sh download`) and are unpacked under /tmp, never installed.
#
#   scripts/gpu-demo.sh [OUT_DIR]       # default out/gpu-demo
#
#   HPSEARCH_PYTHON       the python3 whose torch is used (default: python3 on PATH)
#   HPSEARCH_DEBS_PREFIX  where the packages are unpacked (default /tmp/hpsearch-debs)
#   HPSEARCH_BUILD_DIR    the build folder (default build-gpu)
#   CUDACXX               nvcc (default /usr/local/cuda/bin/nvcc)
#   HPSEARCH_CUDA_ARCH    CMAKE_CUDA_ARCHITECTURES (default 90: Hopper, H100/H200)
#
# OUT_DIR receives gpu-demo.log (everything below), versions.json (scripts/gpu_versions.py), report.md, results.db and logs.tar.gz (coordinator and
# worker logs, the report's pictures, the linked libraries of the worker).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/out/gpu-demo}" && cd "${1:-$root/out/gpu-demo}" && pwd)
prefix=${HPSEARCH_DEBS_PREFIX:-/tmp/hpsearch-debs}
python=${HPSEARCH_PYTHON:-python3}
build_dir=${HPSEARCH_BUILD_DIR:-$root/build-gpu}
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
work=$(mktemp -d /tmp/hpsearch-gpu-demo.XXXXXX)
exec > >(tee "$out/gpu-demo.log") 2>&1
step() { echo "== $(date +%T) $*"; }

step "machine"
nvidia-smi -L || true
"$python" - <<'EOF'
import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "C++11 ABI", torch.compiled_with_cxx11_abi())
assert torch.cuda.is_available(), "this torch sees no GPU"
assert torch.compiled_with_cxx11_abi(), "this torch uses the old C++ ABI: use a cxx11-ABI LibTorch (docs/gpu.md)"
print("GPU 0:", torch.cuda.get_device_name(0))
EOF
torch_cmake=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')

step "driver, CUDA toolkit and LibTorch CUDA versions (scripts/gpu_versions.py)"
# Stops here, saying what to change, when they cannot work together; switches to an installed toolkit of
# LibTorch's CUDA major version when $nvcc is of another.
if ! "$python" "$root/scripts/gpu_versions.py" --nvcc "$nvcc" --json "$out/versions.json" | tee "$work/versions.out"; then
  echo "gpu-demo: STOPPED: the driver, the CUDA toolkit and LibTorch cannot work together (above)"
  exit 4
fi
switched=$(sed -n 's/^use-nvcc //p' "$work/versions.out")
[ -n "$switched" ] && nvcc=$switched

step "the Debian service packages, unpacked into $prefix"
"$root/scripts/gpu-debs.sh" unpack "$prefix"
eval "$("$root/scripts/gpu-debs.sh" env "$prefix")"

step "configure (LibTorch from $torch_cmake)"
# --disable-new-dtags: the build RPATH (torch's lib folder and the unpacked packages') becomes DT_RPATH,
# which the loader also applies to the libraries' own dependencies, so the programs run without
# LD_LIBRARY_PATH. No warnings as errors: this compiler and these LibTorch headers are not CI's.
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHPSEARCH_WERROR=OFF \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$torch_cmake" \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="${HPSEARCH_CUDA_ARCH:-90}" \
  -DHPSEARCH_REQUIRE_CUDA=ON -DHPSEARCH_BUILD_TESTS=OFF -DHPSEARCH_BUILD_BENCH=OFF \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags"
step "build"
start=$(date +%s)
cmake --build "$build_dir" -j "$(nproc)" --target hpsearch hpsearch-worker hpsearch-core
echo "built in $(( $(date +%s) - start )) s"
bin=$build_dir/bin
env -u LD_LIBRARY_PATH ldd "$bin/hpsearch-worker" >"$work/ldd-hpsearch-worker.txt"
grep -E "not found|torch|grpc|protobuf|cudart" "$work/ldd-hpsearch-worker.txt" || true

step "the demo study on cuda:0"
db=$work/results.db
study=$root/examples/banking77-tiny.yaml
name=$(sed -n 's/^name: *//p' "$study" | head -1)
start=$(date +%s)
if "$bin/hpsearch" run --help >/dev/null 2>&1; then
  "$bin/hpsearch" run "$study" --devices cuda:0 --db "$db" | tee "$work/run.log"
else
  # `hpsearch run` is not in this build: the same study with a coordinator, one worker and submit.
  "$bin/hpsearch" serve --db "$db" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
  serve_pid=$!
  trap 'kill $serve_pid ${worker_pid:-} 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    address=$(sed -n 's/^hpsearch serve: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.log")
    [ -n "$address" ] && break
    sleep 0.1
  done
  "$bin/hpsearch-worker" --coordinator "$address" --device cuda:0 --name gpu0 >"$work/worker.log" 2>&1 &
  worker_pid=$!
  "$bin/hpsearch" submit "$study" --coordinator "$address" --wait
  "$bin/hpsearch" trials "$name" --coordinator "$address"
  "$bin/hpsearch" report "$name" --db "$db" -o "$work/report"
fi
echo "demo finished in $(( $(date +%s) - start )) s"

step "what ran where"
"$python" - "$db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("workers:", db.execute("SELECT name, device FROM workers").fetchall())
for row in db.execute("SELECT * FROM trial_summary"):
    print(row)
EOF
report=$(find "$work" "$(dirname "$db")" -name report.md 2>/dev/null | head -1)
[ -n "$report" ] && cp "$report" "$out/report.md"
cp "$db" "$out/results.db"
tar -czf "$out/logs.tar.gz" -C "$work" --exclude results.db --exclude 'results.db-*' .
step "done: $out"
