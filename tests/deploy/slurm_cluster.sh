#!/usr/bin/env bash
# A throw-away single-node Slurm for tests, sourced by a test script (bash). Everything lives in
# $slurm_dir (config, state, spool, logs, the munge key and socket); the daemons listen on 127.0.0.1
# only, on ports picked free, and run in the foreground as children of the test so slurm_stop stops
# them by pid. The daemons, and the jobs submitted with `slurm_sbatch`, carry HPSEARCH_SLURM_TEST_MARK
# in their environment, by which slurm_stop finds and kills what outlived its job (slurmstepd,
# workers) once the daemons are gone; the test's own shell does not carry it.
#
#   source tests/deploy/slurm_cluster.sh
#   slurm_missing && exit 77      # prints why to stdout
#   trap slurm_stop EXIT
#   slurm_start "$dir" 2          # sets SLURM_CONF; squeue and scancel then use this cluster
#   slurm_sbatch --cpus-per-task=1 script.sbatch   # prints the job id
#
# Needs root (slurmd starts job steps as the submitting user) and Debian's slurmctld, slurmd,
# slurm-client and munge (scripts/install-deps.sh). No cgroups, no systemd.

slurm_daemon_pids=()

# Prints what is missing and returns 0 when this machine cannot run the cluster.
slurm_missing() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: a test Slurm needs root (slurmd runs jobs as their user); running as $(id -un)"
    return 0
  fi
  local program
  for program in munged mungekey slurmctld slurmd sbatch squeue scancel sinfo python3; do
    if ! command -v "$program" >/dev/null; then
      echo "skipped: $program is not on PATH (scripts/install-deps.sh installs slurmctld, slurmd, slurm-client, munge)"
      return 0
    fi
  done
  return 1
}

slurm_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# slurm_start DIR [GPUS]: writes the config under DIR and starts munged, slurmctld and slurmd; returns
# once the node is idle (or fails, printing the logs). GPUS placeholder GPUs (character devices that
# are /dev/null underneath: Slurm only counts them and sets CUDA_VISIBLE_DEVICES) make the node a
# GPU node for --gres=gpu:N. Sets slurm_gpus to the number made: 0 where mknod is refused (a
# container without CAP_MKNOD), saying so.
slurm_start() {
  slurm_dir=$1
  local gpus=${2:-0}
  # shellcheck disable=SC2034  # read by the test that sources this file
  slurm_gpus=0
  mkdir -p "$slurm_dir"/{state,spool,munge,dev}
  # slurmctld and munged check that their folders are not writable by others, and must reach them.
  chmod 755 "$slurm_dir"
  chmod 700 "$slurm_dir/munge"
  mungekey --create --keyfile="$slurm_dir/munge/munge.key" >/dev/null
  chmod 600 "$slurm_dir/munge/munge.key"
  HPSEARCH_SLURM_TEST_MARK=$slurm_dir munged --foreground --force --key-file="$slurm_dir/munge/munge.key" \
    --socket="$slurm_dir/munge/munge.socket" --pid-file="$slurm_dir/munge/munged.pid" \
    --log-file="$slurm_dir/munge/munged.log" --seed-file="$slurm_dir/munge/munged.seed" \
    >"$slurm_dir/munged.out" 2>&1 &
  slurm_daemon_pids+=($!)
  local i
  for ((i = 0; i < 100; i++)); do
    [ -S "$slurm_dir/munge/munge.socket" ] && break
    sleep 0.1
  done
  local ctld_port slurmd_port
  ctld_port=$(slurm_free_port)
  slurmd_port=$(slurm_free_port)
  : >"$slurm_dir/plugstack.conf"
  local gres_types="" node_gres=""
  if [ "$gpus" -gt 0 ] && ! mknod "$slurm_dir/dev/gpu0" c 1 3 2>/dev/null; then
    echo "slurm_start: mknod is refused here: a node without placeholder GPUs"
    gpus=0
  fi
  if [ "$gpus" -gt 0 ]; then
    for ((i = 1; i < gpus; i++)); do mknod "$slurm_dir/dev/gpu$i" c 1 3; done
    # shellcheck disable=SC2034
    slurm_gpus=$gpus
    printf 'AutoDetect=off\nNodeName=localhost Name=gpu File=%s/dev/gpu[0-%d]\n' "$slurm_dir" $((gpus - 1)) \
      >"$slurm_dir/gres.conf"
    gres_types="GresTypes=gpu"
    node_gres="Gres=gpu:$gpus"
  fi
  cat >"$slurm_dir/slurm.conf" <<CONF
ClusterName=hpsearch-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$slurm_dir/munge/munge.socket
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/slurmctld.log
SlurmdLogFile=$slurm_dir/slurmd.log
PlugStackConfig=$slurm_dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
MessageTimeout=20
$gres_types
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=1000 $node_gres State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$slurm_dir/slurm.conf
  HPSEARCH_SLURM_TEST_MARK=$slurm_dir slurmctld -D -i -f "$SLURM_CONF" >"$slurm_dir/slurmctld.out" 2>&1 &
  slurm_daemon_pids+=($!)
  HPSEARCH_SLURM_TEST_MARK=$slurm_dir slurmd -D -N localhost -f "$SLURM_CONF" >"$slurm_dir/slurmd.out" 2>&1 &
  slurm_daemon_pids+=($!)
  for ((i = 0; i < 300; i++)); do
    if [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = "idle" ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "slurm_start: the node did not become idle in 30 s; the logs:" >&2
  tail -n 30 "$slurm_dir"/*.log "$slurm_dir"/*.out "$slurm_dir/munge/munged.log" >&2
  return 1
}

# sbatch with this cluster's mark in the job's environment; prints the job id.
slurm_sbatch() {
  HPSEARCH_SLURM_TEST_MARK=$slurm_dir sbatch --parsable "$@"
}

# Cancels every job, stops the daemons (SIGTERM, then SIGKILL after 10 s) and kills, by pid, every
# process still carrying this cluster's mark (slurmstepd and what it ran). Safe to call twice.
slurm_stop() {
  [ -n "${slurm_dir:-}" ] || return 0
  if [ ${#slurm_daemon_pids[@]} -gt 0 ]; then
    scancel --quiet --full --partition=test 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
    kill -TERM "${slurm_daemon_pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "${slurm_daemon_pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${slurm_daemon_pids[@]}" 2>/dev/null || true
    wait "${slurm_daemon_pids[@]}" 2>/dev/null || true
    slurm_daemon_pids=()
  fi
  local pid
  for pid in $(slurm_marked_pids); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# The processes whose environment holds this cluster's mark.
slurm_marked_pids() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    if { tr '\0' '\n' <"$environ" | grep -qxF "HPSEARCH_SLURM_TEST_MARK=$slurm_dir"; } 2>/dev/null; then
      echo "$pid"
    fi
  done
}
