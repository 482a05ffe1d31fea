#!/usr/bin/python3
"""One hpsearch command trial: a linear classifier on TF-IDF features of Banking77, trained one epoch at a
time with SGD. It reads its trial and reports its epochs through hpsearch.trial_context() (the package in
python/, which writes hpsearch's JSON-lines protocol on stdout), so nothing here prints JSON by hand.

Run by `hpsearch-worker` through examples/banking77-sgd.yaml. Needs Debian's python3-sklearn (run with
/usr/bin/python3). Every trial uses the same seeded 80/20 train/validation split; the trial's own seed
(HPSEARCH_SEED) drives the SGD shuffling and initialisation, so a final trial that retrains on train with the
same parameters and seed reproduces the search trial's epochs exactly.
"""
import argparse
import math
import os
import sys
import time

# The hpsearch package from this checkout (or installed); trial_context() needs nothing but the standard library.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
try:
    import hpsearch
except ImportError as error:
    sys.exit(f"banking77_sgd_trial.py: {error}; run it from an hpsearch checkout (python/ beside examples/) "
             "or `pip install ./python`")

try:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, f1_score, log_loss, hinge_loss
except ImportError as error:  # say what to install instead of a bare traceback
    sys.exit(f"banking77_sgd_trial.py: {error}; install Debian's python3-sklearn and run /usr/bin/python3")

BATCH_SIZE = 256
SPLIT_SEED = 0


def read_csv(path, text_column, label_column):
    import csv
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row[text_column] for row in rows], [row[label_column] for row in rows]


def losses(model, x, y, classes):
    """Mean loss of the model's own kind: log loss where it gives probabilities, else multi-class hinge."""
    if hasattr(model, "predict_proba") and model.loss in ("log_loss", "modified_huber"):
        proba = np.clip(model.predict_proba(x), 1e-15, 1.0)
        proba /= proba.sum(axis=1, keepdims=True)
        return float(log_loss(y, proba, labels=classes))
    return float(hinge_loss(y, model.decision_function(x), labels=classes))


def evaluate(model, x, y, classes):
    predicted = model.predict(x)
    return {
        "loss": losses(model, x, y, classes),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y, predicted, average="macro", zero_division=0)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--label_column", default="category")
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--loss", default="hinge")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ngram_max", type=int, default=1)
    args = parser.parse_args()

    ctx = hpsearch.trial_context()  # the parameters also arrive as --name value, parsed above
    seed = ctx.seed % (2**32)
    kind = ctx.kind
    retrain_on = ctx.retrain_on

    texts, labels = read_csv(args.train, args.text_column, args.label_column)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(texts))
    n_validation = int(math.ceil(0.2 * len(texts)))
    validation_idx, train_idx = order[:n_validation], order[n_validation:]
    if kind == "final" and retrain_on == "train_validation":
        train_idx, validation_idx = order, order[:0]  # validation is trained on: no validation metrics
    classes = np.array(sorted(set(labels), key=str.lower))

    vectorizer = TfidfVectorizer(ngram_range=(1, args.ngram_max), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform([texts[i] for i in train_idx])
    y_train = np.array([labels[i] for i in train_idx])
    x_val = vectorizer.transform([texts[i] for i in validation_idx]) if len(validation_idx) else None
    y_val = np.array([labels[i] for i in validation_idx])

    model = SGDClassifier(loss=args.loss, alpha=args.alpha, random_state=seed, learning_rate="optimal")
    rng = np.random.RandomState(seed)
    started = time.time()
    steps = 0
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.time()
        permutation = rng.permutation(x_train.shape[0])
        for begin in range(0, len(permutation), BATCH_SIZE):
            batch = permutation[begin:begin + BATCH_SIZE]
            model.partial_fit(x_train[batch], y_train[batch], classes=classes)
            steps += 1
        record = {
            "step": steps,
            "train_loss": losses(model, x_train, y_train, classes),
            "samples_per_second": x_train.shape[0] / max(time.time() - epoch_start, 1e-9),
        }
        if x_val is not None:
            metrics = evaluate(model, x_val, y_val, classes)
            record.update(val_loss=metrics["loss"], val_accuracy=metrics["accuracy"],
                          val_f1=metrics["f1"], val_f1_macro=metrics["f1_macro"])
        ctx.epoch(epoch, **record)

    if kind != "final":
        return
    runtime = time.time() - started
    # FLOPs of a linear model: one multiply-add per stored feature and class, forward and backward.
    flos = 4.0 * x_train.nnz * len(classes) * args.epochs
    ctx.train_summary(global_steps=steps, train_loss=losses(model, x_train, y_train, classes),
                      runtime_seconds=runtime, samples_per_second=x_train.shape[0] * args.epochs / runtime,
                      steps_per_second=steps / runtime, total_flos=flos, epochs=float(args.epochs))
    if not ctx.evaluate_test:
        return
    test_texts, test_labels = read_csv(args.test, args.text_column, args.label_column)
    test_start = time.time()
    metrics = evaluate(model, vectorizer.transform(test_texts), np.array(test_labels), classes)
    test_runtime = max(time.time() - test_start, 1e-9)
    ctx.test(test_loss=metrics["loss"], test_accuracy=metrics["accuracy"], test_f1=metrics["f1"],
             test_f1_macro=metrics["f1_macro"], runtime_seconds=test_runtime,
             samples_per_second=len(test_texts) / test_runtime,
             steps_per_second=math.ceil(len(test_texts) / BATCH_SIZE) / test_runtime)


if __name__ == "__main__":
    main()
