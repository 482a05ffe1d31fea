"""Optuna 3.1's FanovaImportanceEvaluator as the peer of bench/importance_bench.

Reads one JSON study per line on stdin and answers one JSON line on stdout:
  {"space": [{"name", "type": "float"|"int"|"categorical", "low", "high", "log", "choices"}],
   "trials": [{"params": {...}, "value": V}, ...], "seed": S}
  -> {"importances": {name: importance, ...}, "seconds": T}
"seconds" is the time of get_param_importances alone (time.perf_counter).
"""
import json
import sys
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")


def distribution(p):
    if p["type"] == "float":
        return optuna.distributions.FloatDistribution(p["low"], p["high"], log=p.get("log", False))
    if p["type"] == "int":
        return optuna.distributions.IntDistribution(p["low"], p["high"], log=p.get("log", False))
    return optuna.distributions.CategoricalDistribution(p["choices"])


for line in sys.stdin:
    request = json.loads(line)
    distributions = {p["name"]: distribution(p) for p in request["space"]}
    study = optuna.create_study()
    study.add_trials([
        optuna.trial.create_trial(params=t["params"], distributions=distributions, value=t["value"])
        for t in request["trials"]
    ])
    start = time.perf_counter()
    importances = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=request["seed"]))
    seconds = time.perf_counter() - start
    print(json.dumps({"importances": dict(importances), "seconds": seconds}), flush=True)
