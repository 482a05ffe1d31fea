#!/usr/bin/python3
"""Writes a random GPT-2 checkpoint of real size, three ways, for bench/checkpoint_load_bench.

Needs Debian's python3-torch (apt-get install -y python3-torch), only to generate these inputs.
    /usr/bin/python3 scripts/make_bench_checkpoint.py --out /tmp/ckpt [--n-layer 24 --n-embd 1024]
Creates <out>/safetensors, <out>/zip and <out>/legacy (each config.json + weights). The defaults are
DialoGPT-medium's shape (345M parameters, ~1.4 GB per file); nothing here is committed.
"""
import argparse
import collections
import json
import pathlib
import struct

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--n-layer", type=int, default=24)
    parser.add_argument("--n-embd", type=int, default=1024)
    parser.add_argument("--n-head", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--n-positions", type=int, default=1024)
    args = parser.parse_args()
    e = args.n_embd
    g = torch.Generator().manual_seed(1)
    sd = collections.OrderedDict()
    sd["transformer.wte.weight"] = torch.randn(args.vocab, e, generator=g) * 0.02
    sd["transformer.wpe.weight"] = torch.randn(args.n_positions, e, generator=g) * 0.01
    for i in range(args.n_layer):
        p = f"transformer.h.{i}."
        for name, shape in [("ln_1.weight", [e]), ("ln_1.bias", [e]), ("attn.c_attn.weight", [e, 3 * e]),
                            ("attn.c_attn.bias", [3 * e]), ("attn.c_proj.weight", [e, e]),
                            ("attn.c_proj.bias", [e]), ("ln_2.weight", [e]), ("ln_2.bias", [e]),
                            ("mlp.c_fc.weight", [e, 4 * e]), ("mlp.c_fc.bias", [4 * e]),
                            ("mlp.c_proj.weight", [4 * e, e]), ("mlp.c_proj.bias", [e])]:
            sd[p + name] = torch.randn(*shape, generator=g) * 0.02
    sd["transformer.ln_f.weight"] = torch.ones(e)
    sd["transformer.ln_f.bias"] = torch.zeros(e)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    config = {"model_type": "gpt2", "n_layer": args.n_layer, "n_embd": e, "n_head": args.n_head,
              "n_positions": args.n_positions, "vocab_size": args.vocab}
    for fmt in ("safetensors", "zip", "legacy"):
        d = args.out / fmt
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config))
        if fmt == "zip":
            torch.save(sd, d / "pytorch_model.bin")
        elif fmt == "legacy":
            torch.save(sd, d / "pytorch_model.bin", _use_new_zipfile_serialization=False)
        else:
            header, offset = {}, 0
            for k, v in sd.items():
                if k == "lm_head.weight":
                    continue
                n = v.numel() * 4
                header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + n]}
                offset += n
            text = json.dumps(header).encode()
            text += b" " * (-len(text) % 8)
            with open(d / "model.safetensors", "wb") as f:
                f.write(struct.pack("<Q", len(text)) + text)
                for k, v in sd.items():
                    if k != "lm_head.weight":
                        f.write(v.contiguous().numpy().tobytes())


if __name__ == "__main__":
    main()
