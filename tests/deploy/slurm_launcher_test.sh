#!/usr/bin/env bash
# The Slurm launcher on a real (throw-away, single-node) Slurm: deploy/slurm/hpsearch-workers.sbatch,
# unedited, submitted twice for one CPU worker each (its GPU and CPU requests overridden on the sbatch
# line as its header documents), against a coordinator outside Slurm that serves TLS and wants a
# token. A command-trial study runs through the two jobs; one job is scancelled while its worker is
# mid-trial, and the trial must be handed back by that worker (not by lease expiry), re-leased to the
# other job's worker and completed exactly once. Everything started here is stopped by pid at the end.
#
#   tests/deploy/slurm_launcher_test.sh BIN_DIR     # ctest: slurm_launcher (exit 77: skipped)
set -euo pipefail
bin_dir=$(cd "${1:?usage: slurm_launcher_test.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/deploy/slurm_cluster.sh
source "$root/tests/deploy/slurm_cluster.sh"
if slurm_missing; then exit 77; fi
for program in openssl sqlite3 /usr/bin/python3; do
  command -v "$program" >/dev/null || { echo "skipped: $program is not installed (scripts/install-deps.sh)"; exit 77; }
done

dir=$(mktemp -d /tmp/hpsearch-slurm-test.XXXXXX)
coordinator_pid=
finish() {
  local status=$?
  set +e
  [ -n "$coordinator_pid" ] && kill -TERM "$coordinator_pid" 2>/dev/null
  slurm_stop
  [ -n "$coordinator_pid" ] && { kill -KILL "$coordinator_pid" 2>/dev/null; wait "$coordinator_pid" 2>/dev/null; }
  if [ "$status" -ne 0 ]; then
    echo "--- logs"
    for f in "$dir"/serve.err "$dir"/job-*.out "$dir"/slurm/slurmd.log; do
      [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
    done
  fi
  [ -n "${HPSEARCH_SLURM_TEST_KEEP:-}" ] || rm -rf "$dir"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
sql() { sqlite3 -cmd ".timeout 5000" "$dir/results.db" "$@"; }
# Every wait ends by this time, so the test fails and cleans up well inside ctest's 300 s timeout
# (which would kill this shell without running its EXIT trap).
test_deadline=$(($(date +%s) + 270))
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  [ "$deadline" -le "$test_deadline" ] || deadline=$test_deadline
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "waited ${seconds} s for $what"
    sleep 0.2
  done
}

started=$(date +%s)
slurm_start "$dir/slurm" 2
echo "slurm: up in $(($(date +%s) - started)) s (slurmctld, slurmd and munged on 127.0.0.1, state in $dir/slurm)"

# The coordinator outside Slurm, as deploy/README.md runs it: TLS and a token. Its lease lasts 60 s,
# so a trial handed back within seconds of scancel was handed back by its worker, not by expiry.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/ca.key" \
  -out "$dir/ca.pem" -days 2 -subj "/CN=hpsearch slurm test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/server.key" \
  -out "$dir/server.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/server.pem" -days 2 -extfile "$dir/server.ext" 2>/dev/null
(umask 077 && openssl rand -hex 32 >"$dir/token")
"$bin_dir/hpsearch" serve --db "$dir/results.db" --listen 127.0.0.1:0 --lease-ttl 60 \
  --tls-cert "$dir/server.pem" --tls-key "$dir/server.key" --auth-token-file "$dir/token" \
  >"$dir/serve.out" 2>"$dir/serve.err" &
coordinator_pid=$!
wait_for 20 "the coordinator to listen" grep -q "listening on" "$dir/serve.out"
address=$(grep -o "listening on 127\.0\.0\.1:[0-9]*" "$dir/serve.out" | head -1)
address=${address#listening on }
export HPSEARCH_COORDINATOR=$address HPSEARCH_AUTH_TOKEN_FILE=$dir/token HPSEARCH_TLS_CA=$dir/ca.pem
export HPSEARCH_WORKER=$bin_dir/hpsearch-worker
[ "$("$bin_dir/hpsearch" health)" = SERVING ] || fail "hpsearch health did not answer SERVING"

# The script's default devices on a GPU node: a job given two (placeholder) GPUs runs `--devices all`,
# one worker per GPU, named after the host and the job behind the prefix HPSEARCH_WORKER_NAME. Nothing is
# submitted yet, so they take no trial.
script=$root/deploy/slurm/hpsearch-workers.sbatch
if [ "$slurm_gpus" -eq 2 ]; then
  job_gpu=$(HPSEARCH_WORKER_NAME=pool slurm_sbatch --gres=gpu:2 --cpus-per-task=2 --output="$dir/job-%j.out" "$script")
  gpu_workers() {
    [ "$(sql "SELECT group_concat(name || '=' || device, ' ') FROM (SELECT name, device FROM workers
              WHERE name LIKE '%-job${job_gpu}-%' ORDER BY name)")" = \
      "pool-$(hostname -s)-job$job_gpu-gpu0=cuda:0 pool-$(hostname -s)-job$job_gpu-gpu1=cuda:1" ]
  }
  wait_for 60 "job $job_gpu's two GPU workers to register" gpu_workers
  grep -q -- "--devices all --name pool-$(hostname -s)-job$job_gpu --threads 1" "$dir/job-$job_gpu.out" ||
    fail "job $job_gpu did not run --devices all with one thread per worker: $(cat "$dir/job-$job_gpu.out")"
  echo "slurm: job $job_gpu (--gres=gpu:2) registered pool-$(hostname -s)-job$job_gpu-gpu0 and -gpu1 on cuda:0 and cuda:1"
  scancel "$job_gpu"
  job_gpu_over() { [ -z "$(squeue -h -j "$job_gpu" -t running,completing -o %i 2>/dev/null)" ]; }
  wait_for 30 "job $job_gpu to end" job_gpu_over
else
  echo "slurm: skipped: the GPU node's default devices (no placeholder GPUs on this machine)"
fi

# Four 3-epoch trials of a command that sleeps 1.5 s per epoch, two at a time.
cat >"$dir/study.yaml" <<EOF
name: slurm-study
seed: 5
data: {train_file: $root/data/banking77/train.csv, test_file: $root/data/banking77/test.csv}
runner:
  type: command
  command: [/usr/bin/python3, $root/tests/data/control/fake_trial.py, --epochs, '3', --epoch_seconds, '1.5']
  kill_grace_seconds: 2
search_space:
  x: {type: float, low: 0.0, high: 1.0}
objective: {metric: val_accuracy, direction: maximize}
budget: {n_trials: 4, parallelism: 2, max_retries: 2}
final_stage: {enabled: false}
EOF
study=$("$bin_dir/hpsearch" submit "$dir/study.yaml" | head -1)
[[ $study == st-* ]] || fail "submit printed '$study', not a study id"

# The project's batch script, unedited: no GPU, one CPU, output in the temp folder.
job_a=$(slurm_sbatch --gres=none --cpus-per-task=1 --output="$dir/job-%j.out" "$script")
job_b=$(slurm_sbatch --gres=none --cpus-per-task=1 --output="$dir/job-%j.out" "$script")
echo "slurm: jobs $job_a and $job_b submitted"

# running_on JOB EPOCHS: a trial running on the worker of JOB that has reported EPOCHS epochs or more;
# sets $trial to "NUMBER ATTEMPT".
running_on() {
  trial=$(sql "SELECT t.number || ' ' || t.attempt FROM trials t JOIN workers w ON w.worker_id = t.worker_id
               WHERE t.study_id = '$study' AND t.state = 'running' AND w.name LIKE '%-job${1}-cpu0'
                 AND (SELECT count(*) FROM epochs e WHERE e.trial_id = t.trial_id AND e.attempt = t.attempt) >= $2
               LIMIT 1")
  [ -n "$trial" ]
}
# Job B may start a few seconds after job A: wait for its worker too, so that the cancelled trial has
# somewhere to go (a CI run once checked for it 2 s too early).
registered() { [ -n "$(sql "SELECT 1 FROM workers WHERE name = '$(hostname -s)-job${1}-cpu0'")" ]; }
wait_for 90 "job $job_b's worker to register" registered "$job_b"
wait_for 90 "a trial mid-run on job $job_a's worker" running_on "$job_a" 1
read -r number attempt <<<"$trial"
workers=$(sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM workers ORDER BY name)")
echo "slurm: workers $workers; trial $number (attempt $attempt) mid-run on job $job_a: scancel"
[[ " $workers " == *" $(hostname -s)-job${job_a}-cpu0 "* ]] || fail "no worker named for job $job_a: $workers"
[[ " $workers " == *" $(hostname -s)-job${job_b}-cpu0 "* ]] || fail "no worker named for job $job_b: $workers"
cancelled_ms=$(now_ms)
scancel "$job_a"

handed_back() {
  [ -n "$(sql "SELECT 1 FROM trial_attempts a JOIN trials t ON t.trial_id = a.trial_id
               WHERE t.study_id = '$study' AND t.number = $number AND a.attempt = $attempt
                 AND a.ended_ms IS NOT NULL")" ]
}
wait_for 30 "trial $number to be handed back after scancel" handed_back
read -r ended_by ended_ms < <(sql "SELECT a.ended_by || ' ' || a.ended_ms FROM trial_attempts a
    JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = '$study' AND t.number = $number AND a.attempt = $attempt")
echo "slurm: trial $number handed back by '$ended_by' $((ended_ms - cancelled_ms)) ms after scancel"
[ "$ended_by" = worker ] || fail "trial $number attempt $attempt ended by '$ended_by', not by its worker"

study_over() {
  local state
  state=$(sql "SELECT state FROM studies WHERE study_id = '$study'")
  [ "$state" != searching ] && [ "$state" != finalizing ] && [ -n "$state" ]
}
wait_for 120 "the study to end" study_over
state=$(sql "SELECT state FROM studies WHERE study_id = '$study'")
[ "$state" = complete ] || fail "the study ended $state"

# Every trial complete, each by exactly one complete attempt; the cancelled one re-leased to job B.
counts=$(sql "SELECT count(*), sum(t.state = 'complete') FROM trials t WHERE t.study_id = '$study'")
[ "$counts" = "4|4" ] || fail "trials (all|complete): $counts, want 4|4"
twice=$(sql "SELECT t.number FROM trials t JOIN trial_attempts a ON a.trial_id = t.trial_id
             WHERE t.study_id = '$study' AND a.state = 'complete' GROUP BY t.number HAVING count(*) != 1")
[ -z "$twice" ] || fail "trials completed more than once: $twice"
finisher=$(sql "SELECT w.name FROM trials t JOIN trial_attempts a ON a.trial_id = t.trial_id
                JOIN workers w ON w.worker_id = a.worker_id
                WHERE t.study_id = '$study' AND t.number = $number AND a.state = 'complete'")
[ "$finisher" = "$(hostname -s)-job${job_b}-cpu0" ] || fail "trial $number was finished by '$finisher'"
attempts=$(sql "SELECT group_concat(a.attempt || ':' || a.state || ':' || a.ended_by, ' ') FROM trial_attempts a
                JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = '$study' AND t.number = $number")
echo "slurm: trial $number attempts $attempts; study complete in $(($(date +%s) - started)) s"
[ "$(squeue -h -t all -j "$job_a" -o %T 2>/dev/null)" = CANCELLED ] || fail "job $job_a is not CANCELLED"
# The script waited for the coordinator with `hpsearch health` (TLS, from the job's variables).
for job in "$job_a" "$job_b"; do
  grep -q -- "--devices cpu --name $(hostname -s)-job$job " "$dir/job-$job.out" || fail "job $job: no worker line"
  if grep -q "not serving\|no hpsearch program" "$dir/job-$job.out"; then
    fail "job $job did not see the coordinator serving: $(cat "$dir/job-$job.out")"
  fi
done

# The time limit: a job of two minutes whose workers get SIGTERM 30 s before it (the header's
# --signal=TERM@120, shortened on the sbatch line). Slurm may send the signal up to 60 s early, so it
# comes 30 to 90 s into the job; the worker must hand its trial back before the limit. Job B stops
# first so that the one trial of the second study goes to job C.
scancel "$job_b"
job_b_over() { [ -z "$(squeue -h -j "$job_b" -t running,completing -o %i 2>/dev/null)" ]; }
wait_for 30 "job $job_b to end" job_b_over
sed -e 's/^name: slurm-study/name: slurm-time-limit/' -e "s/'1.5'/'600'/" -e 's/n_trials: 4/n_trials: 1/' \
  "$dir/study.yaml" >"$dir/time-limit.yaml"
study=$("$bin_dir/hpsearch" submit "$dir/time-limit.yaml" | head -1)
job_c=$(slurm_sbatch --gres=none --cpus-per-task=1 --time=2 --signal=TERM@30 --output="$dir/job-%j.out" "$script")
wait_for 60 "the trial to start on job $job_c's worker" running_on "$job_c" 0
read -r number attempt <<<"$trial"
job_started_ms=$(($(date -d "$(squeue -h -j "$job_c" -o %S)" +%s) * 1000))
wait_for 130 "the time limit to hand trial $number back" handed_back
read -r ended_by ended_ms < <(sql "SELECT a.ended_by || ' ' || a.ended_ms FROM trial_attempts a
    JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = '$study' AND t.number = $number AND a.attempt = $attempt")
echo "slurm: time limit: trial $number handed back by '$ended_by' $((ended_ms - job_started_ms)) ms into the 120 s job $job_c"
[ "$ended_by" = worker ] || fail "trial $number attempt $attempt ended by '$ended_by', not by its worker"
[ $((ended_ms - job_started_ms)) -lt 120000 ] || fail "the trial was handed back after the job's time limit"
"$bin_dir/hpsearch" cancel "$study" >/dev/null

# Nothing left behind: the daemons and every process of the jobs are gone once the cluster stops.
slurm_stop
left=$(slurm_marked_pids | tr '\n' ' ')
[ -z "$left" ] || fail "processes left after stopping Slurm: $left"
echo "slurm: ok"
