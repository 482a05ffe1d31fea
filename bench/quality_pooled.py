#!/usr/bin/python3
"""Pooled statistics over many seeds of bench/sampler_quality's searches (development tool).

A median over 20 seeds moves by more than the gap between two good samplers, so the comparisons
in docs/performance.md ("How much of this is the seeds", "What changed: ...") pool many seeds:

  P(A < B): the probability that a search of A ends below a search of B after N trials, over all
            pairs of their searches of one function (ties count half);
  bootstrap: draw 20 seeds at random for each side, count the functions where the median of A is
            at most the median of B (the benchmark's criterion); the mean count and how often it
            is at least 6 of 9, over 2,000 draws.

Usage (dumps come from `sampler_quality --dump FILE`, one JSON line per search):

  # ours against Optuna, whose curves sampler_quality stored with --optuna-cache DIR
  /usr/bin/python3 bench/quality_pooled.py --ours A.jsonl [more.jsonl ...] --optuna-cache DIR
  # ours against ours (e.g. --bandwidth-floor 0.6 against 1.0 on the same seeds)
  /usr/bin/python3 bench/quality_pooled.py --ours A.jsonl --against B.jsonl

Only the "hpsearch tpe" lines of the dumps are read.
"""
import argparse
import bisect
import collections
import json
import os
import random
import statistics
import sys

CHECKPOINTS = (25, 50, 100)
CONTENDER = "hpsearch tpe"


def load_dumps(paths):
    """function -> seed -> curve (best value after each trial)."""
    curves = collections.defaultdict(dict)
    for path in paths:
        if not os.path.isfile(path):
            sys.exit(f"{path}: no such file; pass files written by sampler_quality --dump")
        with open(path) as f:
            for number, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{number}: not a JSON line ({e}); pass files written by "
                             "sampler_quality --dump")
                if row.get("contender") == CONTENDER:
                    curves[row["function"]][row["seed"]] = row["curve"]
    return curves


def load_optuna(cache_dir, ours):
    """Optuna's curves for the functions and seeds of `ours`, where the cache has them."""
    curves = collections.defaultdict(dict)
    for function, seeds in ours.items():
        for seed in seeds:
            path = os.path.join(cache_dir, f"{function}_{seed}_100.json")
            if os.path.exists(path):
                with open(path) as f:
                    curves[function][seed] = json.load(f)
    return curves


def p_below(a, b):
    """P(x < y) for x from a, y from b, ties half."""
    a = sorted(a)
    total = 0.0
    for y in b:
        lo, hi = bisect.bisect_left(a, y), bisect.bisect_right(a, y)
        total += lo + 0.5 * (hi - lo)
    return total / (len(a) * len(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ours", nargs="+", required=True, help="dumps of side A")
    side_b = parser.add_mutually_exclusive_group(required=True)
    side_b.add_argument("--optuna-cache", help="directory of sampler_quality --optuna-cache")
    side_b.add_argument("--against", nargs="+", help="dumps of side B")
    args = parser.parse_args()

    a = load_dumps(args.ours)
    b = load_optuna(args.optuna_cache, a) if args.optuna_cache else load_dumps(args.against)
    functions = sorted(f for f in a if b.get(f))
    if not functions:
        sys.exit("no function has searches on both sides: check the dumps and the cache directory")
    n_max = min(len(c) for side in (a, b) for f in functions for c in side[f].values())
    checkpoints = [n for n in CHECKPOINTS if n <= n_max]

    print("P(A < B) per function, pooled over all pairs of searches")
    print("%-24s %6s %s" % ("function", "seeds", " ".join("%7s" % f"N={n}" for n in checkpoints)))
    means = [0.0] * len(checkpoints)
    for f in functions:
        row = []
        for k, n in enumerate(checkpoints):
            p = p_below([c[n - 1] for c in a[f].values()], [c[n - 1] for c in b[f].values()])
            row.append(p)
            means[k] += p / len(functions)
        seeds = f"{len(a[f])}/{len(b[f])}"
        print("%-24s %6s %s" % (f, seeds, " ".join("%7.3f" % p for p in row)))
    print("%-24s %6s %s" % ("mean", "", " ".join("%7.3f" % m for m in means)))

    rng = random.Random(7)
    counts = {n: [] for n in checkpoints}
    for _ in range(2000):
        for n in checkpoints:
            count = 0
            for f in functions:
                a_seeds, b_seeds = list(a[f]), list(b[f])
                median_a = statistics.median(a[f][rng.choice(a_seeds)][n - 1] for _ in range(20))
                median_b = statistics.median(b[f][rng.choice(b_seeds)][n - 1] for _ in range(20))
                count += median_a <= median_b
            counts[n].append(count)
    need = -(-2 * len(functions) // 3)  # 2/3 of the functions, rounded up
    print(f"\nbootstrap, 20 seeds per side: functions (of {len(functions)}) where A's median <= B's")
    print("%-24s %6s %s" % ("mean count", "", " ".join("%7.2f" % statistics.mean(counts[n])
                                                       for n in checkpoints)))
    print("%-24s %6s %s" % (f"P(count >= {need})", "", " ".join(
        "%7.2f" % (sum(c >= need for c in counts[n]) / len(counts[n])) for n in checkpoints)))


if __name__ == "__main__":
    main()
