#!/usr/bin/env bash
# gpu-check.sh: the one command a GPU session runs on the device machine (issues 7 and 18). It checks that
# the driver, the CUDA toolkit and LibTorch's CUDA can work together, builds the core alone
# (HPSEARCH_CORE_ONLY) against the machine's own PyTorch (CUDA LibTorch) with all cores, runs the kernel
# comparison tests, the seed-shape benchmark and its Hugging Face + PEFT peer on the same data, then the core
# tests, and makes the Hugging Face logits fixture. Everything it learns goes under $OUT:
#
#   $OUT/summary.json   every phase's status, seconds and note, the versions, both sides' figures, the ratio
#                       (rewritten after every phase, so a run cut short keeps what it had)
#   $OUT/phases.jsonl   one line per finished phase
#   $OUT/versions.json  driver, driver CUDA, toolkit (nvcc, cudart), LibTorch and its CUDA, the GPUs
#   $OUT/env.txt        GPU, driver, nvcc, torch / transformers / peft versions, tools
#   $OUT/build.log      configure + build output
#   $OUT/tests.log      kernel tests, then ctest of the core tests (CUDA cases included)
#   $OUT/bench.log      seed_shape_bench and hf_peft_peer output
#   $OUT/bench.json     seed_shape_bench's figures;  $OUT/peer.json: the peer's (each written after every
#                       stage of its run: setup, steps with the peak memory over them, full run, eval);
#                       both train with static shapes (length buckets, full batches: the default on CUDA)
#   $OUT/bench_dynamic.json  seed_shape_bench's timed steps again with dynamic padding (no full run), to
#                       compare step time and peak memory with static shapes
#   $OUT/bench_seed.json, $OUT/peer_seed.json  both sides' timed steps (no full run) at the seed's own
#                       configuration (examples/banking77-seed.yaml: LoRA on c_attn only, gradient
#                       checkpointing), on the same batches
#   $OUT/hf_fixture.tar.gz  tests/data/hf_gpt2_fixture (commit it: tests/core/hf_fixture_test.cc)
#
# Phases, in the order the goals need their figures: versions (stops the script, with what to change, when
# the versions cannot work together), configure, build-main, kernels, bench, peer, bench-dynamic,
# build-tests, core-tests, fixture. They share one deadline (HPSEARCH_GPU_CHECK_SECONDS, default 270, so that the whole command fits
# a 300 s device call); a phase that no longer fits is skipped and says so, a failing phase does not stop
# the later ones, and build errors do not either (ninja -k 0): what did build still runs. Every phase ends
# ok, skipped (with its reason), failed or timeout.
#
# Header-only build dependencies the device lacks (nlohmann-json, Catch2 v2) travel as Debian packages in
# .gpu-debs/ (git-ignored; fetch them here with scripts/gpu-check.sh --fetch-debs, then name .gpu-debs in
# the tool's carry list) and are unpacked under the work folder, never into /.
#
# The device command (docs/performance.md):
#   run(command="scripts/gpu-check.sh", timeout_s=300, carry=[".gpu-debs"])
#
# HPSEARCH_GPU_CHECK_FAKE=1 rehearses the script on a machine without a GPU (Debian's CPU LibTorch, a tiny
# model on the CPU; the version check, the CUDA test cases, the peer and the fixture report skipped), from
# an empty build folder, so a GPU session does not spend device minutes on a typo. On the 2-core
# development machine (docs/performance.md has the measured run):
#   rm -rf .gpu-debs /tmp/hpsearch-gpu-check build-gpucheck && scripts/gpu-check.sh --fetch-debs &&
#   OUT=/tmp/gpu-out HPSEARCH_GPU_CHECK_FAKE=1 HPSEARCH_GPU_CHECK_SECONDS=7200 HPSEARCH_JOBS=1 \
#     HPSEARCH_GPU_CHECK_BUILD="$PWD/build-gpucheck" \
#     HPSEARCH_GPU_CHECK_CMAKE_ARGS="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache" \
#     nice scripts/gpu-check.sh
#
# Settings: OUT (required), HPSEARCH_GPU_CHECK_SECONDS, HPSEARCH_GPU_CHECK_WORK (default
# /tmp/hpsearch-gpu-check), HPSEARCH_GPU_CHECK_BUILD (the build folder, default WORK/build; give an empty
# or absent one), HPSEARCH_JOBS (default: every core), HPSEARCH_GPU_CHECK_CMAKE_ARGS (extra words for
# cmake), CUDACXX (nvcc; default the one on PATH, else /usr/local/cuda/bin/nvcc),
# HPSEARCH_GPU_CHECK_VERSIONS (scripts/gpu_versions.py: replaces detected versions, to rehearse the stop).
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
out=$(cd "$out" && pwd)
fake=${HPSEARCH_GPU_CHECK_FAKE:-0}
budget=${HPSEARCH_GPU_CHECK_SECONDS:-270}
work=${HPSEARCH_GPU_CHECK_WORK:-/tmp/hpsearch-gpu-check}
build=${HPSEARCH_GPU_CHECK_BUILD:-$work/build}
jobs=${HPSEARCH_JOBS:-$(nproc)}
start=$(date +%s)
mkdir -p "$work"
summary="$out/phases.jsonl"
: >"$summary"
rm -f "$out/summary.json" "$out/bench.json" "$out/peer.json" "$out/versions.json" \
  "$out/bench_dynamic.json" "$out/bench_seed.json" "$out/peer_seed.json"

left() { echo $((budget - ($(date +%s) - start))); }
# What is left minus RESERVE seconds for the phases after, at least 30.
budget_after() {
  local b=$(($(left) - $1))
  [ "$b" -lt 30 ] && b=30
  echo "$b"
}

# write_summary [--print]: $out/summary.json from what the phases left so far; --print adds the table.
write_summary() {
  python3 - "$out" "${1:-}" <<'PY'
import json, os, sys
out, show = sys.argv[1], sys.argv[2] == "--print"
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
phases = []
with open(os.path.join(out, "phases.jsonl")) as f:
    phases = [json.loads(line) for line in f if line.strip()]
versions, bench, peer = load("versions.json"), load("bench.json"), load("peer.json")
dynamic = load("bench_dynamic.json")
bench_seed, peer_seed = load("bench_seed.json"), load("peer_seed.json")
def throughput_ratio(ours, theirs):
    if ours and theirs and ours.get("train_samples_per_second") and theirs.get("train_samples_per_second"):
        return ours["train_samples_per_second"] / theirs["train_samples_per_second"]
    return None
ratio = throughput_ratio(bench, peer)
seed_ratio = throughput_ratio(bench_seed, peer_seed)
summary = {"phases": phases, "versions": versions, "bench": bench, "peer": peer,
           "bench_dynamic_padding": dynamic, "train_throughput_ratio": ratio,
           "bench_seed_config": bench_seed, "peer_seed_config": peer_seed,
           "seed_config_train_throughput_ratio": seed_ratio}
with open(os.path.join(out, "summary.json.partial"), "w") as f:
    json.dump(summary, f, indent=2)
os.replace(os.path.join(out, "summary.json.partial"), os.path.join(out, "summary.json"))
if not show:
    sys.exit(0)
def get(d, *keys):
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d
def row(name, b, p, unit):
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    print(f"  {name:<34} {fmt(b):>14} {fmt(p):>14} {unit}")
def gib(v):
    return None if v is None else v / 2**30
print("gpu-check summary (goals: ratio >= 2; full run <= 40 s; eval <= 1 s; peak <= 1 GiB)")
if versions:
    print("  versions: driver {} (CUDA {}), nvcc {} (cudart {}), LibTorch {} (CUDA {})".format(
        *(versions.get(k) for k in ("driver", "driver_cuda", "toolkit", "toolkit_cudart", "torch",
                                    "torch_cuda"))))
print(f"  {'':<34} {'hpsearch':>14} {'HF+PEFT':>14}")
row("device", get(bench, "device"), get(peer, "device"), "")
row("stage reached", get(bench, "stage"), get(peer, "stage"), "")
row("step", get(bench, "step_ms"), get(peer, "step_ms"), "ms")
row("train samples/s", get(bench, "train_samples_per_second"),
    get(peer, "train_samples_per_second"), "")
row("peak allocated (timed steps)", gib(get(bench, "steps_peak_allocated_bytes")),
    gib(get(peer, "steps_peak_allocated_bytes")), "GiB")
row("full run (epochs x train texts)", get(bench, "full_run", "seconds"),
    get(peer, "full_run", "seconds"), "s")
row("peak allocated (full run)", gib(get(bench, "full_run", "peak_allocated_bytes")),
    gib(get(peer, "full_run", "peak_allocated_bytes")), "GiB")
row("eval of the test texts", get(bench, "eval_seconds"), get(peer, "eval_seconds"), "s")
row("static shapes", get(bench, "static_shapes"), get(peer, "static_shapes"), "")
row("step, dynamic padding", get(dynamic, "step_ms"), None, "ms")
row("peak allocated, dynamic padding", gib(get(dynamic, "steps_peak_allocated_bytes")), None, "GiB")
print(f"  train throughput ratio: {'-' if ratio is None else f'{ratio:.2f}'}")
print("  the seed's configuration (LoRA on c_attn, gradient checkpointing), timed steps:")
row("step, seed configuration", get(bench_seed, "step_ms"), get(peer_seed, "step_ms"), "ms")
row("train samples/s, seed configuration", get(bench_seed, "train_samples_per_second"),
    get(peer_seed, "train_samples_per_second"), "")
row("peak allocated, seed configuration", gib(get(bench_seed, "steps_peak_allocated_bytes")),
    gib(get(peer_seed, "steps_peak_allocated_bytes")), "GiB")
print(f"  train throughput ratio, seed configuration: "
      f"{'-' if seed_ratio is None else f'{seed_ratio:.2f}'}")
for p in phases:
    print(f"  phase {p['phase']:<11} {p['status']:<8} {p['seconds']:>4}s {p['note']}")
PY
}

# phase NAME STATUS SECONDS NOTE: one line of the summary, then the summary rewritten.
phase() {
  local note=${4//\\/\/}
  note=${note//\"/\'}
  note=$(printf '%s' "$note" | tr '\n\t' '  ')
  printf '{"phase":"%s","status":"%s","seconds":%s,"note":"%s"}\n' "$1" "$2" "$3" "$note" >>"$summary"
  printf 'gpu-check: %-11s %-8s %4ss %s\n' "$1" "$2" "$3" "$4"
  write_summary
}
# run_phase NAME NEEDED_SECONDS LOG COMMAND...: runs COMMAND (a program, not a shell function: timeout
# execs it) under what is left of the deadline.
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
    77) phase "$name" skipped "$took" "not applicable here (exit 77): $(tail -1 "$log")" ;;
    3) phase "$name" skipped "$took" "missing Python packages (exit 3): $(tail -1 "$log")" ;;
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
  python3 - <<'PY' 2>&1 || true
import importlib
for name in ("torch", "transformers", "peft"):
    try:
        m = importlib.import_module(name)
        extra = f" cuda {m.version.cuda} available {m.cuda.is_available()}" if name == "torch" else ""
        print(f"{name} {m.__version__}{extra}")
    except Exception as e:  # noqa: BLE001 - report whatever is missing
        print(f"{name}: {e}")
PY
  cmake --version | head -1
  ninja --version 2>/dev/null | sed 's/^/ninja /'
  c++ --version | head -1
} >"$out/env.txt" 2>&1

# ---- versions: driver, toolkit and LibTorch CUDA must fit together, or nothing below can work.
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
t0=$SECONDS
versions_args=(--nvcc "$nvcc" --json "$out/versions.json")
[ "$fake" = 1 ] && versions_args+=(--fake)
python3 "$root/scripts/gpu_versions.py" "${versions_args[@]}" >"$work/versions.out" 2>&1
rc=$?
cat "$work/versions.out" >>"$out/env.txt"
case $rc in
  0) phase versions ok $((SECONDS - t0)) "$(grep -o 'note: .*' "$work/versions.out" | tr '\n' ' ')" ;;
  77) phase versions skipped $((SECONDS - t0)) "$(grep -o 'note: .*' "$work/versions.out" | head -1)" ;;
  *)
    phase versions failed $((SECONDS - t0)) "$(tail -1 "$work/versions.out")"
    echo "gpu-check: STOPPED: the driver, the CUDA toolkit and LibTorch cannot work together (above, and"
    echo "           $out/versions.json); change what the message says and run it again."
    write_summary --print
    exit 4
    ;;
esac
switched=$(sed -n 's/^use-nvcc //p' "$work/versions.out")
[ -n "$switched" ] && nvcc=$switched

# ---- deps: header-only Debian packages unpacked under $work/debs
prefix_path=""
if ls "$root"/.gpu-debs/*.deb >/dev/null 2>&1; then
  for deb in "$root"/.gpu-debs/*.deb; do dpkg -x "$deb" "$work/debs" || echo "gpu-check: cannot unpack $deb" >&2; done
  prefix_path="$work/debs/usr"
fi
if [ "$fake" = 1 ]; then
  torch_prefix=""  # Debian's LibTorch is found without help
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=80)
else
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc")")"
    -DCMAKE_CUDA_ARCHITECTURES=90 -DHPSEARCH_REQUIRE_CUDA=ON)
fi
[ -n "$torch_prefix" ] && prefix_path="$torch_prefix${prefix_path:+;$prefix_path}"
# HPSEARCH_GPU_CHECK_CMAKE_ARGS is a list of words (-DA=1 -DB=2).
read -r -a extra_cmake_args <<<"${HPSEARCH_GPU_CHECK_CMAKE_ARGS:-}"

# ---- configure + build: the kernels and the bench first; the tests after.
generator=(-G Ninja)
keep_going=(-- -k 0)
if ! command -v ninja >/dev/null; then
  generator=()
  keep_going=(-- -k)
fi
run_phase configure 30 "$out/build.log" \
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DHPSEARCH_CORE_ONLY=ON \
  -DHPSEARCH_WERROR=OFF ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} "${cuda_args[@]}" \
  "${extra_cmake_args[@]}"
build_cmd=(cmake --build "$build" -j "$jobs")
run_phase build-main 60 "$out/build.log" \
  "${build_cmd[@]}" --target kernels_tests seed_shape_bench "${keep_going[@]}"
bin="$build/bin"

# ---- kernel comparison tests (they report skipped without a device)
if [ -x "$bin/kernels_tests" ]; then
  run_phase kernels 20 "$out/tests.log" "$bin/kernels_tests" --reporter compact --durations yes
else
  phase kernels skipped 0 "kernels_tests did not build"
fi

# ---- the benchmark, then the peer on the same data. Both write their JSON into $OUT after every stage.
bench_args=(--json "$out/bench.json" --export-data "$work/seed_data.json")
peer_args=(--data "$work/seed_data.json" --json "$out/peer.json")
if [ "$fake" = 1 ]; then
  bench_args+=(--device cpu --layers 2 --width 64 --heads 2 --max-train 64 --max-test 32 --epochs 1
    --steps 3 --warmup 1 --threads 1)
  peer_args+=(--device cpu --layers 2 --width 64 --heads 2 --dtype float32)
fi
rm -f "$work/seed_data.json"
if [ -x "$bin/seed_shape_bench" ]; then
  # The full run is skipped by the bench itself when its steps predict it would not fit; 100 s stay for
  # the peer and the dynamic-padding steps.
  run_phase bench 40 "$out/bench.log" "$bin/seed_shape_bench" "${bench_args[@]}" \
    --max-seconds "$(budget_after 100)"
else
  phase bench skipped 0 "seed_shape_bench did not build"
fi
if [ -f "$work/seed_data.json" ]; then
  PYTHONUNBUFFERED=1 run_phase peer 40 "$out/bench.log" python3 "$root/bench/peer/hf_peft_peer.py" \
    "${peer_args[@]}" --max-seconds "$(budget_after 40)"
else
  phase peer skipped 0 "no exported data from the bench"
fi

# ---- the timed steps again with dynamic padding (the HF peer is not rerun: the step-time ratio of the two
# paddings is ours alone)
dynamic_args=(--json "$out/bench_dynamic.json" --static-shapes off --no-full-run --steps 50 --warmup 5)
if [ "$fake" = 1 ]; then
  dynamic_args+=(--device cpu --layers 2 --width 64 --heads 2 --max-train 64 --max-test 32 --steps 3
    --warmup 1 --threads 1)
fi
if [ -x "$bin/seed_shape_bench" ]; then
  run_phase bench-dynamic 30 "$out/bench.log" "$bin/seed_shape_bench" "${dynamic_args[@]}"
else
  phase bench-dynamic skipped 0 "seed_shape_bench did not build"
fi

# ---- the seed's own configuration (examples/banking77-seed.yaml: LoRA on c_attn only, gradient
# checkpointing): timed steps of both sides on the same batches, no full run (its time is the step time
# times the retrain's 4,004 steps)
seed_config=(--lora-targets c_attn --gradient-checkpointing --no-full-run)
seed_args=(--json "$out/bench_seed.json" --export-data "$work/seed_data_c_attn.json" --steps 50 --warmup 5
  "${seed_config[@]}")
seed_peer_args=(--data "$work/seed_data_c_attn.json" --json "$out/peer_seed.json" "${seed_config[@]}")
if [ "$fake" = 1 ]; then
  seed_args+=(--device cpu --layers 2 --width 64 --heads 2 --max-train 64 --max-test 32 --steps 3
    --warmup 1 --threads 1)
  seed_peer_args+=(--device cpu --layers 2 --width 64 --heads 2 --dtype float32)
fi
rm -f "$work/seed_data_c_attn.json"
if [ -x "$bin/seed_shape_bench" ]; then
  run_phase bench-seed 30 "$out/bench.log" "$bin/seed_shape_bench" "${seed_args[@]}"
else
  phase bench-seed skipped 0 "seed_shape_bench did not build"
fi
if [ -f "$work/seed_data_c_attn.json" ]; then
  PYTHONUNBUFFERED=1 run_phase peer-seed 30 "$out/bench.log" python3 "$root/bench/peer/hf_peft_peer.py" \
    "${seed_peer_args[@]}"
else
  phase peer-seed skipped 0 "no exported data from the seed-configuration bench"
fi

# ---- core tests: the CUDA cases (bf16 vs CPU reference, NF4 glue) and the rest. Left out here, none of
# them checking GPU code and CI running them all: deploy_files_check (needs yamllint and shellcheck, which a
# GPU image lacks), gpu_versions_check (a script on given versions) and build_tests (configures a core-only
# tree against Debian's LibTorch with /usr/bin/cmake; not built here, so it shows as
# build_tests_NOT_BUILT-<hash>, as does any test binary whose build failed) and the fuzz_replay_* tests
# (the fuzz targets' corpora replayed on the CPU parsers; their binaries are not built here).
run_phase build-tests 60 "$out/build.log" \
  "${build_cmd[@]}" --target core_tests hpsearch-core "${keep_going[@]}"
if [ -x "$bin/core_tests" ]; then
  run_phase core-tests 30 "$out/tests.log" \
    ctest --test-dir "$build" -j "$jobs" --timeout 120 --output-on-failure \
    -E '^deploy_files_check$|^gpu_versions_check$|^fuzz_replay_|_NOT_BUILT'
else
  phase core-tests skipped 0 "core_tests did not build"
fi

# ---- the Hugging Face logits fixture owed by the training-core issue
fixture_dir="$work/hf_gpt2_fixture"
if run_phase fixture 20 "$out/bench.log" python3 "$root/scripts/make_hf_logits_fixture.py" \
  --out "$fixture_dir" --tokenizer "$root/data/gpt2"; then
  tar -C "$work" -czf "$out/hf_fixture.tar.gz" hf_gpt2_fixture
fi

write_summary --print
echo "gpu-check: done in $(($(date +%s) - start))s; results in $out"
