#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest (tests that cannot run on this machine,
# such as GPU kernels without a GPU, are reported as skipped).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}
start=$(date +%s)
"$root/scripts/build.sh"
built=$(date +%s)
echo "test: build took $((built - start)) s"
cd "$build_dir"
status=0
ctest --output-on-failure -j "${HPSEARCH_JOBS:-$(nproc)}" --timeout 600 || status=$?
echo "test: tests took $(( $(date +%s) - built )) s"
exit $status
