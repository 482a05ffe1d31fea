#!/usr/bin/python3
"""A zero-cost command trial for the control-plane tests: prints hpsearch's JSON-lines protocol with an
objective that depends only on --x, or misbehaves as --mode asks (fail, garbage, silent, nan); --env_log
records the device and thread variables the worker gave it."""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.5)
parser.add_argument("--mode", default="ok")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--epoch_seconds", type=float, default=0.0)
parser.add_argument("--say_last", action="store_true", help='mark the last epoch line "last": true')
parser.add_argument("--progress", action="store_true", help="print a progress line before each epoch")
parser.add_argument("--env_log", help="append the device and thread variables seen, as a JSON line")
parser.add_argument("--save_model", action="store_true",
                    help="leave model.json in HPSEARCH_ARTIFACT_DIR; with HPSEARCH_TRIAL_KIND=evaluate, "
                         "read it from HPSEARCH_MODEL_DIR and only print a test line from it")
args = parser.parse_args()
kind = os.environ.get("HPSEARCH_TRIAL_KIND", "search")
if kind == "evaluate":
    # Evaluate-only (final_stage.retrain_on: reuse): no training, the stored model's test figures.
    if not args.save_model:
        print("fake_trial: started to evaluate without --save_model", file=sys.stderr, flush=True)
        sys.exit(4)
    with open(os.path.join(os.environ["HPSEARCH_MODEL_DIR"], "model.json")) as f:
        model = json.load(f)
    print(json.dumps({"type": "test", "test_loss": 0.25, "test_accuracy": model["test_accuracy"],
                      "test_f1": model["test_accuracy"] - 0.01, "runtime_seconds": 0.1,
                      "samples_per_second": 1000.0, "steps_per_second": 10.0,
                      "model_trial": float(model["trial"])}), flush=True)
    sys.exit(0)
if args.env_log:
    names = ("HPSEARCH_TRIAL_NUMBER", "CUDA_VISIBLE_DEVICES", "HPSEARCH_DEVICE", "OMP_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FAKE_TRIAL_WORKER")
    with open(args.env_log, "a") as log:
        log.write(json.dumps({name: os.environ.get(name) for name in names}) + "\n")

print("fake trial starting", os.environ.get("HPSEARCH_TRIAL_NUMBER"), flush=True)  # a log line
if args.mode == "silent":
    # Hangs, as a stuck trial would; but never outlives the worker that started it (a test that
    # SIGKILLs its workers must leave no process behind; the worker's own reaping of a trial's
    # process tree on its SIGKILL is issue 23's).
    parent = os.getppid()
    for _ in range(3600 * 10):
        if os.getppid() != parent:
            sys.exit(1)
        time.sleep(0.1)
if args.mode == "garbage":
    print("this is not a protocol line", flush=True)
    print("nor is this", flush=True)
    sys.exit(0)
if args.mode == "nan":
    print('{"type": "epoch", "epoch": 1, "val_accuracy": NaN}', flush=True)
    sys.exit(0)
for epoch in range(1, args.epochs + 1):
    if args.progress:
        print(json.dumps({"type": "progress", "epoch": epoch, "epochs": args.epochs,
                          "step": 10 * (epoch - 1) + 5, "total_steps": 10 * args.epochs,
                          "samples_per_second": 12.5,
                          "eta_seconds": args.epoch_seconds * (args.epochs - epoch + 0.5)}),
              flush=True)
    time.sleep(args.epoch_seconds)
    accuracy = 1.0 - abs(args.x - 0.3) + 0.01 * epoch
    line = {"type": "epoch", "epoch": epoch, "step": 10 * epoch, "train_loss": 1.0 / epoch,
            "val_loss": 2.0 / epoch, "val_accuracy": accuracy, "val_f1": accuracy - 0.01,
            "tokens_seen": 1000 * epoch}
    if args.say_last:
        line["last"] = epoch == args.epochs
    print(json.dumps(line), flush=True)
if args.save_model:
    # What a test of this model scores, so an evaluation shows whose model it read.
    model = {"trial": int(os.environ.get("HPSEARCH_TRIAL_NUMBER", "-1")),
             "test_accuracy": round(0.5 + args.x / 4, 6)}
    with open(os.path.join(os.environ["HPSEARCH_ARTIFACT_DIR"], "model.json"), "w") as f:
        json.dump(model, f)
if args.mode == "fail":
    print("fake_trial: the input is broken beyond repair", file=sys.stderr, flush=True)
    sys.exit(3)
if kind == "final":
    print(json.dumps({"type": "train_summary", "global_steps": 10 * args.epochs, "train_loss": 0.5,
                      "runtime_seconds": 1.5, "samples_per_second": 100.0, "steps_per_second": 5.0,
                      "total_flos": 1.0e9, "epochs": float(args.epochs)}), flush=True)
    print(json.dumps({"type": "test", "test_loss": 0.4, "test_accuracy": 0.9, "test_f1": 0.89,
                      "runtime_seconds": 0.2, "samples_per_second": 500.0, "steps_per_second": 20.0}),
          flush=True)
