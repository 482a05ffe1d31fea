#!/usr/bin/python3
"""TF-IDF + logistic regression on exactly the splits an hpsearch study trains on.

A classical baseline to put beside a study's result: it reads the study file, loads the same data
files with the same label ids, splits validation off the training file exactly as hpsearch does
(core/data_split.cc: the same seed, fraction, stratification and random stream, re-implemented
here and checked against the C++ core by tests/core/data_split_test.cc), picks the regularisation
strength C on the validation set, refits as the study's final stage retrains (retrain_on: train
keeps the model fitted on train; retrain_on: train_validation refits it on train + validation), and
prints validation and test accuracy, F1 (weighted and macro) and the fit times.

Run with Debian's python3 (python3-sklearn, python3-yaml):
    /usr/bin/python3 bench/peer/tfidf_logreg_baseline.py examples/banking77-tiny.yaml
    /usr/bin/python3 bench/peer/tfidf_logreg_baseline.py STUDY.yaml --json   # one JSON line
    /usr/bin/python3 bench/peer/tfidf_logreg_baseline.py STUDY.yaml --dump-split split.json
"""

import argparse
import csv
import json
import math
import os
import sys
import time

MASK64 = (1 << 64) - 1


class Mt19937_64:
    """std::mt19937_64: its output sequence for a seed is fixed by the C++ standard."""

    N, M = 312, 156

    def __init__(self, seed):
        self.mt = [0] * self.N
        self.mt[0] = seed & MASK64
        for i in range(1, self.N):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64
        self.index = self.N

    def _twist(self):
        mt = self.mt
        for i in range(self.N):
            y = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % self.N] & 0x7FFFFFFF)
            v = mt[(i + self.M) % self.N] ^ (y >> 1)
            if y & 1:
                v ^= 0xB5026F5AA96619E9
            mt[i] = v
        self.index = 0

    def next_u64(self):
        if self.index >= self.N:
            self._twist()
        x = self.mt[self.index]
        self.index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & MASK64


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def mix_seed(seed, stream):
    return splitmix64(splitmix64(seed & MASK64) ^ stream)


class SeededRng:
    """core/seeded_rng.h: bounded integers by rejection, Fisher-Yates from the back."""

    def __init__(self, seed):
        self.engine = Mt19937_64(seed)

    def uniform_below(self, bound):
        threshold = ((1 << 64) - bound) % bound
        while True:
            r = self.engine.next_u64()
            if r >= threshold:
                return r % bound

    def shuffle(self, items):
        for i in range(len(items), 1, -1):
            j = self.uniform_below(i)
            items[i - 1], items[j] = items[j], items[i - 1]


TIE_BREAK_STREAM, CHOICE_STREAM = 1, 2


def validation_count(n, fraction):
    n_validation = int(math.ceil(fraction * n))
    if not 0 < fraction < 1 or n_validation < 1 or n_validation >= n:
        sys.exit(f"validation_fraction {fraction} of {n} examples leaves train or validation empty")
    return n_validation


def stratified_quotas(counts, n, n_validation, seed):
    quotas, remainders, capacity = [], [], 0
    for c in counts:
        cap = max(c - 1, 0)
        capacity += cap
        quotas.append(min(n_validation * c // n, cap))
        remainders.append(n_validation * c % n)
    if capacity < n_validation:
        sys.exit("stratified split: some class would lose its last training example")
    order = list(range(len(counts)))
    SeededRng(mix_seed(seed, TIE_BREAK_STREAM)).shuffle(order)
    order.sort(key=lambda c: -remainders[c])  # stable, as std::stable_sort
    assigned = sum(quotas)
    while assigned < n_validation:
        for c in order:
            if assigned == n_validation:
                break
            if quotas[c] < max(counts[c] - 1, 0):
                quotas[c] += 1
                assigned += 1
    return quotas


def split_train_validation(labels, num_classes, fraction, stratify, seed):
    """core/data_split.cc SplitTrainValidation: (train indices, validation indices), ascending."""
    n = len(labels)
    n_validation = validation_count(n, fraction)
    held_out = [False] * n
    rng = SeededRng(mix_seed(seed, CHOICE_STREAM))
    if stratify:
        members = [[] for _ in range(num_classes)]
        for i, label in enumerate(labels):
            members[label].append(i)
        quotas = stratified_quotas([len(m) for m in members], n, n_validation, seed)
        for c, m in enumerate(members):
            rng.shuffle(m)
            for k in range(quotas[c]):
                held_out[m[k]] = True
    else:
        order = list(range(n))
        rng.shuffle(order)
        for k in range(n_validation):
            held_out[order[k]] = True
    train = [i for i in range(n) if not held_out[i]]
    validation = [i for i in range(n) if held_out[i]]
    return train, validation


def sort_label_names(names):
    """core/labels.cc SortLabelNames: lower-cased ASCII order, or numeric for integer names."""
    unique = sorted(set(names))
    if unique and all(s.isdigit() and s.isascii() and len(s) <= 18 and (s == "0" or s[0] != "0")
                      for s in unique):
        return sorted(unique, key=lambda s: (len(s), s))

    def ascii_lower(s):
        return "".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in s)

    return [name for _, name in sorted((ascii_lower(s), s) for s in unique)]


def read_records(path, text_column, label_column, data_format):
    fmt = data_format
    if fmt in ("", "auto", "DATA_FORMAT_AUTO"):
        fmt = "jsonl" if path.endswith((".jsonl", ".json")) else "csv"
    fmt = fmt.lower().replace("data_format_", "")
    texts, labels = [], []
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.append(row[text_column])
                labels.append(row[label_column])
    else:
        with open(path, encoding="utf-8") as f:
            content = f.read()
        records = json.loads(content) if content.lstrip().startswith("[") else [
            json.loads(line) for line in content.splitlines() if line.strip()]
        for r in records:
            texts.append(r[text_column])
            labels.append(str(r[label_column]))
    return texts, labels


def load_study(path):
    import yaml  # python3-yaml

    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    base = os.path.dirname(os.path.abspath(path))
    data = spec.get("data") or {}

    def resolve(p):
        return "" if not p else p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))

    seed = int(spec.get("seed", 0))
    final_stage = spec.get("final_stage") or {}
    return {
        "name": spec.get("name", os.path.basename(path)),
        "train_file": resolve(data.get("train_file")),
        "validation_file": resolve(data.get("validation_file")),
        "test_file": resolve(data.get("test_file")),
        "validation_fraction": float(data.get("validation_fraction", 0.2)),
        "split_seed": int(data.get("split_seed", seed)),
        "stratify": bool(data.get("stratify", False)),
        "text_column": data.get("text_column", "text"),
        "label_column": data.get("label_column", "label"),
        "labels": list(data.get("labels") or []),
        "format": str(data.get("format", "auto")),
        "retrain_on": str(final_stage.get("retrain_on", "train")).lower().replace(
            "retrain_on_", ""),
    }


def load_splits(study):
    """The train / validation / test sets as hpsearch's core builds them (texts, label ids)."""
    read = lambda p: read_records(p, study["text_column"], study["label_column"], study["format"])
    train_texts, train_names = read(study["train_file"])
    names = study["labels"] or sort_label_names(train_names)
    ids = {name: i for i, name in enumerate(names)}
    to_ids = lambda label_names, where: [
        ids[n] if n in ids else sys.exit(f"{where}: label {n!r} is not a class of the train file")
        for n in label_names]
    train_y = to_ids(train_names, study["train_file"])
    if study["validation_file"]:
        train = (train_texts, train_y)
        val_texts, val_names = read(study["validation_file"])
        validation = (val_texts, to_ids(val_names, study["validation_file"]))
        split = None
    else:
        split = split_train_validation(train_y, len(names), study["validation_fraction"],
                                       study["stratify"], study["split_seed"])
        pick = lambda idx: ([train_texts[i] for i in idx], [train_y[i] for i in idx])
        train, validation = pick(split[0]), pick(split[1])
    test = None
    if study["test_file"]:
        test_texts, test_names = read(study["test_file"])
        test = (test_texts, to_ids(test_names, study["test_file"]))
    return names, train, validation, test, split


def evaluate(model, texts, y):
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    predicted = model.predict(texts)
    seconds = time.perf_counter() - start
    return {
        "accuracy": accuracy_score(y, predicted),
        "f1_weighted": f1_score(y, predicted, average="weighted"),
        "f1_macro": f1_score(y, predicted, average="macro"),
        "predict_seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", nargs="?", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "banking77-tiny.yaml"))
    parser.add_argument("--c", type=float, nargs="+", default=[1.0, 10.0, 100.0],
                        help="inverse regularisation strengths to try on validation")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dump-split", metavar="FILE",
                        help="write the label order and split indices as JSON and exit")
    args = parser.parse_args()

    study = load_study(args.study)
    names, train, validation, test, split = load_splits(study)
    if args.dump_split:
        with open(args.dump_split, "w", encoding="utf-8") as f:
            json.dump({"labels": names, "train": split[0] if split else [],
                       "validation": split[1] if split else []}, f)
        return 0

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def fit(c, texts_labels=train):
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            LogisticRegression(C=c, max_iter=2000))
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(*texts_labels)
        return model, time.perf_counter() - start, time.process_time() - cpu_start

    tried = []
    for c in args.c:
        model, seconds, cpu_seconds = fit(c)
        tried.append({"C": c, "fit_seconds": seconds, "fit_cpu_seconds": cpu_seconds,
                      "validation": evaluate(model, *validation), "model": model})
    best = max(tried, key=lambda t: t["validation"]["accuracy"])  # ties: the first (smallest C)
    final_model, refit_seconds = best["model"], 0.0
    if study["retrain_on"] == "train_validation":
        # As the study's final stage: the chosen C refitted on train + validation.
        final_model, refit_seconds, _ = fit(
            best["C"], (train[0] + validation[0], list(train[1]) + list(validation[1])))
    result = {
        "study": study["name"],
        "sizes": {"train": len(train[0]), "validation": len(validation[0]),
                  "test": len(test[0]) if test else 0, "classes": len(names)},
        "split": {"seed": study["split_seed"], "fraction": study["validation_fraction"],
                  "stratify": study["stratify"]} if split else "validation file",
        "model": "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + "
                 "LogisticRegression(lbfgs, max_iter=2000)",
        "tried": [{k: v for k, v in t.items() if k != "model"} for t in tried],
        "best_C": best["C"],
        "validation": best["validation"],
        "fit_seconds": best["fit_seconds"],
        "fit_cpu_seconds": best["fit_cpu_seconds"],
        "fit_seconds_all": sum(t["fit_seconds"] for t in tried) + refit_seconds,
        "retrain_on": study["retrain_on"],
        "test": evaluate(final_model, *test) if test else None,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    s = result["sizes"]
    print(f"TF-IDF + logistic regression on {study['name']}: {s['train']} train / "
          f"{s['validation']} validation / {s['test']} test texts, {s['classes']} classes")
    for t in result["tried"]:
        v = t["validation"]
        print(f"  C={t['C']:g}: validation accuracy {v['accuracy']:.4f}, F1 weighted "
              f"{v['f1_weighted']:.4f}, macro {v['f1_macro']:.4f} (fit {t['fit_seconds']:.2f} s, "
              f"{t['fit_cpu_seconds']:.2f} s CPU)")
    v = result["validation"]
    print(f"best C={result['best_C']:g}: validation accuracy {v['accuracy']:.4f}, "
          f"F1 weighted {v['f1_weighted']:.4f}, F1 macro {v['f1_macro']:.4f}")
    if result["test"]:
        t = result["test"]
        if study["retrain_on"] == "train_validation":
            print(f"refitted on train + validation ({s['train'] + s['validation']} texts) with "
                  f"C={result['best_C']:g}, as the study's final stage retrains")
        print(f"test: accuracy {t['accuracy']:.4f}, F1 weighted {t['f1_weighted']:.4f}, "
              f"F1 macro {t['f1_macro']:.4f}")
    print(f"fit time {result['fit_seconds']:.2f} s wall, {result['fit_cpu_seconds']:.2f} s CPU "
          f"(all {len(tried)} fits: {result['fit_seconds_all']:.2f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
