#!/usr/bin/env bash
# scripts/gpu_versions.py's rules (the first phase of scripts/gpu-check.sh), on versions given through
# HPSEARCH_GPU_CHECK_VERSIONS, so they hold whatever GPU, driver and toolkit this machine has. Fake
# toolkits (scripts that print an nvcc release) stand in for /usr/local/cuda-X.Y.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
# expect NAME RC TEXT VERSIONS [ARGS...]: runs the check with VERSIONS and wants exit RC and TEXT in its
# output.
expect() {
  local name=$1 want_rc=$2 want_text=$3 versions=$4
  shift 4
  local output rc
  output=$(HPSEARCH_GPU_CHECK_VERSIONS=$versions python3 "$root/scripts/gpu_versions.py" \
    --nvcc "$tmp/none/nvcc" --json "$tmp/versions.json" --toolkits "$tmp/cuda-{major}.*/bin/nvcc" \
    "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want_rc" ] || [[ "$output" != *"$want_text"* ]]; then
    echo "FAILED: $name: exit $rc (want $want_rc), output (want '$want_text'):"
    echo "$output"
    failed=1
  else
    echo "ok: $name"
  fi
}
base="driver=550.54.15,driver_cuda=12.4"
expect "matching versions" 0 "toolkit         12.4" "$base,toolkit=12.4,torch_cuda=12.4"
expect "an older driver minor: a note" 0 "minor version compatibility" \
  "driver=535.104.05,driver_cuda=12.2,toolkit=12.4,torch_cuda=12.4"
expect "a CPU-only PyTorch" 4 "is not a CUDA build" "$base,toolkit=12.4,torch_cuda="
expect "no driver" 4 "no NVIDIA driver answers" "driver=,driver_cuda=,toolkit=12.4,torch_cuda=12.4"
expect "nvcc 13 with a cu12 LibTorch, no other toolkit" 4 "differ in major version" \
  "$base,toolkit=13.0,torch_cuda=12.4"
expect "a driver too old for LibTorch" 4 "older than LibTorch's CUDA 13.0" \
  "$base,toolkit=13.0,torch_cuda=13.0"
expect "the versions land in the JSON" 0 "" "$base,toolkit=12.4,torch_cuda=12.4"
grep -q '"torch_cuda": "12.4"' "$tmp/versions.json" || { echo "FAILED: versions.json lacks torch_cuda"; failed=1; }
# A matching toolkit installed beside the wrong one is switched to, and said so.
mkdir -p "$tmp/cuda-12.1/bin" "$tmp/cuda-12.6/bin"
for v in 12.1 12.6; do
  printf '#!/bin/sh\necho "Cuda compilation tools, release %s, V%s.0"\n' "$v" "$v" >"$tmp/cuda-$v/bin/nvcc"
  chmod +x "$tmp/cuda-$v/bin/nvcc"
done
expect "switches to the newest matching toolkit" 0 "use-nvcc $tmp/cuda-12.6/bin/nvcc" \
  "driver=560.35,driver_cuda=12.6,toolkit=13.0,torch_cuda=12.4"
exit $failed
