#!/usr/bin/env bash
# The main job: builds hpsearch (installing what is missing), then runs a real study end to end on this
# machine's CPU with `hpsearch run`: an embedded coordinator and two `hpsearch-worker` processes over gRPC on
# loopback run the CPU demo study examples/banking77-tiny.yaml (a tiny random-init GPT-2 on the full
# Banking77 text: five trials, the best retrained on train + validation and evaluated on test), keep the
# results in a SQLite file, write a report, and export the trained model with a README. Last, it fits a
# classical baseline (TF-IDF + logistic regression, bench/peer/tfidf_logreg_baseline.py) on the same
# splits and prints both test accuracies side by side; the baseline runs after the study, outside its time.
#
#   HPSEARCH_DEMO_DIR   where the database, artifacts, logs, report and adapter go (default: out/demo);
#                       a second run on the same folder resumes (or just re-prints) the study there
#   HPSEARCH_DEMO_STUDY the study file (default: examples/banking77-tiny.yaml)
#   HPSEARCH_DEMO_SKIP_BUILD=1  use the programs already built in the build folder (no install, no build)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}
work=${HPSEARCH_DEMO_DIR:-$root/out/demo}
study=${HPSEARCH_DEMO_STUDY:-$root/examples/banking77-tiny.yaml}
if [ "${HPSEARCH_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  "$root/scripts/build.sh"
fi
bin=$build_dir/bin
# Debian's Python: the baseline needs python3-sklearn and python3-yaml (scripts/install-deps.sh).
python=/usr/bin/python3

echo "== the seed experiment's study file (a GPU study) validates:"
"$bin/hpsearch" validate --quiet "$root/examples/banking77-seed.yaml"

mkdir -p "$work"
# OpenBLAS and OpenMP threads spin by default; with one worker per core they should sleep instead.
export OMP_WAIT_POLICY=PASSIVE
# OpenBLAS mistakes some virtual CPUs for old ones and picks slow kernels (measured 2x); name the core
# when the CPU has AVX-512 and the user has not chosen.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=SkylakeX
fi

name=$(sed -n 's/^name: *//p' "$study" | head -1)
echo "== hpsearch run $(basename "$study") --workers 2 --db $work/results.db"
# Two CPU workers (each gets half the cores); Ctrl-C stops cleanly and running this script again resumes.
run_started=$SECONDS
"$bin/hpsearch" run "$study" --workers 2 --db "$work/results.db" --report "$work/report"
run_seconds=$((SECONDS - run_started))

echo "== the trained model, exported with how it was trained:"
rm -rf "$work/adapter"
"$bin/hpsearch" export "$name" --db "$work/results.db" -o "$work/adapter"
printf '%s\n' '{"text": "I still have not received my new card"}' \
  '{"text": "How do I change my PIN?"}' '{"text": "Why was I charged a fee for topping up?"}' \
  > "$work/texts.jsonl"
max_length=$(sed -n 's/^ *max_length: *\([0-9]*\).*/\1/p' "$study" | head -1)
echo "== hpsearch-core predict on three new texts:"
"$bin/hpsearch-core" predict --adapter "$work/adapter" --input "$work/texts.jsonl" \
  ${max_length:+--max-length "$max_length"} | sed 's/, *"probabilities":\[[^]]*\]//'
echo "== report: $work/report/report.md   adapter: $work/adapter/README.md"
echo "   results: sqlite3 $work/results.db 'SELECT * FROM trial_summary'"

# The final trial's test accuracy, from the results database (read-only).
ours=$("$python" - "$work/results.db" "$name" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute(
    "SELECT r.test_accuracy FROM final_results r JOIN trials t USING (trial_id) "
    "JOIN studies s USING (study_id) WHERE s.name = ? AND t.kind = 'final' "
    "ORDER BY t.number DESC LIMIT 1", (sys.argv[2],)).fetchone()
print("-" if row is None or row[0] is None else f"{row[0]:.4f}")
PY
)
echo "== a classical baseline on the same splits, fitted now (outside the study's time):"
echo "   $python bench/peer/tfidf_logreg_baseline.py ${study#"$root"/}"
"$python" "$root/bench/peer/tfidf_logreg_baseline.py" "$study" --json > "$work/baseline.json"
"$python" - "$work/baseline.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"   C={r['best_C']:g} chosen on validation, refitted on {r['retrain_on'].replace('_', ' + ')}, "
      f"{r['fit_seconds_all']:.1f} s of fitting")
PY
theirs=$("$python" -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["test"]["accuracy"])' \
  "$work/baseline.json")
printf '== hpsearch run took %dm%02ds on %s cores\n' $((run_seconds / 60)) $((run_seconds % 60)) "$(nproc)"
echo "test accuracy: hpsearch $ours vs TF-IDF + logistic regression $theirs"
