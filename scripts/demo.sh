#!/usr/bin/env bash
# The main job: builds hpsearch (installing what is missing) and validates the study files of the seed
# experiment and of the CPU demo with the coordinator's own validator.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HPSEARCH_BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
for study in banking77-seed banking77-tiny; do
  echo "== hpsearch validate examples/$study.yaml"
  "$build_dir/bin/hpsearch" validate "$root/examples/$study.yaml"
done
