"""Many optimize jobs, and several clients, on one study: every trial of the budget is run exactly once."""
import collections
import os
import subprocess
import sys
import threading

import hpsearch

SPACE = {f"x{i}": {"type": "float", "low": -1.0, "high": 1.0} for i in range(5)}


def test_parallel_optimize_loses_and_duplicates_no_trial(client):
    n_trials = 120
    study = client.create_study("parallel", SPACE, seed=11, n_trials=n_trials)
    seen = collections.Counter()
    lock = threading.Lock()

    def objective(trial):
        with lock:
            seen[trial.number] += 1
        return sum(v * v for v in trial.params.values())

    study.optimize(objective, n_jobs=8)  # until the budget is spent
    assert sorted(seen) == list(range(n_trials))
    assert max(seen.values()) == 1
    trials = study.trials
    assert len(trials) == n_trials
    assert all(t.state == "COMPLETE" and t.attempt == 1 for t in trials)
    assert study.state == "complete"
    best = min(trials, key=lambda t: t.value)
    assert study.best_trial.number == best.number


SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import hpsearch
client = hpsearch.connect(sys.argv[2])
study = client.load_study("shared")
numbers = []
def objective(trial):
    numbers.append(trial.number)
    return sum(v * v for v in trial.params.values())
study.optimize(objective, n_jobs=4)
print(" ".join(map(str, numbers)))
client.close()
"""


def test_several_client_processes_share_one_study(client):
    n_trials = 60
    study = client.create_study("shared", SPACE, sampler="random", n_trials=n_trials)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    processes = [subprocess.Popen([sys.executable, "-c", SCRIPT, package, client.address], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    numbers = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        numbers += [int(n) for n in out.split()]
    assert sorted(numbers) == list(range(n_trials))
    assert study.state == "complete"
