#!/usr/bin/python3
"""hpsearch from Python, notebook style: run each cell in order (or the whole file).

    PYTHONPATH=python /usr/bin/python3 examples/python/quickstart.py      # from a checkout, after the build
"""
# %% A coordinator for this session: `hpsearch serve` on a free loopback port, stopped with the client.
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import hpsearch  # noqa: E402

workdir = tempfile.mkdtemp(prefix="hpsearch-quickstart-")
client = hpsearch.local(os.path.join(workdir, "results.db"))

# %% The space is declared up front, in the study file's format; TPE samples it in the coordinator.
study = client.create_study("quickstart", {
    "x": {"type": "float", "low": -5.0, "high": 5.0},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 4},
    "act": {"type": "categorical", "choices": ["relu", "gelu"]},
}, direction="minimize", seed=0, n_trials=40)


def objective(trial):
    p = trial.params
    for step in range(3):  # intermediate values for a pruner, as Optuna's trial.report
        trial.report((p["x"] - 1) ** 2 / (step + 1), step)
    return (p["x"] - 1) ** 2 + abs(math.log10(p["lr"]) + 3) + 0.1 * p["layers"] + (p["act"] == "relu")


# %% Run 40 trials on 4 threads, then look at the best one.
study.optimize(objective, n_jobs=4)
print("best", study.best_value, study.best_params)

# %% Ask and tell by hand works too (here the budget is spent, so Ask says the study is over).
try:
    study.tell(study.ask(), 0.0)
except hpsearch.StudyOver as over:
    print("no more trials:", over.details)

# %% The trials as a data frame (Optuna's columns), live or straight from the results file.
print(study.trials_dataframe().sort_values("value").head())
client.close()
print(hpsearch.load_results(os.path.join(workdir, "results.db")).epochs.head())
shutil.rmtree(workdir)
