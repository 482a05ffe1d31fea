#!/usr/bin/env python3
"""Soak benchmark (issue 23 point 5): a real coordinator restarted every minute under real workers.

Starts `hpsearch serve` on a SQLite file and N real `hpsearch-worker` processes, submits a study of
zero-work command trials (the command prints one epoch line and exits, under the worker's
hpsearch-trial-reaper like any command trial), and for M minutes SIGKILLs the coordinator every
--restart-every seconds and starts it again on the same database and port; the workers reconnect by
themselves. Meanwhile it samples every process's resident memory. At the end it stops the workers
(SIGTERM: they hand back what they hold) and the coordinator, then checks:

  errors = RPCs that failed for good (a worker's error line, a report or hand-back given up, a lease
           lost, a worker that exited before it was told to)
         + lost reports (an epoch or a completion the coordinator acknowledged to a worker, per the
           worker's log, that is not in the database)
         + trials in a wrong state (failed or pruned zero-work trials, a complete trial without its
           epoch or objective, a waiting trial with a live attempt, attempts ended otherwise than by
           their worker or its shutdown, numbers not contiguous, counts that disagree)

and prints the workers' resident memory (first vs last minute, per worker and in all) and the
coordinator's within each life (first vs last sample of each life). Exit status 0 when there were
no errors and every figure stayed within --memory-tolerance, else 1.

  bench/soak.py [--build-dir build] [--workers 64] [--minutes 10] [--restart-every 60]
  bench/soak.py --workers 8 --minutes 2          # a rehearsal

Standard library only (python3 >= 3.9). Uses the binaries in BUILD_DIR/bin: hpsearch,
hpsearch-worker and hpsearch-trial-reaper.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = "soak"

# One epoch line, then exit: the cheapest real command trial. The parameters the runner appends
# (`--x 0.42`) land in $1.. of the shell and are ignored.
EPOCH_LINE = '{"type":"epoch","epoch":1,"val_accuracy":0.5,"val_loss":1.0}'

ACK_RE = re.compile(r"trial (\d+) of study " + STUDY +
                    r" \(attempt (\d+), lease (\S+)\): epoch (\d+) acknowledged")
COMPLETE_RE = re.compile(r"trial (\d+) of study " + STUDY +
                         r" \(attempt (\d+), lease (\S+)\): TRIAL_STATE_COMPLETE in")
LEVEL_RE = re.compile(r"\] \[(error|critical)\] ")
# Warnings that mean an RPC was given up for good or a lease was lost (worker/worker.cc).
GIVEN_UP_RE = re.compile(r"could not report the last epoch|could not record the|"
                         r"handing it back failed|: stopped after [0-9.]+ s: ")
# A transient failure the worker retried (worker/coordinator_client.cc, lease_heartbeat.cc).
RETRY_RE = re.compile(r"retrying for up to|heartbeat failed .*retrying")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
# Errors an attempt may legitimately end with here: the worker's own hand-back at its shutdown.
HANDBACK_RE = re.compile(r"received SIGTERM and stopped|stopped before starting this trial")


def rss_kib(pid):
    """Resident set size of a live process in KiB, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trial_tag(port):
    """The $0 of every trial's shell: how leftover trial processes are found."""
    return f"hpsearch-soak-trial-{port}"


def leftover_trials(port):
    """Pids of trial processes of this soak still running."""
    tag = trial_tag(port).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if tag in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def write_study(path, workers, port):
    data = os.path.join(ROOT, "data", "banking77")
    command = ["/bin/sh", "-c", f"echo '{EPOCH_LINE}'", trial_tag(port)]
    quoted = ", ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in command)
    with open(path, "w") as f:
        f.write(f"""name: {STUDY}
seed: 1
data:
  train_file: {data}/train.csv
  test_file: {data}/test.csv
runner:
  type: command
  command: [{quoted}]
  kill_grace_seconds: 2
search_space:
  x: {{type: float, low: 0.0, high: 1.0}}
sampler: random
objective: {{metric: val_accuracy, direction: maximize, from_epoch: last}}
budget: {{n_trials: 100000000, parallelism: {workers}, max_retries: 3}}
final_stage: {{enabled: false}}
""")


class Coordinator:
    """One `hpsearch serve` on a fixed port and database; restarted into a new life each time."""

    def __init__(self, hpsearch, db, port, logdir):
        self.hpsearch, self.db, self.port, self.logdir = hpsearch, db, port, logdir
        self.proc = None
        self.lives = []  # per life: {"start", "ready", "samples": [(t, rss_kib)], "end"}

    def start(self, deadline_s=120):
        life = len(self.lives)
        log = open(os.path.join(self.logdir, f"serve-{life}.log"), "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.hpsearch, "serve", "--db", self.db, "--listen", f"127.0.0.1:{self.port}",
             "--no-dashboard"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        # The first stdout line says it listens (cli/serve_command.cc); a port just released by a
        # SIGKILLed life is taken again at once (gRPC sets SO_REUSEADDR). A failed start is retried
        # until the deadline and counted.
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.wait()
            if time.monotonic() - t0 > deadline_s:
                raise RuntimeError(f"coordinator did not start: {line!r} (serve-{life}.log)")
            return False
        self.lives.append({"start": t0, "ready": time.monotonic(), "samples": [], "end": None})
        return True

    def sample(self, now):
        if self.proc is not None and self.lives:
            rss = rss_kib(self.proc.pid)
            if rss is not None:
                self.lives[-1]["samples"].append((now, rss))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.lives[-1]["end"] = time.monotonic()

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdout.close()
        self.lives[-1]["end"] = time.monotonic()
        return code


def mean_or_none(values):
    return statistics.mean(values) if values else None


def pct(a, b):
    return 100.0 * (b - a) / a if a else float("nan")


def check_database(db, acked_epochs, acked_completions):
    """Returns (figures, problems): the end state of the study checked against the workers' logs."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    problems = []
    figures = {}
    study = con.execute("SELECT study_id, state FROM studies WHERE name = ?", (STUDY,)).fetchone()
    if study is None:
        return figures, ["the study is not in the database"]
    study_id, study_state = study
    figures["study_state"] = study_state
    if study_state != "searching":
        problems.append(f"study state {study_state} (expected searching: its budget is not spent)")
    states = collections.Counter(dict(con.execute(
        "SELECT state, COUNT(*) FROM trials WHERE study_id = ? GROUP BY state", (study_id,))))
    figures["trial_states"] = dict(states)
    for state, count in states.items():
        if state not in ("waiting", "running", "complete"):
            problems.append(f"{count} trials {state} (a zero-work trial can only complete)")
    numbers = con.execute("SELECT COUNT(*), MIN(number), MAX(number) FROM trials WHERE study_id = ?",
                          (study_id,)).fetchone()
    if numbers[0] and (numbers[1] != 0 or numbers[2] != numbers[0] - 1):
        problems.append(f"trial numbers not contiguous: {numbers[0]} trials, {numbers[1]}..{numbers[2]}")
    bad = con.execute("""
        SELECT t.number, t.attempt FROM trials t
        WHERE t.study_id = ? AND t.state = 'complete' AND (
          t.objective_value IS NULL OR t.ended_ms IS NULL OR
          NOT EXISTS (SELECT 1 FROM trial_attempts a WHERE a.trial_id = t.trial_id
                      AND a.attempt = t.attempt AND a.state = 'complete') OR
          (SELECT COUNT(*) FROM epochs e WHERE e.trial_id = t.trial_id AND e.attempt = t.attempt) != 1)
        """, (study_id,)).fetchall()
    if bad:
        problems.append(f"{len(bad)} complete trials without exactly their epoch, objective, end or "
                        f"complete attempt, e.g. trial {bad[0][0]} attempt {bad[0][1]}")
    bad = con.execute("""
        SELECT t.number, t.state FROM trials t WHERE t.study_id = ? AND (
          (t.state = 'waiting' AND EXISTS (SELECT 1 FROM trial_attempts a
                                           WHERE a.trial_id = t.trial_id AND a.state = 'running')) OR
          (t.state = 'running' AND (t.lease_id IS NULL OR
            (SELECT COUNT(*) FROM trial_attempts a WHERE a.trial_id = t.trial_id
             AND a.state = 'running') != 1)))
        """, (study_id,)).fetchall()
    if bad:
        problems.append(f"{len(bad)} waiting/running trials whose attempts disagree, e.g. trial "
                        f"{bad[0][0]} ({bad[0][1]})")
    attempts = collections.Counter()
    other_errors = []
    for state, ended_by, stopped, error in con.execute("""
            SELECT a.state, a.ended_by, a.stopped, a.error FROM trial_attempts a
            JOIN trials t USING (trial_id) WHERE t.study_id = ?""", (study_id,)):
        # A worker's SIGTERM at the end is a stop (trial_attempts.stopped, schema v5) or, for a
        # trial it had not started, a hand-back.
        if state == "failed" and ended_by == "worker" and (stopped or
                                                           HANDBACK_RE.search(error or "")):
            attempts["handed back at worker shutdown"] += 1
        elif state == "complete" and ended_by == "worker":
            attempts["complete"] += 1
        elif state == "running" and ended_by is None:
            attempts["running"] += 1
        else:
            attempts[f"{state} (ended by {ended_by})"] += 1
            other_errors.append(f"{state}/{ended_by}: {(error or '')[:160]}")
    figures["attempts"] = dict(attempts)
    if other_errors:
        problems.append(f"{len(other_errors)} attempts ended otherwise than by their worker or its "
                        f"shutdown, e.g. {other_errors[0]}")
    stored_epochs = set(con.execute(
        "SELECT e.lease_id, e.epoch FROM epochs e JOIN trials t USING (trial_id) WHERE t.study_id = ?",
        (study_id,)))
    completed_leases = set(lease for (lease,) in con.execute(
        """SELECT a.lease_id FROM trial_attempts a JOIN trials t USING (trial_id)
           WHERE t.study_id = ? AND a.state = 'complete'""", (study_id,)))
    lost_epochs = [k for k in acked_epochs if k not in stored_epochs]
    # A completion whose epoch is stored under its lease but whose attempt row names another lease
    # is not lost; its attempt was written twice (two leases of one attempt number).
    stored_leases = set(lease for lease, _ in stored_epochs)
    lost_completions = [k for k in acked_completions
                        if k not in completed_leases and k not in stored_leases]
    relabelled = [k for k in acked_completions if k not in completed_leases and k in stored_leases]
    figures["acked_epochs"] = len(acked_epochs)
    figures["acked_completions"] = len(acked_completions)
    figures["stored_epochs"] = len(stored_epochs)
    figures["complete_attempts"] = len(completed_leases)
    figures["lost_reports"] = len(lost_epochs) + len(lost_completions)
    if lost_epochs:
        problems.append(f"{len(lost_epochs)} acknowledged epochs not in the database, e.g. {lost_epochs[0]}")
    if lost_completions:
        problems.append(f"{len(lost_completions)} acknowledged completions not in the database, "
                        f"e.g. lease {lost_completions[0]}")
    if relabelled:
        problems.append(f"wrong state: {len(relabelled)} acknowledged completions stored (their "
                        "trial complete, their epoch under their lease) on an attempt row that "
                        f"names another lease, e.g. lease {relabelled[0]}")
    unlogged = completed_leases - acked_completions
    if unlogged:
        problems.append(f"wrong state: {len(unlogged)} complete attempts whose lease no worker "
                        f"saw acknowledged, e.g. lease {sorted(unlogged)[0]}")
    if states.get("complete", 0) != len(completed_leases):
        problems.append(f"{states.get('complete', 0)} complete trials but {len(completed_leases)} "
                        "complete attempts")
    con.close()
    return figures, problems


def scan_worker_logs(paths):
    acked_epochs, acked_completions = set(), set()
    given_up = []
    retries = 0
    for path in paths:
        with open(path, errors="replace") as f:
            for raw in f:
                line = ANSI_RE.sub("", raw)
                m = ACK_RE.search(line)
                if m:
                    acked_epochs.add((m.group(3), int(m.group(4))))
                    continue
                m = COMPLETE_RE.search(line)
                if m:
                    acked_completions.add(m.group(3))
                    continue
                if LEVEL_RE.search(line) or GIVEN_UP_RE.search(line):
                    given_up.append(f"{os.path.basename(path)}: {line.strip()[:200]}")
                elif RETRY_RE.search(line):
                    retries += 1
    return acked_epochs, acked_completions, given_up, retries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--restart-every", type=float, default=60,
                        help="seconds between coordinator SIGKILLs (default 60)")
    parser.add_argument("--sample-every", type=float, default=2, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds after each coordinator start (the first: after the submit) "
                             "before its first RSS sample (workers reconnecting, gRPC threads "
                             "starting)")
    parser.add_argument("--memory-tolerance", type=float, default=10, help="percent (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, db)")
    args = parser.parse_args()

    bindir = os.path.join(os.path.abspath(args.build_dir), "bin")
    hpsearch = os.path.join(bindir, "hpsearch")
    worker_exe = os.path.join(bindir, "hpsearch-worker")
    for exe in (hpsearch, worker_exe, os.path.join(bindir, "hpsearch-trial-reaper")):
        if not os.access(exe, os.X_OK):
            sys.exit(f"soak.py: {exe} not built (ninja -C build hpsearch hpsearch-worker "
                     "hpsearch-trial-reaper)")
    work = tempfile.mkdtemp(prefix="hpsearch-soak-")
    db = os.path.join(work, "soak.db")
    study = os.path.join(work, "soak.yaml")
    port = free_port()
    write_study(study, args.workers, port)
    address = f"127.0.0.1:{port}"
    duration = args.minutes * 60
    print(f"soak: {args.workers} hpsearch-worker processes x {args.minutes:g} min, coordinator "
          f"SIGKILLed and restarted every {args.restart_every:g} s, on {address}; scratch {work}",
          flush=True)

    coordinator = Coordinator(hpsearch, db, port, work)
    failed_starts = 0
    workers = []
    worker_logs = []
    worker_samples = []  # per worker: [(t, rss_kib)]
    early_exits = []
    code = 1
    try:
        while not coordinator.start():
            failed_starts += 1
            time.sleep(0.5)
        for i in range(args.workers):
            path = os.path.join(work, f"worker-{i}.log")
            worker_logs.append(path)
            with open(path, "w") as log:
                workers.append(subprocess.Popen(
                    [worker_exe, "--coordinator", address, "--name", f"soak-{i}", "-v",
                     "--acquire-wait", "10"],
                    stdout=log, stderr=subprocess.STDOUT))
            worker_samples.append([])
        # Every worker registered (LibTorch loaded, first RPC done) before the clock starts, so the
        # first minute's memory is a running worker's, not one still starting.
        cap = time.monotonic() + 600
        while time.monotonic() < cap:
            registered = 0
            for path in worker_logs:
                with open(path, errors="replace") as f:
                    registered += "registered with" in f.read()
            if registered == len(worker_logs):
                break
            time.sleep(1)
        submit = subprocess.run([hpsearch, "submit", study, "--coordinator", address],
                                capture_output=True, text=True, timeout=300)
        if submit.returncode != 0:
            raise RuntimeError(f"submit failed ({submit.returncode}): {submit.stderr.strip()}")
        start = time.monotonic()
        next_kill = start + args.restart_every
        next_sample = start
        downtimes = []
        while True:
            now = time.monotonic()
            if now >= start + duration:
                break
            if now >= next_kill and now + args.restart_every / 2 < start + duration:
                coordinator.kill()
                t_kill = time.monotonic()
                while not coordinator.start():
                    failed_starts += 1
                    time.sleep(0.5)
                downtimes.append(time.monotonic() - t_kill)
                next_kill += args.restart_every
                print(f"soak: {now - start:6.0f} s: coordinator life {len(coordinator.lives)} "
                      f"(back in {downtimes[-1]:.1f} s)", flush=True)
            if now >= next_sample:
                t = now - start
                # Sampled from `warmup` s after the workers' calls reach this life: after it listens,
                # or for the first life (listening long before the workers started) after the submit.
                if now - max(coordinator.lives[-1]["ready"], start) >= args.warmup:
                    coordinator.sample(t)
                for i, p in enumerate(workers):
                    if p.poll() is None:
                        rss = rss_kib(p.pid)
                        if rss is not None:
                            worker_samples[i].append((t, rss))
                    elif i not in [e[0] for e in early_exits]:
                        early_exits.append((i, p.returncode, t))
                next_sample += args.sample_every
            time.sleep(0.2)
        end = time.monotonic() - start
        # Stop the workers as an operator would (they hand back what they hold), then the
        # coordinator; poll with a generous cap.
        for p in workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        cap = time.monotonic() + 180
        for i, p in enumerate(workers):
            try:
                p.wait(timeout=max(1, cap - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                early_exits.append((i, "did not stop within 180 s of SIGTERM", end))
            else:
                if p.returncode != 0 and i not in [e[0] for e in early_exits]:
                    early_exits.append((i, p.returncode, end))
        serve_code = coordinator.stop()
        if serve_code != 0:
            early_exits.append(("coordinator", serve_code, end))
        # The workers' trial reapers end every trial's processes; poll for them with a cap.
        cap = time.monotonic() + 60
        while leftover_trials(port) and time.monotonic() < cap:
            time.sleep(0.5)
        for pid in leftover_trials(port):
            early_exits.append((f"trial process {pid}", "outlived its worker", end))
        with open(os.path.join(work, "rss.csv"), "w") as f:
            f.write("process,life,seconds,rss_kib\n")
            for i, samples in enumerate(worker_samples):
                f.writelines(f"worker-{i},,{t:.1f},{r}\n" for t, r in samples)
            for n, life in enumerate(coordinator.lives, 1):
                f.writelines(f"coordinator,{n},{t:.1f},{r}\n" for t, r in life["samples"])
        code = report(args, work, db, coordinator, worker_logs, worker_samples, early_exits,
                      failed_starts, downtimes, end)
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        if coordinator.proc is not None and coordinator.proc.poll() is None:
            coordinator.proc.kill()
            coordinator.proc.wait()
        if args.keep or code != 0:
            print(f"soak: logs and database kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


def report(args, work, db, coordinator, worker_logs, worker_samples, early_exits, failed_starts,
           downtimes, end):
    acked_epochs, acked_completions, given_up, retries = scan_worker_logs(worker_logs)
    figures, problems = check_database(db, acked_epochs, acked_completions)
    rpc_errors = len(given_up) + len(early_exits) + failed_starts
    wrong_states = [p for p in problems if "not in the database" not in p]
    lost = figures.get("lost_reports", 0)
    errors = rpc_errors + lost + len(wrong_states)
    ok = errors == 0

    print(f"\nsoak: ran {end:.0f} s; {len(coordinator.lives)} coordinator lives; "
          f"downtime per restart median {statistics.median(downtimes) if downtimes else 0:.1f} s, "
          f"max {max(downtimes) if downtimes else 0:.1f} s")
    complete = figures.get("trial_states", {}).get("complete", 0)
    print(f"trials: {figures.get('trial_states')} ({complete / end:.1f} complete trials/s); "
          f"attempts: {figures.get('attempts')}")
    print(f"reports acknowledged (worker logs): {figures.get('acked_epochs', 0)} epochs, "
          f"{figures.get('acked_completions', 0)} completions; in the database: "
          f"{figures.get('stored_epochs', 0)} epochs, {figures.get('complete_attempts', 0)} "
          "complete attempts")
    print(f"ERRORS: {errors} = RPCs failed for good {rpc_errors} + lost reports {lost} + wrong "
          f"states {len(wrong_states)}  (transient failures the workers retried: {retries})")
    for line in given_up[:10]:
        print(f"  given up: {line}")
    for e in early_exits[:10]:
        print(f"  exited: {e}")
    if failed_starts:
        print(f"  coordinator start failures: {failed_starts}")
    for p in problems:
        print(f"  database: {p}")

    # Workers: mean RSS over the first and the last minute of the run.
    window = min(60.0, end / 2)
    firsts, lasts, growths = [], [], []
    for samples in worker_samples:
        first = mean_or_none([r for t, r in samples if t < window])
        last = mean_or_none([r for t, r in samples if t >= end - window])
        if first is None or last is None:
            continue
        firsts.append(first)
        lasts.append(last)
        growths.append(pct(first, last))
    if growths:
        total_first, total_last = sum(firsts), sum(lasts)
        worst = max(growths)
        print(f"\nworker RSS, first vs last {window:.0f} s (mean of samples every "
              f"{args.sample_every:g} s), {len(growths)} workers:")
        print(f"  all workers: {total_first / 1024:.0f} MiB -> {total_last / 1024:.0f} MiB "
              f"({pct(total_first, total_last):+.1f}%)")
        print(f"  per worker: median {statistics.median(firsts) / 1024:.1f} -> "
              f"{statistics.median(lasts) / 1024:.1f} MiB; change min {min(growths):+.1f}%, "
              f"median {statistics.median(growths):+.1f}%, max {worst:+.1f}%")
        if abs(pct(total_first, total_last)) > args.memory_tolerance or worst > args.memory_tolerance:
            ok = False
            print(f"  OVER {args.memory_tolerance:g}%")
    print(f"\ncoordinator RSS per life (first sample {args.warmup:g} s after it listens, life 1: "
          "after the submit; last sample before its SIGKILL/SIGTERM):")
    print("| life | seconds sampled | first (MiB) | last (MiB) | change |")
    print("|---|---|---|---|---|")
    worst_life = 0.0
    for n, life in enumerate(coordinator.lives, 1):
        s = life["samples"]
        if len(s) < 2:
            print(f"| {n} | - | - | - | too short to sample |")
            continue
        change = pct(s[0][1], s[-1][1])
        worst_life = max(worst_life, abs(change))
        print(f"| {n} | {s[-1][0] - s[0][0]:.0f} | {s[0][1] / 1024:.1f} | {s[-1][1] / 1024:.1f} | "
              f"{change:+.1f}% |")
    if worst_life > args.memory_tolerance:
        ok = False
        print(f"  a life changed by {worst_life:.1f}% > {args.memory_tolerance:g}%")
    print(f"\nsoak: {'PASS' if ok else 'FAIL'} ({errors} errors; largest coordinator change within "
          f"a life {worst_life:.1f}%)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
