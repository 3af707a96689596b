#!/usr/bin/env python3
"""The benchmark sentences: every instruction, input and output paragraph of
tests/data/alpaca_small_2k.json (public, tests/data/MANIFEST.md), split on blank lines,
as JSONL {"id", "text"} (first N)."""
import json
import sys

src, n = sys.argv[1], int(sys.argv[2])
out = []
for r in json.load(open(src, encoding="utf-8")):
    for k in ("instruction", "input", "output"):
        for p in r.get(k, "").split("\n\n"):
            if p.strip():
                out.append(p.strip())
for i, t in enumerate(out[:n]):
    print(json.dumps({"id": i, "text": t}, ensure_ascii=False))
