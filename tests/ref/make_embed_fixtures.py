#!/usr/bin/env python3
"""Embedding and WordPiece fixtures for lmadapt (tests/ref/embed/), from the fetched
all-MiniLM-L6-v2 (scripts/fetch-models.sh) with CPU torch and sentence-transformers.

Writes:
  tests/ref/embed/cases.json   the sentences (raw UTF-8 as hex), HF tokenizers' ids of each
                               (with [CLS]/[SEP], not truncated), and the same for the
                               tokenizer test texts of make_tok_fixtures.py
  tests/ref/embed/embeddings.f32  (n_sentences, 384) little-endian float32: SentenceTransformer
                               .encode (its truncation at max_seq_length 256, mean pooling,
                               Normalize), batch 32, float32 on CPU

Usage: /tmp/refenv/bin/python tests/ref/make_embed_fixtures.py [--model DIR]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "embed")
sys.path.insert(0, HERE)
from make_tok_fixtures import test_texts  # noqa: E402


def sentences():
    long_para = ("Retrieval-augmented generation retrieves passages from a knowledge base and lets the model "
                 "answer from them, citing its sources. ") * 30  # > 256 tokens: truncated
    return [
        "The quick brown fox jumps over the lazy dog.",
        "A man is eating food.",
        "A man is riding a white horse on an enclosed ground.",
        "How do I reset my password?",
        "Café, naïve, résumé, Ångström and Zürich have accents.",
        "ÉCOLE NORMALE SUPÉRIEURE",
        "東京は日本の首都です。",
        "中文文本测试，你好世界。",
        "한국어 텍스트입니다",
        "Prices rose 3.5% in 2024, from $1,299.99 to $1,345.00!",
        "Call +1 (555) 010-4477 or e-mail info@example.com before 10:30 a.m.",
        "!!! ??? ... --- ((( ))) \"quoted\" 'single' `back` ~~~",
        "def f(x):\n    return x**2 + 1  # square",
        "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
        "x" * 150,  # longer than max_input_chars_per_word: [UNK]
        "I ❤️ emoji 😀🎉 and flags 🇫🇷",
        "a",
        " ",
        "?",
        "   leading and trailing   ",
        "Tabs\tand\nnewlines\r\nmixed",
        "The Eiffel Tower is located in Paris, France.",
        "Photosynthesis converts light energy into chemical energy in plants.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "El rápido zorro marrón salta sobre el perro perezoso.",
        long_para,
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/lmadapt/models/all-minilm-l6-v2"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    st = SentenceTransformer(a.model, device="cpu")
    sents = sentences()
    emb = st.encode(sents, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    assert emb.shape == (len(sents), 384) and emb.dtype == np.float32
    os.makedirs(OUT, exist_ok=True)
    emb.astype("<f4").tofile(os.path.join(OUT, "embeddings.f32"))
    cases = {"note": "texts as UTF-8 hex; ids from HF tokenizers with [CLS]/[SEP], untruncated; "
                     "tok_texts: make_tok_fixtures.py's text set (invalid UTF-8 decoded with 'replace')",
             "model": "all-minilm-l6-v2", "max_seq_length": st.max_seq_length, "dim": 384,
             "sentences": [{"hex": s.encode().hex(), "ids": tok.encode(s).ids} for s in sents],
             "tok_texts": [{"name": n, "hex": raw.hex(), "ids": tok.encode(raw.decode("utf-8", "replace")).ids}
                           for n, raw in test_texts()]}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f)
    print(f"{len(sents)} sentences, {len(cases['tok_texts'])} tokenizer texts -> {OUT}")


if __name__ == "__main__":
    main()
