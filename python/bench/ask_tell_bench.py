#!/usr/bin/python3
"""Median ask+tell round trip: hpsearch (a coordinator started by hpsearch.local(), over loopback gRPC, every
Tell durable in SQLite) against Optuna's in-memory study, on the same 100-trial, 5-parameter function.

    /usr/bin/python3 python/bench/ask_tell_bench.py [--trials 100] [--sampler tpe] [--durability normal]

Prints both medians (and p90) in milliseconds. The hpsearch figure includes the objective's cost (nil here), one
Ask and one Tell RPC; Optuna's one study.ask() and one study.tell(). Needs Debian's python3-optuna for the
comparison (it is skipped, with a note, without it).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import hpsearch  # noqa: E402

NAMES = [f"x{i}" for i in range(5)]


def objective(params):
    return sum((params[n] - 0.1 * i) ** 2 for i, n in enumerate(NAMES))


def percentile(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_hpsearch(trials, sampler, durability):
    space = {n: {"type": "float", "low": -1.0, "high": 1.0} for n in NAMES}
    with tempfile.TemporaryDirectory() as tmp:
        with hpsearch.local(os.path.join(tmp, "bench.db"), serve_args=("--durability", durability)) as client:
            study = client.create_study("bench", space, sampler=sampler, seed=1, n_trials=trials)
            times = []
            for _ in range(trials):
                start = time.perf_counter()
                trial = study.ask()
                study.tell(trial, objective(trial.params))
                times.append(time.perf_counter() - start)
            best = study.best_value
    return times, best


def bench_optuna(trials, sampler):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {"tpe": optuna.samplers.TPESampler(seed=1), "random": optuna.samplers.RandomSampler(seed=1)}
    study = optuna.create_study(sampler=samplers[sampler])
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        params = {n: trial.suggest_float(n, -1.0, 1.0) for n in NAMES}
        study.tell(trial, objective(params))
        times.append(time.perf_counter() - start)
    return times, study.best_value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    args = parser.parse_args()
    ours, our_best = bench_hpsearch(args.trials, args.sampler, args.durability)
    print(f"hpsearch (local coordinator, {args.sampler}, durability {args.durability}): {args.trials} trials, "
          f"median ask+tell {statistics.median(ours) * 1e3:.2f} ms, p90 {percentile(ours, 0.9) * 1e3:.2f} ms, "
          f"best {our_best:.4f}")
    try:
        theirs, their_best = bench_optuna(args.trials, args.sampler)
    except ImportError:
        print("optuna: not installed (Debian's python3-optuna); no comparison")
        return
    print(f"optuna (in-memory, {args.sampler}): {args.trials} trials, "
          f"median ask+tell {statistics.median(theirs) * 1e3:.2f} ms, p90 {percentile(theirs, 0.9) * 1e3:.2f} ms, "
          f"best {their_best:.4f}")


if __name__ == "__main__":
    main()
