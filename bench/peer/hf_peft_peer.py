#!/usr/bin/env python3
"""Hugging Face transformers + PEFT peer of bench/seed_shape_bench (issue 7).

The same work as the C++ benchmark, done the way a Python user would: GPT2ForSequenceClassification
(24 layers x 1024 wide, 16 heads, vocabulary 50,257, 77 labels, random weights) with a bfloat16
base, PEFT LoRA r 8 / alpha 16 / dropout 0.1 on every linear layer (c_attn, c_proj, c_fc; PEFT's
float32 adapters, autocast_adapter_dtype) and a float32 trainable head (modules_to_save), trained
under torch.autocast(bfloat16) with torch.optim.AdamW, gradient clipping 1.0 and a linear schedule.

It replays the token ids, labels and batches that `seed_shape_bench --export-data FILE` wrote, so
both sides train on the same texts, in the same batches, with the same padding (each batch
right-padded with the pad id to its longest text, or with static shapes to the export's length
bucket and filled to the full batch with zero-weight rows labelled -100, which Hugging Face's loss
ignores as ours does), the same number of steps and the same attention
implementation (--attn, default sdpa). Phases and figures are the C++ benchmark's: warm-up, timed
steps (step time, train samples/s), the full run (epochs over all training texts, timed, with
torch.cuda.max_memory_allocated over it), and evaluation of the test texts twice (the second, warm,
is reported). --json FILE is written after every phase (atomically, "stage" naming the last one
done), so a run cut short still leaves its figures; peak memory is measured over the timed steps
too (steps_peak_allocated_bytes). The base is plain bfloat16, not NF4 (bitsandbytes is not on the GPU machine; the issue
asks for a bf16 base): the peer does no dequantisation at all.

Usage: hf_peft_peer.py --data FILE [--json OUT] [--layers 24] [--width 1024] [--heads 16]
                       [--attn sdpa|eager] [--device cuda] [--no-full-run] [--gradient-checkpointing]
Needs torch, transformers (5.x) and peft; exits 3 with a message when one is missing.
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="seed_shape_bench --export-data output")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    p.add_argument("--no-full-run", action="store_true")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--lora-targets", default="all-linear",
                   help="all-linear (c_attn, c_proj, c_fc: every linear layer of a block) or a comma "
                        "list of module names, as seed_shape_bench --lora-targets")
    p.add_argument("--max-seconds", type=float, default=0,
                   help="skip the full run when the measured steps predict it would not fit")
    return p.parse_args()


def lora_targets(spec):
    """PEFT's target_modules for a --lora-targets value (GPT-2's Conv1D names: c_proj is both the
    attention's and the MLP's output projection)."""
    if spec == "all-linear":
        return ["c_attn", "c_proj", "c_fc"]
    return [name for name in spec.split(",") if name]


def main():
    program_start = time.perf_counter()
    args = parse_args()
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(f"hf_peft_peer: {e}; run it where torch, transformers and peft are installed",
              file=sys.stderr)
        return 3

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    with open(args.data) as f:
        data = json.load(f)
    pad = int(data["pad_token_id"])
    train_ids, train_labels = data["train_ids"], data["train_labels"]
    test_ids, test_labels = data["test_ids"], data["test_labels"]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    setup_start = time.perf_counter()
    torch.manual_seed(42)
    config = transformers.GPT2Config(
        vocab_size=int(data["vocab_size"]), n_positions=1024, n_embd=args.width,
        n_layer=args.layers, n_head=args.heads, num_labels=int(data["num_labels"]),
        pad_token_id=pad, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
    try:
        model = transformers.AutoModelForSequenceClassification.from_config(
            config, attn_implementation=args.attn)
    except TypeError:  # an API without the keyword: set it on the config
        config._attn_implementation = args.attn
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    model.to(device=device, dtype=dtype)
    lora = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                           target_modules=lora_targets(args.lora_targets), fan_in_fan_out=True)
    model = peft.get_peft_model(model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:  # float32 master weights (PEFT's troubleshooting recipe for AMP)
        p.data = p.data.float()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    attn_used = getattr(model.config, "_attn_implementation", args.attn)
    sync()
    setup_seconds = time.perf_counter() - setup_start
    report = {
        "bench": "hf_peft_peer",
        "stage": "setup",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "peft_version": peft.__version__,
        "shape": {"layers": args.layers, "width": args.width, "heads": args.heads,
                  "vocab": int(data["vocab_size"]), "labels": int(data["num_labels"])},
        "compute_dtype": args.dtype,
        "attn_implementation": attn_used,
        "gradient_checkpointing": args.gradient_checkpointing,
        "lora_targets": lora_targets(args.lora_targets),
        "static_shapes": int(data.get("padding", {}).get("rows", 0)) > 0,
        "batch_size": int(data["batch_size"]),
        "eval_batch_size": int(data["eval_batch_size"]),
        "train_texts": len(train_ids),
        "test_texts": len(test_ids),
        "setup_seconds": setup_seconds,
    }

    def write_report(stage):
        report["stage"] = stage
        if args.json:
            with open(args.json + ".partial", "w") as f:
                json.dump(report, f, indent=2)
            os.replace(args.json + ".partial", args.json)

    write_report("setup")

    # The C++ side's padding of training batches (core/batching.h PaddingOptions); evaluation pads
    # dynamically on both sides. Exports from before static shapes carry no "padding".
    padding = data.get("padding", {})
    buckets = [int(b) for b in padding.get("length_buckets", [])]
    fill_rows = int(padding.get("rows", 0))
    max_length = int(padding.get("max_length", 0))

    def padded_width(longest):
        for bucket in buckets:
            if bucket >= longest:
                return max(longest, min(bucket, max_length)) if max_length > 0 else bucket
        return longest

    def collate(ids, labels, rows, static=False):
        longest = max(len(ids[r]) for r in rows)
        width = padded_width(longest) if static else longest
        count = max(len(rows), fill_rows) if static else len(rows)
        input_ids = torch.full((count, width), pad, dtype=torch.long)
        mask = torch.zeros((count, width), dtype=torch.long)
        mask[len(rows):, 0] = 1  # a zero-weight row: one attended pad token, label -100
        for i, r in enumerate(rows):
            input_ids[i, :len(ids[r])] = torch.tensor(ids[r], dtype=torch.long)
            mask[i, :len(ids[r])] = 1
        target = torch.tensor([labels[r] for r in rows] + [-100] * (count - len(rows)),
                              dtype=torch.long)
        return (input_ids.to(device, non_blocking=True), mask.to(device, non_blocking=True),
                target.to(device, non_blocking=True))

    def train(batches):
        """One optimizer step per batch, as Trainer.Train does; returns the mean loss."""
        model.train()
        optimizer = torch.optim.AdamW(trainable, lr=2e-4, weight_decay=0.0)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, len(batches))
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for rows in batches:
            input_ids, mask, target = collate(train_ids, train_labels, rows, static=True)
            with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32):
                out = model(input_ids=input_ids, attention_mask=mask, labels=target)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += out.loss.detach()
        return loss_sum.item() / max(1, len(batches))

    def evaluate():
        model.eval()
        batch = int(data["eval_batch_size"])
        start = time.perf_counter()
        losses, predictions = [], []
        with torch.no_grad():
            for begin in range(0, len(test_ids), batch):
                rows = list(range(begin, min(begin + batch, len(test_ids))))
                input_ids, mask, target = collate(test_ids, test_labels, rows)
                with torch.autocast(device_type=device.type, dtype=dtype,
                                    enabled=dtype != torch.float32):
                    logits = model(input_ids=input_ids, attention_mask=mask).logits
                losses.append(torch.nn.functional.cross_entropy(logits.float(), target,
                                                                reduction="sum"))
                predictions.append(logits.argmax(-1))
        predicted = torch.cat(predictions).cpu()
        seconds = time.perf_counter() - start
        accuracy = float((predicted == torch.tensor(test_labels)).float().mean())
        return seconds, accuracy

    if data["warmup_batches"]:
        train(data["warmup_batches"])
    sync()
    step_batches = data["step_batches"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    train(step_batches)
    sync()
    steps_seconds = time.perf_counter() - start
    step_samples = sum(len(b) for b in step_batches)
    report["steps"] = len(step_batches)
    report["step_ms"] = 1000.0 * steps_seconds / len(step_batches)
    report["train_samples_per_second"] = step_samples / steps_seconds
    report["steps_peak_allocated_bytes"] = (torch.cuda.max_memory_allocated(device)
                                            if device.type == "cuda" else None)
    report["steps_peak_reserved_bytes"] = (torch.cuda.max_memory_reserved(device)
                                           if device.type == "cuda" else None)
    write_report("steps")

    full = None
    full_steps = sum(len(epoch) for epoch in data["epoch_batches"])
    estimate = steps_seconds / len(step_batches) * full_steps
    left = args.max_seconds - (time.perf_counter() - program_start)
    run_full = not args.no_full_run
    if run_full and args.max_seconds > 0 and 1.15 * estimate + 10 > left:
        run_full = False
        full = {"skipped": f"estimated {estimate:.1f} s, {left:.1f} s of --max-seconds left"}
        print(f"full run skipped: estimated {estimate:.1f} s, {left:.1f} s left")
    if run_full:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        epochs = data["epoch_batches"]
        start = time.perf_counter()
        loss = train([rows for epoch in epochs for rows in epoch])
        sync()
        seconds = time.perf_counter() - start
        samples = sum(len(rows) for epoch in epochs for rows in epoch)
        full = {"epochs": len(epochs), "samples": samples,
                "steps": sum(len(epoch) for epoch in epochs), "seconds": seconds,
                "samples_per_second": samples / seconds, "train_loss": loss,
                "peak_allocated_bytes": (torch.cuda.max_memory_allocated(device)
                                         if device.type == "cuda" else None),
                "peak_reserved_bytes": (torch.cuda.max_memory_reserved(device)
                                        if device.type == "cuda" else None)}
    report["full_run"] = full
    write_report("full_run")
    cold_seconds, _ = evaluate()
    eval_seconds, accuracy = evaluate()

    report["eval_seconds"] = eval_seconds
    report["eval_samples_per_second"] = len(test_ids) / eval_seconds
    report["eval_cold_seconds"] = cold_seconds
    report["eval_accuracy"] = accuracy
    write_report("complete")
    print(f"hf_peft_peer on {report['device']} (torch {torch.__version__}, transformers "
          f"{transformers.__version__}, peft {peft.__version__}), attention {attn_used}")
    print(f"  step (batch {report['batch_size']}, {len(step_batches)} steps) "
          f"{report['step_ms']:9.2f} ms; train samples/s {report['train_samples_per_second']:.1f}")
    if full and "seconds" in full:
        print(f"  full run {full['epochs']} epochs {full['seconds']:9.2f} s "
              f"({full['samples_per_second']:.1f} samples/s)")
        if full["peak_allocated_bytes"] is not None:
            print(f"  peak GPU memory (allocated) {full['peak_allocated_bytes'] / 2**30:.3f} GiB")
    print(f"  eval {len(test_ids)} texts {eval_seconds:.3f} s (cold {cold_seconds:.3f} s)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
