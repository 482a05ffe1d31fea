#!/usr/bin/python3
"""Writes tests/data/gpt2_tiny: random GPT-2 weights under Hugging Face's names and layout, a right-padded
batch, and the logits and final hidden states an independent eager re-implementation of Hugging Face's
GPT2ForSequenceClassification computes from them (eval mode).

The reference follows the structure of transformers' modeling_gpt2 as documented: Conv1D layers computed as
addmm(bias, x, W) with W stored [in, out]; the causal mask applied with torch.where and finfo.min, the padding
mask added as (1 - mask) * finfo.min; scores divided by sqrt(head_dim); gelu_new written out as its tanh formula;
the pooled token found from input_ids == pad_token_id. It shares no code with core/.

Run with Debian's interpreter (python3-torch): /usr/bin/python3 scripts/make_gpt2_fixture.py
"""
import json
import math
import pathlib

import torch

CONFIG = {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 16, "vocab_size": 128,
          "num_labels": 3, "pad_token_id": 127, "layer_norm_epsilon": 1e-5}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "gpt2_tiny"


def make_weights(gen):
    c, n = CONFIG["n_embd"], CONFIG["n_layer"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    w = {"wte.weight": normal(CONFIG["vocab_size"], c), "wpe.weight": normal(CONFIG["n_positions"], c)}
    for i in range(n):
        p = f"h.{i}."
        # Non-trivial LayerNorm and bias values so a swapped weight/bias or a missing bias shows.
        w[p + "ln_1.weight"] = 1 + normal(c, std=0.1)
        w[p + "ln_1.bias"] = normal(c, std=0.1)
        w[p + "attn.c_attn.weight"] = normal(c, 3 * c, std=0.2)
        w[p + "attn.c_attn.bias"] = normal(3 * c, std=0.1)
        w[p + "attn.c_proj.weight"] = normal(c, c, std=0.2)
        w[p + "attn.c_proj.bias"] = normal(c, std=0.1)
        w[p + "ln_2.weight"] = 1 + normal(c, std=0.1)
        w[p + "ln_2.bias"] = normal(c, std=0.1)
        w[p + "mlp.c_fc.weight"] = normal(c, 4 * c, std=0.2)
        w[p + "mlp.c_fc.bias"] = normal(4 * c, std=0.1)
        w[p + "mlp.c_proj.weight"] = normal(4 * c, c, std=0.2)
        w[p + "mlp.c_proj.bias"] = normal(c, std=0.1)
    w["ln_f.weight"] = 1 + normal(c, std=0.1)
    w["ln_f.bias"] = normal(c, std=0.1)
    w["score.weight"] = normal(CONFIG["num_labels"], c, std=0.5)
    return w


def conv1d(x, weight, bias):
    shape = x.size()[:-1] + (weight.size(-1),)
    return torch.addmm(bias, x.reshape(-1, x.size(-1)), weight).view(shape)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def reference(w, input_ids, attention_mask):
    c, heads = CONFIG["n_embd"], CONFIG["n_head"]
    d = c // heads
    eps = CONFIG["layer_norm_epsilon"]
    b, t = input_ids.shape
    x = w["wte.weight"][input_ids] + w["wpe.weight"][torch.arange(t)][None]
    min_value = torch.finfo(x.dtype).min
    padding = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * min_value
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))[None, None]
    for i in range(CONFIG["n_layer"]):
        p = f"h.{i}."
        h = torch.nn.functional.layer_norm(x, (c,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = conv1d(h, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"]).split(c, dim=2)
        q, k, v = (z.view(b, t, heads, d).permute(0, 2, 1, 3) for z in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], d ** 0.5)
        scores = torch.where(causal, scores, torch.full([], min_value)) + padding
        probs = torch.softmax(scores, dim=-1)
        a = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, t, c)
        x = x + conv1d(a, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])
        h = torch.nn.functional.layer_norm(x, (c,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = gelu_new(conv1d(h, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"]))
        x = x + conv1d(h, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
    hidden = torch.nn.functional.layer_norm(x, (c,), w["ln_f.weight"], w["ln_f.bias"], eps)
    logits = torch.matmul(hidden, w["score.weight"].t())
    last = (torch.eq(input_ids, CONFIG["pad_token_id"]).int().argmax(-1) - 1) % t
    return hidden, logits[torch.arange(b), last], last


def main():
    gen = torch.Generator().manual_seed(20240611)
    weights = make_weights(gen)
    lengths = [9, 4, 12, 1]
    t = 12
    input_ids = torch.full((len(lengths), t), CONFIG["pad_token_id"], dtype=torch.long)
    attention_mask = torch.zeros(len(lengths), t, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(0, CONFIG["pad_token_id"], (length,), generator=gen)
        attention_mask[row, :length] = 1
    with torch.no_grad():
        hidden, logits, last = reference(weights, input_ids, attention_mask)

    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"config": CONFIG, "tensors": [], "input_ids": input_ids.tolist(),
                "attention_mask": attention_mask.tolist(), "last_token_index": last.tolist(),
                "logits": [[float(v) for v in row] for row in logits],
                "hidden_at_last": [[float(v) for v in hidden[r, last[r]]] for r in range(len(lengths))]}
    blob = bytearray()
    for name in sorted(weights):
        tensor = weights[name].contiguous().to(torch.float32)
        manifest["tensors"].append({"name": name, "shape": list(tensor.shape), "offset": len(blob) // 4})
        blob += tensor.numpy().astype("<f4").tobytes()
    (OUT / "weights.f32").write_bytes(bytes(blob))
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {OUT} ({len(blob)} bytes of weights)")


if __name__ == "__main__":
    main()
