#!/usr/bin/env bash
# gpu-check.sh: the one command a GPU session runs on the device machine for issue 7. It builds the
# core alone (HPSEARCH_CORE_ONLY) against the machine's own PyTorch (CUDA LibTorch) with all cores,
# runs the kernel comparison tests and the core tests, the seed-shape benchmark and its Hugging Face
# + PEFT peer in the same run, and makes the Hugging Face logits fixture; everything it learns goes
# under $OUT (at most 8 files, as the device tool returns them):
#
#   $OUT/summary.json   every phase's status and seconds, the figures of both sides, the ratio
#   $OUT/env.txt        GPU, driver, nvcc, torch / transformers / peft versions
#   $OUT/build.log      configure + build output
#   $OUT/tests.log      kernel tests, then ctest of the core tests (CUDA cases included)
#   $OUT/bench.log      seed_shape_bench and hf_peft_peer output
#   $OUT/bench.json     seed_shape_bench's figures;  $OUT/peer.json: the peer's
#   $OUT/hf_fixture.tar.gz  tests/data/hf_gpt2_fixture (commit it: tests/core/hf_fixture_test.cc)
#
# Phases run in order of value under one deadline (HPSEARCH_GPU_CHECK_SECONDS, default 480): a phase
# that no longer fits is skipped and says so; a failing phase does not stop the later ones. Build
# errors do not stop it either (ninja -k 0): what did build still runs.
#
# Header-only build dependencies the device lacks (nlohmann-json, Catch2 v2) travel as Debian
# packages in .gpu-debs/ (git-ignored; fetch them here with scripts/gpu-check.sh --fetch-debs, then
# name .gpu-debs in the tool's carry list) and are unpacked under /tmp, never into /.
#
# HPSEARCH_GPU_CHECK_FAKE=1 rehearses the script on a machine without a GPU (Debian's CPU LibTorch,
# a tiny model on the CPU; the CUDA test cases, the peer and the fixture report skipped), so a GPU
# session does not spend device minutes on a typo:
#   OUT=/tmp/gpu-out HPSEARCH_GPU_CHECK_FAKE=1 scripts/gpu-check.sh
# (HPSEARCH_GPU_CHECK_BUILD=DIR reuses an existing core-only build directory to save the compile.)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "${1:-}" = "--fetch-debs" ]; then
  # Run here (not on the device): Debian 12's header-only packages, downloaded, not installed.
  mkdir -p "$root/.gpu-debs" && cd "$root/.gpu-debs" || exit 1
  apt-get download nlohmann-json3-dev catch2 || exit 1
  ls -l "$root/.gpu-debs"
  exit 0
fi

out=${OUT:?"gpu-check: OUT must name the folder to write results to (the device tool sets it)"}
mkdir -p "$out"
fake=${HPSEARCH_GPU_CHECK_FAKE:-0}
budget=${HPSEARCH_GPU_CHECK_SECONDS:-480}
work=${HPSEARCH_GPU_CHECK_WORK:-/tmp/hpsearch-gpu-check}
build=${HPSEARCH_GPU_CHECK_BUILD:-$work/build}  # a rehearsal may point it at an existing build
jobs=${HPSEARCH_JOBS:-$(nproc)}
start=$(date +%s)
mkdir -p "$work"
summary="$work/phases.jsonl"
: >"$summary"

left() { echo $((budget - ($(date +%s) - start))); }
# What is left minus RESERVE seconds for the phases after, at least 30.
budget_after() {
  local b=$(($(left) - $1))
  [ "$b" -lt 30 ] && b=30
  echo "$b"
}
# phase NAME STATUS SECONDS NOTE: one line of the summary.
phase() {
  printf '{"phase":"%s","status":"%s","seconds":%s,"note":"%s"}\n' "$1" "$2" "$3" "${4//\"/\'}" >>"$summary"
  printf 'gpu-check: %-10s %-8s %4ss %s\n' "$1" "$2" "$3" "$4"
}
# run_phase NAME NEEDED_SECONDS LOG COMMAND...: runs COMMAND under what is left of the deadline.
run_phase() {
  local name=$1 needed=$2 log=$3
  shift 3
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt "$needed" ]; then
    phase "$name" skipped 0 "needs ${needed}s, ${remaining}s left"
    return 1
  fi
  local t0=$SECONDS rc
  echo "==== $name: $* (limit ${remaining}s)" >>"$log"
  timeout --kill-after=10 "$remaining" "$@" >>"$log" 2>&1
  rc=$?
  local took=$((SECONDS - t0))
  case $rc in
    0) phase "$name" ok "$took" "" ;;
    77) phase "$name" skipped "$took" "not applicable here (exit 77)" ;;
    3) phase "$name" skipped "$took" "missing Python packages (exit 3); see $(basename "$log")" ;;
    124 | 137) phase "$name" timeout "$took" "deadline reached" ;;
    *) phase "$name" failed "$took" "exit $rc; see $(basename "$log")" ;;
  esac
  return $rc
}

# ---- env
{
  echo "date: $(date -u +%FT%TZ)  fake: $fake  jobs: $jobs  budget: ${budget}s"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || true
  (command -v nvcc >/dev/null && nvcc --version | tail -2) || echo "nvcc: not on PATH"
  python3 - <<'EOF' 2>&1 || true
import importlib
for name in ("torch", "transformers", "peft"):
    try:
        m = importlib.import_module(name)
        extra = f" cuda {m.version.cuda} available {m.cuda.is_available()}" if name == "torch" else ""
        print(f"{name} {m.__version__}{extra}")
    except Exception as e:  # noqa: BLE001 - report whatever is missing
        print(f"{name}: {e}")
EOF
  cmake --version | head -1
  ninja --version 2>/dev/null | sed 's/^/ninja /'
  c++ --version | head -1
} >"$out/env.txt" 2>&1

# ---- deps: header-only Debian packages unpacked under $work/debs
prefix_path=""
if ls "$root"/.gpu-debs/*.deb >/dev/null 2>&1; then
  for deb in "$root"/.gpu-debs/*.deb; do dpkg -x "$deb" "$work/debs" || echo "gpu-check: cannot unpack $deb" >&2; done
  prefix_path="$work/debs/usr"
fi
if [ "$fake" = 1 ]; then
  torch_prefix=""  # Debian's LibTorch is found without help
  cuda_args=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES=80)
else
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 -DHPSEARCH_REQUIRE_CUDA=ON)
fi
[ -n "$torch_prefix" ] && prefix_path="$torch_prefix${prefix_path:+;$prefix_path}"

# ---- configure + build: the kernels, the core, the bench first; the tests after.
generator=(-G Ninja)
keep_going=(-- -k 0)
if ! command -v ninja >/dev/null; then
  generator=()
  keep_going=(-- -k)
fi
run_phase configure 30 "$out/build.log" \
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DHPSEARCH_CORE_ONLY=ON \
  -DHPSEARCH_WERROR=OFF ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} "${cuda_args[@]}"
build_targets() { cmake --build "$build" -j "$jobs" --target "$@" "${keep_going[@]}"; }
run_phase build-main 60 "$out/build.log" build_targets kernels_tests seed_shape_bench
bin="$build/bin"

# ---- kernel comparison tests (they report skipped without a device)
if [ -x "$bin/kernels_tests" ]; then
  run_phase kernels 20 "$out/tests.log" "$bin/kernels_tests" --reporter compact --durations yes
else
  phase kernels skipped 0 "kernels_tests did not build"
fi

# ---- the benchmark, then the peer on the same data
bench_args=(--json "$work/bench.json" --export-data "$work/seed_data.json")
peer_args=(--data "$work/seed_data.json" --json "$work/peer.json")
if [ "$fake" = 1 ]; then
  bench_args+=(--device cpu --layers 2 --width 64 --heads 2 --max-train 64 --max-test 32 --epochs 1
    --steps 3 --warmup 1 --threads 1)
  peer_args+=(--device cpu --layers 2 --width 64 --heads 2 --dtype float32)
fi
if [ -x "$bin/seed_shape_bench" ]; then
  # The full run is skipped by the bench itself when its steps predict it would not fit.
  run_phase bench 90 "$out/bench.log" "$bin/seed_shape_bench" "${bench_args[@]}" \
    --max-seconds "$(budget_after 150)"
  cp "$work/bench.json" "$out/bench.json" 2>/dev/null
else
  phase bench skipped 0 "seed_shape_bench did not build"
fi
if [ -f "$work/seed_data.json" ]; then
  PYTHONUNBUFFERED=1 run_phase peer 60 "$out/bench.log" python3 "$root/bench/peer/hf_peft_peer.py" \
    "${peer_args[@]}" --max-seconds "$(budget_after 110)"
  cp "$work/peer.json" "$out/peer.json" 2>/dev/null
else
  phase peer skipped 0 "no exported data from the bench"
fi

# ---- core tests: the CUDA cases (bf16 vs CPU reference, NF4 glue) and the rest
run_phase build-tests 60 "$out/build.log" build_targets core_tests hpsearch-core
if [ -x "$bin/core_tests" ]; then
  run_phase core-tests 30 "$out/tests.log" \
    ctest --test-dir "$build" -j "$jobs" --timeout 120 --output-on-failure -E '_NOT_BUILT$'
else
  phase core-tests skipped 0 "core_tests did not build"
fi

# ---- the Hugging Face logits fixture owed by the training-core issue
fixture_dir="$work/hf_gpt2_fixture"
if run_phase fixture 20 "$out/bench.log" python3 "$root/scripts/make_hf_logits_fixture.py" \
  --out "$fixture_dir" --tokenizer "$root/data/gpt2"; then
  tar -C "$work" -czf "$out/hf_fixture.tar.gz" hf_gpt2_fixture
fi

# ---- summary: phases, both sides' figures, the ratio
python3 - "$summary" "$work/bench.json" "$work/peer.json" "$out/summary.json" <<'EOF'
import json, sys
phases_path, bench_path, peer_path, out_path = sys.argv[1:5]
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
phases = [json.loads(line) for line in open(phases_path) if line.strip()]
bench, peer = load(bench_path), load(peer_path)
ratio = None
if bench and peer and peer.get("train_samples_per_second"):
    ratio = bench["train_samples_per_second"] / peer["train_samples_per_second"]
summary = {"phases": phases, "bench": bench, "peer": peer, "train_throughput_ratio": ratio}
with open(out_path, "w") as f:
    json.dump(summary, f, indent=2)
def get(d, *keys):
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d
def row(name, b, p, unit):
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    print(f"  {name:<34} {fmt(b):>14} {fmt(p):>14} {unit}")
def peak(d):
    v = get(d, "full_run", "peak_allocated_bytes")
    return None if v is None else v / 2**30
print("gpu-check summary (goals: ratio >= 2; full run <= 40 s; eval <= 1 s; peak <= 1 GiB)")
print(f"  {'':<34} {'hpsearch':>14} {'HF+PEFT':>14}")
row("device", get(bench, "device"), get(peer, "device"), "")
row("step", get(bench, "step_ms"), get(peer, "step_ms"), "ms")
row("train samples/s", get(bench, "train_samples_per_second"),
    get(peer, "train_samples_per_second"), "")
row("full run (epochs x train texts)", get(bench, "full_run", "seconds"),
    get(peer, "full_run", "seconds"), "s")
row("peak allocated (full run)", peak(bench), peak(peer), "GiB")
row("eval of the test texts", get(bench, "eval_seconds"), get(peer, "eval_seconds"), "s")
print(f"  train throughput ratio: {'-' if ratio is None else f'{ratio:.2f}'}")
for p in phases:
    print(f"  phase {p['phase']:<11} {p['status']:<8} {p['seconds']:>4}s {p['note']}")
EOF
echo "gpu-check: done in $(($(date +%s) - start))s; results in $out"
