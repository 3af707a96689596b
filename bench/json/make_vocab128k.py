"""A 128K-token byte-level BPE tokenizer for the mask-cost bench (bench/json/mask_cost.sh):
SmolLM2's real 49,152 tokens and merges (read from its GGUF with the gguf package) plus
synthetic tokens up to 128,256 (Llama 3's vocabulary size): substrings of 2-16 bytes of
tests/data/tinyshakespeare.txt and of a code-like alphabet, with and without a leading
space, in GPT-2's byte-to-unicode form, each once. No merge produces them, so encoding is
SmolLM2's; they exist so that the mask walks a 128K vocabulary whose pieces look like
real ones (words, word pieces, punctuation runs, digits).
Usage: /tmp/refenv/bin/python bench/json/make_vocab128k.py SMOLLM2.gguf OUT_DIR
"""
import json
import os
import random
import sys

import gguf

V = 128256
r = gguf.GGUFReader(sys.argv[1])


def field(name):
    f = r.fields[name]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


tokens = field("tokenizer.ggml.tokens")
merges = field("tokenizer.ggml.merges")
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
b2u = {b: chr(c) for b, c in zip(bs, cs)}
vocab = {t: i for i, t in enumerate(tokens)}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
text = open(os.path.join(root, "tests", "data", "tinyshakespeare.txt"), "rb").read()
code = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_(){}[]<>=+-*/.,;:'\"!?#$%&|\\^~`@ \n\t"
rng = random.Random(128)
while len(vocab) < V:
    if rng.random() < 0.7:
        i = rng.randrange(len(text) - 16)
        piece = text[i:i + rng.randint(2, 16)]
    else:
        piece = bytes(rng.choice(code) for _ in range(rng.randint(2, 8)))
    if rng.random() < 0.5 and not piece.startswith(b" "):
        piece = b" " + piece
    s = "".join(b2u[b] for b in piece)
    if s not in vocab:
        vocab[s] = len(vocab)
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
      "normalizer": None,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
      "post_processor": None,
      "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
      "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                "vocab": vocab, "merges": merges}}
json.dump(tj, open(os.path.join(out, "tokenizer.json"), "w"), ensure_ascii=False)
json.dump({"tokenizer_class": "GPT2Tokenizer"}, open(os.path.join(out, "tokenizer_config.json"), "w"))
print(len(vocab), "tokens")
