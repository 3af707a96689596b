#!/usr/bin/env python3
"""Loading SmolLM2-135M-Instruct from its GGUF file (dequantizing Q4_1/Q8_0 to fp32) and the
first generated token, lmadapt beside transformers, on the CPU with the same thread count.

lmadapt: wall time of `lmadapt generate --max-tokens 1` (process start, GGUF parse,
dequantization, tokenization, prefill, one token), and its own split (the prefill it prints).
transformers: AutoModelForCausalLM.from_pretrained(gguf_file=...) in fp32 (gguf-py
dequantizes), then generate(max_new_tokens=1) on the same prompt ids; Python start-up and
imports are timed separately and not counted.

Usage: python3 bench/gguf/load_first_token.py [--threads 2] [--repeats 3]
Needs: build/lmadapt, the model (scripts/fetch-models.sh), torch + transformers + gguf + accelerate.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=3)
a = ap.parse_args()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LMA = os.path.join(ROOT, "build", "lmadapt")
HOME = os.environ.get("LMA_HOME", os.path.expanduser("~/.cache/lmadapt"))
DIR = os.path.join(HOME, "models", "smollm2-135m-instruct")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nExplain in a few sentences why the sky is blue.<|im_end|>\n<|im_start|>assistant\n")
env = dict(os.environ, LMA_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
           OPENBLAS_NUM_THREADS=str(a.threads), LMA_QUIET="1")

lma = []
for _ in range(a.repeats):
    t0 = time.perf_counter()
    r = subprocess.run([LMA, "generate", "--model", "smollm2-135m-instruct", "--prompt", PROMPT, "--max-tokens", "1",
                        "--temperature", "0", "--json"], capture_output=True, text=True, env=env, check=True)
    lma.append(time.perf_counter() - t0)
    first = json.loads(r.stdout)["ids"]

t0 = time.perf_counter()
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
imports = time.perf_counter() - t0
torch.set_num_threads(a.threads)
tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
ids = torch.tensor([tok(PROMPT, add_special_tokens=False)["input_ids"]])
hf_load, hf_first = [], []
for _ in range(a.repeats):
    t0 = time.perf_counter()
    m = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, torch_dtype=torch.float32).eval()
    t1 = time.perf_counter()
    with torch.no_grad():
        out = m.generate(ids, max_new_tokens=1, do_sample=False, attention_mask=torch.ones_like(ids))
    t2 = time.perf_counter()
    hf_load.append(t1 - t0)
    hf_first.append(t2 - t1)
    del m

med = statistics.median
hf_total = med(hf_load) + med(hf_first)
print(json.dumps({
    "threads": a.threads, "repeats": a.repeats, "prompt_tokens": ids.shape[1],
    "lmadapt_start_to_first_token_s": round(med(lma), 3),
    "transformers_load_s": round(med(hf_load), 3), "transformers_first_token_s": round(med(hf_first), 3),
    "transformers_total_s (without python imports)": round(hf_total, 3),
    "transformers_imports_s": round(imports, 3),
    "ratio": round(hf_total / med(lma), 2),
    "same_first_token": out[0, -1].item() == first[0],
}, indent=1))
