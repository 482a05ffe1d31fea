#!/usr/bin/python3
"""Writes the checkpoint fixtures under tests/data/checkpoints/ that core's loader tests read.

Needs PyTorch for Python only to *generate* the fixtures (the C++ build never uses it):
    apt-get install -y python3-torch      # Debian 12's 1.13.1
    /usr/bin/python3 scripts/make_checkpoint_fixtures.py

One tiny random GPT-2 (2 layers, n_embd 16, 2 heads, n_positions 32, vocab 64) saved three ways, each
the way a different Hugging Face era stored it, so the loader sees every naming variant:
  tiny-gpt2-safetensors/  model.safetensors (F32), GPT2ForSequenceClassification names + score.weight,
                          config with id2label (3 labels) and pad_token_id.
  tiny-gpt2-zip/          pytorch_model.bin in torch's zip format, GPT2LMHeadModel names, with the
                          attn.bias / attn.masked_bias buffers and lm_head.weight tied to wte (one storage).
  tiny-gpt2-legacy/       pytorch_model.bin in the legacy (pre-1.6) format, bare GPT2Model names without the
                          "transformer." prefix, config in the 2019 DialoGPT style (n_ctx, no activation).
Plus expected.json (per tensor: shape, float64 sum, first and last values), mixed_dtypes.safetensors (F16,
BF16, I64, I32, U8, BOOL tensors) with its expected values, pickles for the unpickler's tests, pickles that
name disallowed globals (never loaded by anything but our refusing reader), and a zip .bin whose entries are
deflate-compressed.

Output is deterministic (fixed seed) so re-running rewrites identical tensors.
"""
import collections
import io
import json
import os
import pathlib
import pickle
import struct
import zipfile

import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "checkpoints"

N_LAYER, N_EMBD, N_HEAD, N_POSITIONS, VOCAB = 2, 16, 2, 32, 64


def core_state_dict():
    """GPT2Model tensors with bare names (no "transformer." prefix), HF Conv1D layout [in, out]."""
    g = torch.Generator().manual_seed(20240611)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    sd = collections.OrderedDict()
    sd["wte.weight"] = rnd(VOCAB, N_EMBD)
    sd["wpe.weight"] = rnd(N_POSITIONS, N_EMBD)
    for i in range(N_LAYER):
        p = f"h.{i}."
        sd[p + "ln_1.weight"] = 1.0 + rnd(N_EMBD)
        sd[p + "ln_1.bias"] = rnd(N_EMBD)
        sd[p + "attn.c_attn.weight"] = rnd(N_EMBD, 3 * N_EMBD)
        sd[p + "attn.c_attn.bias"] = rnd(3 * N_EMBD)
        sd[p + "attn.c_proj.weight"] = rnd(N_EMBD, N_EMBD)
        sd[p + "attn.c_proj.bias"] = rnd(N_EMBD)
        sd[p + "ln_2.weight"] = 1.0 + rnd(N_EMBD)
        sd[p + "ln_2.bias"] = rnd(N_EMBD)
        sd[p + "mlp.c_fc.weight"] = rnd(N_EMBD, 4 * N_EMBD)
        sd[p + "mlp.c_fc.bias"] = rnd(4 * N_EMBD)
        sd[p + "mlp.c_proj.weight"] = rnd(4 * N_EMBD, N_EMBD)
        sd[p + "mlp.c_proj.bias"] = rnd(N_EMBD)
    sd["ln_f.weight"] = 1.0 + rnd(N_EMBD)
    sd["ln_f.bias"] = rnd(N_EMBD)
    score = rnd(3, N_EMBD)
    return sd, score


def hf_config(**extra):
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 63,
        "embd_pdrop": 0.1,
        "eos_token_id": 63,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": N_EMBD,
        "n_head": N_HEAD,
        "n_inner": None,
        "n_layer": N_LAYER,
        "n_positions": N_POSITIONS,
        "resid_pdrop": 0.1,
        "vocab_size": VOCAB,
    }
    config.update(extra)
    return config


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(path, tensors, metadata):
    """The safetensors layout written by hand (Debian has no python3-safetensors): u64 LE header length,
    JSON header padded with spaces to 8 bytes, then the tensors' bytes back to back in header order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def describe(t):
    flat = t.detach().reshape(-1).double()
    return {"shape": list(t.shape), "sum": flat.sum().item(), "first": flat[:4].tolist(),
            "last": flat[-1].item()}


class CallsOsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


class _StorageSlice:
    """Stands for a slice of a storage in write_legacy_with_storage_slice's pickle."""

    def __init__(self, view_key, offset, size):
        self.view_key, self.offset, self.size = view_key, offset, size


class _TensorOnSlice:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))


def write_legacy_with_storage_slice(path):
    """The legacy format as torch < 1.0 wrote tensors on storage slices: the persistent id carries
    (view_key, offset, size) in elements of the root storage. Current torch never writes this, so the
    bytes are assembled here: root storage "root" holds 0..9; slice "v" is its elements [2, 8)."""
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageSlice):
                view = None if obj.view_key is None else (obj.view_key, obj.offset, obj.size)
                return ("storage", torch.FloatStorage, "root", "cpu", 10, view)
            return None

    def dump(obj, f, with_ids=False):
        (Pickler(f, protocol=2) if with_ids else pickle.Pickler(f, protocol=2)).dump(obj)

    with open(path, "wb") as f:
        dump(0x1950A86A20F9469CFC6C, f)
        dump(1001, f)
        dump({"protocol_version": 1001, "little_endian": True,
              "type_sizes": {"short": 2, "int": 4, "long": 4}}, f)
        state = collections.OrderedDict([
            ("on_slice", _TensorOnSlice(_StorageSlice("v", 2, 6), 1, (2, 2), (2, 1))),
            ("whole", _TensorOnSlice(_StorageSlice(None, 0, 10), 0, (10,), (1,))),
        ])
        dump(state, f, with_ids=True)
        dump(["root"], f)
        f.write(struct.pack("<q", 10) + torch.arange(10, dtype=torch.float32).numpy().tobytes())


def main():
    sd, score = core_state_dict()

    # tiny-gpt2-safetensors: what GPT2ForSequenceClassification.save_pretrained writes.
    seq = collections.OrderedDict(("transformer." + k, v) for k, v in sd.items())
    seq["score.weight"] = score
    d = OUT / "tiny-gpt2-safetensors"
    d.mkdir(parents=True, exist_ok=True)
    write_safetensors(d / "model.safetensors", seq, {"format": "pt"})
    write_json(d / "config.json", hf_config(
        architectures=["GPT2ForSequenceClassification"], pad_token_id=63,
        id2label={"0": "card_arrival", "1": "card_linking", "2": "exchange_rate"},
        label2id={"card_arrival": 0, "card_linking": 1, "exchange_rate": 2}))

    # tiny-gpt2-zip: GPT2LMHeadModel state dict with buffers and a tied lm_head, torch's zip format.
    lm = collections.OrderedDict()
    for k, v in sd.items():
        lm["transformer." + k] = v
        if k.endswith("attn.c_proj.bias"):
            layer = k[: -len("c_proj.bias")]
            lm["transformer." + layer + "bias"] = torch.tril(
                torch.ones(N_POSITIONS, N_POSITIONS, dtype=torch.bool)).view(1, 1, N_POSITIONS, N_POSITIONS)
            lm["transformer." + layer + "masked_bias"] = torch.tensor(-1e4)
    lm["lm_head.weight"] = lm["transformer.wte.weight"]  # tied: one storage in the file
    lm._metadata = collections.OrderedDict([("", {"version": 1})])
    d = OUT / "tiny-gpt2-zip"
    d.mkdir(parents=True, exist_ok=True)
    torch.save(lm, d / "pytorch_model.bin")
    write_json(d / "config.json", hf_config())

    # tiny-gpt2-legacy: bare names, float attn.bias buffers, a transposed (non-contiguous) view sharing
    # storage is not something HF writes, so the legacy file stays a plain state dict.
    legacy = collections.OrderedDict()
    for k, v in sd.items():
        legacy[k] = v
        if k.endswith("attn.c_proj.bias"):
            legacy[k[: -len("c_proj.bias")] + "bias"] = torch.tril(
                torch.ones(N_POSITIONS, N_POSITIONS)).view(1, 1, N_POSITIONS, N_POSITIONS)
    d = OUT / "tiny-gpt2-legacy"
    d.mkdir(parents=True, exist_ok=True)
    torch.save(legacy, d / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    config = hf_config()
    for key in ("activation_function", "architectures", "bos_token_id", "eos_token_id", "model_type",
                "n_inner"):
        del config[key]
    config["n_ctx"] = N_POSITIONS
    write_json(d / "config.json", config)

    expected = {"transformer." + k: describe(v) for k, v in sd.items()}
    expected["score.weight"] = describe(score)
    write_json(OUT / "expected.json", expected)

    # Views and strides: a tensor that is a transposed view of another, and one at a storage offset.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = collections.OrderedDict([("base", base), ("transposed", base.t()), ("row2", base[2]),
                                      ("col1", base[:, 1])])
    torch.save(views, OUT / "views_zip.bin")
    torch.save(views, OUT / "views_legacy.bin", _use_new_zipfile_serialization=False)
    torch.save(views, OUT / "views_zip_p4.bin", pickle_protocol=4)  # FRAME, STACK_GLOBAL, MEMOIZE
    write_legacy_with_storage_slice(OUT / "storage_slice_legacy.bin")
    half = collections.OrderedDict([("h", torch.linspace(-2, 2, 5).half()),
                                    ("b", torch.linspace(-2, 2, 5).bfloat16()),
                                    ("i", torch.tensor([-7, 0, 2**40], dtype=torch.int64))])
    torch.save(half, OUT / "dtypes_zip.bin")

    mixed = collections.OrderedDict([
        ("f16", torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16)),
        ("bf16", torch.tensor([[1.0, -2.0], [0.15625, 3.0e38]], dtype=torch.bfloat16)),
        ("i64", torch.tensor([-(2**40), 7], dtype=torch.int64)),
        ("i32", torch.tensor([-5, 2**31 - 1], dtype=torch.int32)),
        ("u8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
        ("flag", torch.tensor([True, False], dtype=torch.bool)),
        ("empty", torch.zeros(0, 3, dtype=torch.float32)),
    ])
    write_safetensors(OUT / "mixed_dtypes.safetensors", mixed, {"note": "mixed dtypes"})
    write_json(OUT / "mixed_dtypes.json",
               {k: {"shape": list(v.shape), "values": v.double().reshape(-1).tolist()}
                for k, v in mixed.items()})

    # Plain values for the unpickler, in the oldest protocol torch.save uses and in protocols 4 and 5.
    values = collections.OrderedDict([
        ("int", 5), ("neg", -300), ("int32", 2**31 - 1), ("int64", -(2**62)), ("big", 2**70),
        ("float", 1.5), ("text", "héllo"), ("none", None), ("flags", (True, False)),
        ("list", [1, 2.25, "x", [], ()]), ("nested", {"a": {"b": [3]}}), ("tuple3", (1, 2, 3)),
    ])
    shared = [7, 8]
    values["shared_a"] = shared
    values["shared_b"] = shared  # memo: the second reference is a BINGET
    for protocol in (2, 4, 5):
        (OUT / f"values_p{protocol}.pkl").write_bytes(pickle.dumps(values, protocol=protocol))

    # Pickles that name globals the reader must refuse. Nothing here is ever unpickled by Python.
    (OUT / "evil_os_system.pkl").write_bytes(pickle.dumps(CallsOsSystem(), protocol=2))
    (OUT / "evil_eval_p4.pkl").write_bytes(pickle.dumps(CallsEval(), protocol=4))
    torch.save(collections.OrderedDict([("x", torch.zeros(2)), ("y", CallsOsSystem())]),
               OUT / "evil_zip.bin")

    # The zip .bin rewritten with deflate-compressed entries, which PyTorch never writes.
    src = zipfile.ZipFile(d.parent / "tiny-gpt2-zip" / "pytorch_model.bin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, src.read(info.filename))
    (OUT / "compressed_zip.bin").write_bytes(buf.getvalue())


if __name__ == "__main__":
    main()
