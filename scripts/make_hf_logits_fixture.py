#!/usr/bin/env python3
"""Makes tests/data/hf_gpt2_fixture: logits that Hugging Face transformers and PEFT compute, for
tests/core/peft_adapter_test.cc to check hpsearch's GPT-2 classifier against (the fixture the
training-core issue owes: until now the model was checked only against an independent
re-implementation).

It writes, into --out:
  base/config.json, base/model.safetensors  a tiny random GPT2ForSequenceClassification (2 layers,
      32 wide, 4 heads, the real 50,257-token vocabulary, 5 labels, pad id 50256, eager attention)
      saved by save_pretrained, weights stored in float16 to keep the fixture small (the logits
      are computed from exactly those weights, upcast to float32);
  adapter/adapter_config.json, adapter/adapter_model.safetensors  a PEFT LoRA adapter (r 4, alpha
      8, on c_attn, c_proj and c_fc, random lora_B so it changes the outputs) saved by PEFT;
  logits.json  the texts, the ids and mask the GPT-2 tokenizer (data/gpt2, right padding with the
      pad id) gives them, the base model's logits, the adapted model's logits and the versions.

It needs torch, transformers and peft (the GPU machine has them; it runs on its CPU in seconds) and
exits 3 with a message when one is missing. scripts/gpu-check.sh runs it and returns the folder as
hf_fixture.tar.gz; unpack it into tests/data/ and commit it.

Usage: make_hf_logits_fixture.py --out DIR [--tokenizer data/gpt2]
"""
import argparse
import json
import os
import sys

TEXTS = [
    "I still have not received my new card, I ordered over a week ago.",
    "How do I top up?",
    "Why was I charged a fee for cash withdrawal?",
    "Can I change my PIN at an ATM abroad — in Zürich, say?",
    "my transfer hasn't arrived",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "data", "gpt2"))
    args = p.parse_args()
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(f"make_hf_logits_fixture: {e}; run it where torch, transformers and peft are installed",
              file=sys.stderr)
        return 3

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     num_labels=5, pad_token_id=50256)
    try:
        model = transformers.AutoModelForSequenceClassification.from_config(
            config, attn_implementation="eager")
    except TypeError:
        config._attn_implementation = "eager"
        model = transformers.GPT2ForSequenceClassification(config)
    model.eval()
    with torch.no_grad():  # the stored float16 weights are the weights
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    os.makedirs(args.out, exist_ok=True)
    model.half().save_pretrained(os.path.join(args.out, "base"), safe_serialization=True)
    model.float()

    tokenizer = transformers.GPT2TokenizerFast(
        vocab_file=os.path.join(args.tokenizer, "vocab.json"),
        merges_file=os.path.join(args.tokenizer, "merges.txt"))
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        base_logits = model(**encoded).logits

    lora = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=4, lora_alpha=8, lora_dropout=0.0,
                           target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True,
                           init_lora_weights=False)
    adapted = peft.get_peft_model(model, lora)
    adapted.eval()
    with torch.no_grad():
        adapter_logits = adapted(**encoded).logits
    adapted.save_pretrained(os.path.join(args.out, "adapter"))

    fixture = {
        "texts": TEXTS,
        "input_ids": encoded["input_ids"].tolist(),
        "attention_mask": encoded["attention_mask"].tolist(),
        "logits": base_logits.tolist(),
        "adapter_logits": adapter_logits.tolist(),
        "lora": {"r": 4, "alpha": 8, "target_modules": ["c_attn", "c_proj", "c_fc"]},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
    }
    with open(os.path.join(args.out, "logits.json"), "w") as f:
        json.dump(fixture, f, indent=1)
    print(f"make_hf_logits_fixture: wrote {args.out} (transformers {transformers.__version__}, "
          f"peft {peft.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
