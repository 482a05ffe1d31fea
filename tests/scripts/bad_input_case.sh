#!/usr/bin/env bash
# Runs one case of the bad-input corpus (tests/data/bad_inputs/README.md): the case's run_case in a
# fresh temporary folder, then checks its exit code (never a signal), that stderr says what the case
# expects, and that nothing the case names in expect_absent was written.
#   bad_input_case.sh CASE_FILE BIN_DIR
# shellcheck disable=SC2317  # tiny_study and free_port are called by the cases' run_case
set -uo pipefail
case_file=$1
export BIN=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export ROOT
work=$(mktemp -d "${TMPDIR:-/tmp}/hpsearch-bad-input.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1


# tiny_study FILE: a valid study (the README demo's, data paths made absolute) for cases to spoil.
tiny_study() {
  sed -e "s|\.\./data/|$ROOT/data/|g" "$ROOT/examples/banking77-tiny.yaml" >"$1"
}
# free_port: a port nothing listens on right now.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
export -f tiny_study free_port

expect_exit=
expect_stderr=
expect_absent=
# shellcheck source=/dev/null
source "$case_file"
if [ -z "$expect_exit" ] || [ -z "$expect_stderr" ]; then
  echo "FAIL: $case_file sets no expect_exit or expect_stderr"
  exit 1
fi
status=0
# shellcheck disable=SC2016  # $1 is the inner shell's
timeout -k 5 120 bash -c 'source "$1"; run_case' _ "$case_file" >stdout.txt 2>stderr.txt || status=$?
name=$(basename "$case_file" .case)
echo "case $name: exit $status"
echo "--- stderr:"
head -c 2000 stderr.txt
echo
fail=0
if [ "$status" -ge 124 ]; then
  echo "FAIL: $name ended with $status (a crash, a signal or the 120 s timeout), want $expect_exit"
  fail=1
elif [ "$status" -ne "$expect_exit" ]; then
  echo "FAIL: $name exited $status, want $expect_exit"
  fail=1
fi
if ! grep -qF -- "$expect_stderr" stderr.txt; then
  echo "FAIL: $name: stderr does not say: $expect_stderr"
  fail=1
fi
for path in $expect_absent; do
  if [ -e "$path" ]; then
    echo "FAIL: $name wrote $path although it failed"
    fail=1
  fi
done
[ "$fail" -eq 0 ] && echo "ok: $name"
exit "$fail"
