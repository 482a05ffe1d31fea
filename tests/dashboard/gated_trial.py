#!/usr/bin/python3
"""A command trial for the dashboard's tests: prints hpsearch's JSON-lines protocol for --epochs
epochs with an objective that depends on --x (any other searched parameter is accepted and ignored).
With --gate PREFIX, every search trial but trial 0 first waits for the file PREFIX.N (N its number) to
exist, so a test decides when the study moves on instead of guessing how long it takes. It never outlives the worker that started it."""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.5)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--gate", default="")
args, _ = parser.parse_known_args()
number = int(os.environ.get("HPSEARCH_TRIAL_NUMBER", "0"))
kind = os.environ.get("HPSEARCH_TRIAL_KIND", "search")

if args.gate and number > 0 and kind == "search":
    parent = os.getppid()
    deadline = time.monotonic() + 600
    gate = f"{args.gate}.{number}"
    while not os.path.exists(gate):
        if os.getppid() != parent or time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)

for epoch in range(1, args.epochs + 1):
    accuracy = 1.0 - abs(args.x - 0.3) + 0.01 * epoch
    print(json.dumps({"type": "epoch", "epoch": epoch, "step": 10 * epoch, "train_loss": 1.0 / epoch + args.x,
                      "val_loss": 2.0 / epoch + args.x, "val_accuracy": accuracy, "val_f1": accuracy - 0.01}),
          flush=True)
if kind == "final" and os.environ.get("HPSEARCH_ARTIFACT_DIR"):
    # The "adapter" the coordinator stores and the dashboard offers for download.
    with open(os.path.join(os.environ["HPSEARCH_ARTIFACT_DIR"], "adapter_config.json"), "w") as out:
        json.dump({"x": args.x, "epochs": args.epochs}, out)
if kind == "final":
    print(json.dumps({"type": "train_summary", "global_steps": 10 * args.epochs, "train_loss": 0.5,
                      "runtime_seconds": 1.5, "samples_per_second": 100.0, "steps_per_second": 5.0,
                      "total_flos": 1.0e9, "epochs": float(args.epochs)}), flush=True)
    print(json.dumps({"type": "test", "test_loss": 0.4, "test_accuracy": 0.9, "test_f1": 0.89,
                      "runtime_seconds": 0.2, "samples_per_second": 500.0, "steps_per_second": 20.0}),
          flush=True)
