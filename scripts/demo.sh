#!/usr/bin/env bash
# The main job: builds hpsearch (installing what is missing), then runs a real study end to end on this
# machine's CPU: a coordinator (`hpsearch serve`) and two `hpsearch-worker`s over gRPC on loopback, the
# CPU demo study examples/banking77-tiny.yaml (a tiny random-init GPT-2 on the full Banking77 text: five
# trials, the best retrained and evaluated on test), the results in a SQLite file and a report.
#
#   HPSEARCH_DEMO_DIR   where the database, artifacts and report go (default: out/demo)
#   HPSEARCH_DEMO_STUDY the study file (default: examples/banking77-tiny.yaml)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}
work=${HPSEARCH_DEMO_DIR:-$root/out/demo}
study=${HPSEARCH_DEMO_STUDY:-$root/examples/banking77-tiny.yaml}
"$root/scripts/build.sh"
bin=$build_dir/bin

echo "== the seed experiment's study file (a GPU study) validates:"
"$bin/hpsearch" validate --quiet "$root/examples/banking77-seed.yaml"

mkdir -p "$work"
# One core per worker: LibTorch's and OpenBLAS's threads would otherwise fight over the two cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# OpenBLAS mistakes some virtual CPUs for old ones and picks slow kernels (measured 2x); name the core
# when the CPU has AVX-512 and the user has not chosen.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=SkylakeX
fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin/hpsearch" serve --db "$work/results.db" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  address=$(sed -n 's/^hpsearch serve: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.log")
  [ -n "$address" ] && break
  sleep 0.1
done
if [ -z "${address:-}" ]; then
  echo "demo: the coordinator did not start; see $work/serve.log" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
echo "== coordinator on $address (database $work/results.db)"
for name in worker-1 worker-2; do
  "$bin/hpsearch-worker" --coordinator "$address" --name "$name" --threads 1 >"$work/$name.log" 2>&1 &
  pids+=($!)
done

start=$(date +%s)
echo "== hpsearch submit $(basename "$study") --wait"
"$bin/hpsearch" submit "$study" --coordinator "$address" --wait --resume
echo "== finished in $(( $(date +%s) - start )) s"
"$bin/hpsearch" trials "$(sed -n 's/^name: *//p' "$study" | head -1)" --coordinator "$address"
name=$(sed -n 's/^name: *//p' "$study" | head -1)
"$bin/hpsearch" report "$name" --db "$work/results.db" -o "$work/report"
echo "== report: $work/report/report.md   results: sqlite3 $work/results.db 'SELECT * FROM trial_summary'"
