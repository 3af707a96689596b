#!/usr/bin/env python3
"""sentence-transformers side of bench/embed/embed_bench.sh: encodes the "text" of every
line of a JSONL file on the CPU (torch threads, batch size as given), prints one JSON line
{"n", "seconds", "cpu_seconds", "sentences_per_s"} (encode time only, model load
excluded; cpu_seconds: user + system time of the process over the encode) and writes the
embeddings as float32 to --out for the comparison with lmadapt's."""
import argparse
import json
import resource
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--file", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--out")
a = ap.parse_args()
torch.set_num_threads(a.threads)
texts = [json.loads(l)["text"] for l in open(a.file, encoding="utf-8") if l.strip()]
m = SentenceTransformer(a.model, device="cpu")
m.encode(texts[:64], batch_size=a.batch)  # warm-up
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
e = m.encode(texts, batch_size=a.batch, convert_to_numpy=True)
dt = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
if a.out:
    e.astype("<f4").tofile(a.out)
print(json.dumps({"n": len(texts), "seconds": round(dt, 3), "cpu_seconds": round(cpu, 3),
                  "sentences_per_s": round(len(texts) / dt, 1)}))
