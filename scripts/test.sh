#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest (tests that cannot run on this machine,
# such as GPU kernels without a GPU, are reported as skipped).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}
start=$(date +%s)
"$root/scripts/build.sh"
# The Kubernetes manifests' validator (npm, pinned by its package-lock.json): installed once, and again
# when the lockfile changes; no network is needed after that.
k8s_check=$root/tests/deploy/kubernetes
if [ ! -f "$k8s_check/node_modules/.package-lock.json" ] ||
  [ "$k8s_check/package-lock.json" -nt "$k8s_check/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$k8s_check" --no-audit --no-fund --loglevel=error
fi
built=$(date +%s)
echo "test: build took $((built - start)) s"
cd "$build_dir"
status=0
# Under the trial reaper as a subreaper: a process any test leaves running (a daemon, a grandchild that
# called setsid) is listed and stopped, and fails the run (exit 3), instead of outliving the suite.
"$build_dir/bin/hpsearch-trial-reaper" --fail-on-leftovers --grace-ms 10000 -- \
  ctest --output-on-failure -j "${HPSEARCH_JOBS:-$(nproc)}" --timeout 600 || status=$?
[ "$status" -ne 3 ] || echo "test: the tests left the processes listed above running" >&2
echo "test: tests took $(( $(date +%s) - built )) s"
exit $status
