"""Optuna 3.1 as an ask/tell peer of bench/sampler_quality and bench/sampler_speed.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
  {"cmd": "study", "space": [...], "seed": S, "sampler": "tpe"|"tpe_multivariate"|"random",
   "history": [{"params": {...}, "value": V}, ...]}      -> {"ok": true}
  {"cmd": "ask"}                                          -> {"params": {...}, "seconds": T}
  {"cmd": "tell", "value": V}                             -> {"ok": true}
  {"cmd": "ask_discard"}                                  -> {"seconds": T}   (ask, then tell FAIL)
A space entry: {"name", "type": "float"|"int"|"categorical", "low", "high", "log", "step",
"choices"}. "seconds" is the time of study.ask() plus the suggest calls, measured here with
time.perf_counter, so the pipe is not counted. The study is in memory and minimises.
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
        return optuna.distributions.FloatDistribution(
            p["low"], p["high"], log=p.get("log", False), step=p.get("step"))
    if p["type"] == "int":
        return optuna.distributions.IntDistribution(
            p["low"], p["high"], log=p.get("log", False), step=p.get("step") or 1)
    return optuna.distributions.CategoricalDistribution(p["choices"])


def suggest(trial, p):
    if p["type"] == "float":
        return trial.suggest_float(p["name"], p["low"], p["high"], log=p.get("log", False),
                                   step=p.get("step"))
    if p["type"] == "int":
        return trial.suggest_int(p["name"], p["low"], p["high"], step=p.get("step") or 1,
                                 log=p.get("log", False))
    return trial.suggest_categorical(p["name"], p["choices"])


def make_sampler(kind, seed):
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=(kind == "tpe_multivariate"))


def main():
    study = None
    space = []
    dists = {}
    pending = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "study":
            space = cmd["space"]
            dists = {p["name"]: distribution(p) for p in space}
            study = optuna.create_study(
                direction="minimize", sampler=make_sampler(cmd.get("sampler", "tpe"), cmd["seed"]))
            trials = [optuna.trial.create_trial(params=h["params"], distributions=dists,
                                                value=h["value"])
                      for h in cmd.get("history", [])]
            if trials:
                study.add_trials(trials)
            answer = {"ok": True}
        elif cmd["cmd"] in ("ask", "ask_discard"):
            start = time.perf_counter()
            pending = study.ask()
            params = {p["name"]: suggest(pending, p) for p in space}
            seconds = time.perf_counter() - start
            if cmd["cmd"] == "ask_discard":
                study.tell(pending, state=optuna.trial.TrialState.FAIL)
                pending = None
                answer = {"seconds": seconds}
            else:
                answer = {"params": params, "seconds": seconds}
        elif cmd["cmd"] == "tell":
            study.tell(pending, cmd["value"])
            pending = None
            answer = {"ok": True}
        else:
            answer = {"error": "unknown command " + cmd["cmd"]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
