#!/usr/bin/env bash
# Builds and runs hpsearch's libFuzzer targets (fuzz/, docs/reliability.md "Fuzzing"), outside the
# default build: clang, -fsanitize=fuzzer,address,undefined, in a build folder of its own.
#
#   scripts/fuzz.sh build                  # configure build-fuzz/ with clang and build every fuzz_<target>
#   scripts/fuzz.sh run TARGET [SECONDS]   # fuzz one target (default 600 s) from fuzz/corpus/TARGET
#   scripts/fuzz.sh all [SECONDS]          # every target in turn; stops at the first that finds a crash
#   scripts/fuzz.sh list                   # the targets
#
# Environment: HPSEARCH_FUZZ_BUILD_DIR (default build-fuzz), JOBS (ninja -j, default 1), FUZZ_ARGS
# (more libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-max_len=4096").
#
# A run starts from the committed seeds (fuzz/corpus/TARGET) and keeps what it learns in
# $BUILD/corpus/TARGET, never in the source tree. A crash is written to $BUILD/crashes/TARGET/; fix
# its class, then copy the input to fuzz/crashes/TARGET/ (or the seed corpus) so that ctest's
# fuzz_replay_TARGET replays it in every build from then on.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HPSEARCH_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(csv jsonl hf_config zip safetensors pickle tokenizer study_file)

# LibTorch, OpenBLAS, gRPC and the other shared libraries are Debian's, uninstrumented:
# - detect_container_overflow=0: std::vector annotations differ between instrumented and
#   uninstrumented code that share a container (LibTorch returns vectors), which reports false
#   overflows;
# - detect_leaks=0: LibTorch and protobuf keep process-lifetime allocations (operator registries,
#   descriptor pools) that LeakSanitizer reports at exit; the readers own all they allocate through
#   RAII, and a leak per input would show as growing RSS (libFuzzer's -rss_limit_mb) anyway;
# - abort_on_error=1 / halt_on_error=1: a finding stops the run with its input saved.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_container_overflow=0:detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

known_target() {
  local t
  for t in "${targets[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  echo "fuzz.sh: unknown target '$1' (targets: ${targets[*]})" >&2
  exit 2
}

cmd_build() {
  command -v clang++ >/dev/null || {
    echo "fuzz.sh: clang++ not found; install clang and libclang-rt-14-dev (scripts/install-deps.sh)" >&2
    exit 1
  }
  local sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  # Only the libraries the targets link are built (ninja builds the targets' dependencies alone);
  # CUDA is left out: no target needs a kernel.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
    -DHPSEARCH_REQUIRE_CUDA=OFF \
    -DCMAKE_C_FLAGS="-O1 -g $sanitize -fsanitize=fuzzer-no-link" \
    -DCMAKE_CXX_FLAGS="-O1 -g $sanitize -fsanitize=fuzzer-no-link" \
    -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
    -DHPSEARCH_FUZZ=ON -DHPSEARCH_BUILD_TESTS=OFF -DHPSEARCH_BUILD_BENCH=OFF \
    -DHPSEARCH_UNITY_BUILD=OFF -DHPSEARCH_WERROR=OFF
  nice -n 10 ninja -C "$build" -j "${JOBS:-1}" "${targets[@]/#/fuzz_}"
}

cmd_run() {
  local target="$1" seconds="${2:-600}"
  known_target "$target"
  local exe="$build/bin/fuzz_$target"
  [[ -x "$exe" ]] || { echo "fuzz.sh: $exe not built; run scripts/fuzz.sh build" >&2; exit 1; }
  mkdir -p "$build/corpus/$target" "$build/crashes/$target"
  echo "fuzz.sh: fuzz_$target for ${seconds} s"
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  "$exe" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$target/" ${FUZZ_ARGS:-} \
    "$build/corpus/$target" "$root/fuzz/corpus/$target"
}

case "${1:-}" in
  build) cmd_build ;;
  run) [[ $# -ge 2 ]] || usage; cmd_run "$2" "${3:-600}" ;;
  all) for t in "${targets[@]}"; do cmd_run "$t" "${2:-600}"; done ;;
  list) printf '%s\n' "${targets[@]}" ;;
  *) usage ;;
esac
