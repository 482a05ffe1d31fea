#!/usr/bin/python3
"""A slow, independent GPT-2 tokenizer in Python, to cross-check hpsearch-core's C++ one.

Reads JSON Lines {"text": ...} on stdin and prints each text's token ids separated by spaces, exactly
like `hpsearch-core tokenize --tokenizer DIR`, so the two outputs can be diffed:

  ./build/bin/hpsearch-core tokenize --tokenizer data/gpt2 < in.jsonl > cpp.txt
  /usr/bin/python3 scripts/gpt2_tokenize_reference.py data/gpt2 < in.jsonl > py.txt
  cmp cpp.txt py.txt

`--fuzz N SEED` instead writes N random texts (mixed scripts, digits, punctuation, apostrophes and every
kind of white space) as JSON Lines to stdout, to feed both. `--fixture DIR N SEED` writes N such texts
with their ids, {"text": ..., "ids": [...]}, as tests/data/gpt2-fuzz/cases.jsonl is made:
  /usr/bin/python3 scripts/gpt2_tokenize_reference.py --fixture data/gpt2 250 2026 \
      > tests/data/gpt2-fuzz/cases.jsonl

Pre-tokenizes with GPT-2's regex through the `regex` module (Debian: apt-get install python3-regex; a
development check only, never a build dependency), then merges the lowest-ranked adjacent pair, leftmost
first, until none is left: the definition, without the C++ side's tricks.
"""

import json
import os
import random
import sys
import unicodedata

PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_alphabet():
    printable = (list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256)))
    mapping = {}
    extra = 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def load(directory):
    names = ("vocab.json", "merges.txt")
    if not os.path.exists(os.path.join(directory, names[0])):
        names = ("encoder.json", "vocab.bpe")
    with open(os.path.join(directory, names[0]), encoding="utf-8") as f:
        vocab = json.load(f)
    ranks = {}
    with open(os.path.join(directory, names[1]), encoding="utf-8") as f:
        lines = f.read().split("\n")
    for line in lines:
        if not line or line.startswith("#version"):
            continue
        left, right = line.split(" ")
        ranks.setdefault((left, right), len(ranks))
    return vocab, ranks


def merge(symbols, ranks):
    while len(symbols) > 1:
        best = None
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2:]
    return symbols


def encoder(directory):
    """A function text -> ids."""
    import regex  # only the tokenizer needs it
    vocab, ranks = load(directory)
    alphabet = byte_alphabet()
    pattern = regex.compile(PATTERN)
    cache = {}

    def encode(text):
        ids = []
        for word in pattern.findall(text):
            if word not in cache:
                symbols = [alphabet[b] for b in word.encode("utf-8")]
                cache[word] = [vocab[s] for s in merge(symbols, ranks)]
            ids.extend(cache[word])
        return ids

    return encode


def tokenize(directory):
    encode = encoder(directory)
    for line in sys.stdin:
        print(" ".join(map(str, encode(json.loads(line)["text"]))))


def fuzz_texts(count, seed):
    rng = random.Random(seed)
    pieces = [
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'RE", "''", "'",
        " ", "  ", "   ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028", "\u3000",
        "\u200b", "hello", "World", "the", " card", "caf\u00e9", "na\u00efve", "\u00bd", "\u2163",
        "\u0661\u0662", "123", "4567890", "3.14", "$", "!!", "?!", "...", "--", "(x)", "\u00a3", "\u20ac",
        "\U0001F600", "\U0001F680\u200d", "\u65e5\u672c\u8a9e", "\u043f\u0440\u0438\u0432\u0435\u0442",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "e\u0301", "\u02b0", "\ufb01", "_", "#", "@user",
    ]
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF), (0x1100, 0x11FF),
              (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1FAFF),
              (0x10000, 0x1D7FF), (0x20000, 0x20100)]
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 25)):
            if rng.random() < 0.6:
                parts.append(rng.choice(pieces))
            else:
                lo, hi = rng.choice(ranges)
                chars = [chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))]
                # Unassigned in Python's Unicode version but perhaps not in `regex`'s: the two would
                # disagree about the character, not about tokenizing.
                parts.append("".join(c for c in chars if unicodedata.category(c) != "Cn"))
        yield "".join(parts)


def fuzz(count, seed):
    for text in fuzz_texts(count, seed):
        print(json.dumps({"text": text}))


def fixture(directory, count, seed):
    encode = encoder(directory)
    for text in fuzz_texts(count, seed):
        print(json.dumps({"text": text, "ids": encode(text)}))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--fuzz":
        fuzz(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "--fixture":
        fixture(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 2:
        tokenize(sys.argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
