"""An asked trial's lease lives as long as the asking process: heartbeated while it runs, expired (and the trial
handed out again) when it dies."""
import os
import signal
import subprocess
import sys
import time

import pytest

import hpsearch

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import hpsearch
client = hpsearch.connect(sys.argv[2], client_name=sys.argv[4])
study = client.load_study("leased")
trial = study.ask()
print(trial.number, flush=True)
time.sleep(float(sys.argv[3]))  # several lease ttls: only the heartbeats keep the lease
study.tell(trial, 1.0)
print("told", flush=True)
"""


def child(client, seconds, name):
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen([sys.executable, "-c", CHILD, package, client.address, str(seconds), name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_live_client_keeps_its_lease_and_a_dead_ones_trial_comes_back(client):
    study = client.create_study("leased", {"x": {"type": "float", "low": 0.0, "high": 1.0}}, n_trials=2)
    alive = child(client, 7.0, "alive")  # lease ttl is 3 s (conftest.FAST_LEASES)
    out, err = alive.communicate(timeout=60)
    assert alive.returncode == 0, err
    assert out.split() == ["0", "told"]
    assert study.trials[0].attempt == 1 and study.trials[0].state == "COMPLETE"

    doomed = child(client, 60.0, "doomed")
    assert doomed.stdout.readline().strip() == "1"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    deadline = time.monotonic() + 20
    while True:  # budget spent while trial 1 still runs under the dead client's lease
        try:
            trial = study.ask()
            break
        except hpsearch.StudyOver as over:
            assert over.code == "OUT_OF_RANGE"
            assert time.monotonic() < deadline, "the dead client's lease never expired"
            time.sleep(0.2)
    assert trial.number == 1
    study.tell(trial, 0.5)
    assert study.trials[1].attempt == 2
    assert study.best_value == 0.5
