"""PyTorch CPU baseline for bench/bench_gen.c: batch-1 greedy generation with the KV
cache on the same weights (the model dir bench_gen saved), with the pip-installed
torch 2.x + transformers 5.x: LlamaForCausalLM, past_key_values (DynamicCache).

Loop measured (the same as bench_gen): one forward of the P prompt tokens (from
DIR/prompt_ids.txt), argmax, then N-1 single-token forwards with argmax; best of
--reps after one warm-up round.

Usage: python3 bench/gen_torch.py DIR --gen 128 --threads 2
Last line: RESULT torch <version> prompt P gen N prefill_tok_s A decode_tok_s B
"""
import argparse
import time

import torch
import transformers
from transformers import LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--gen", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = LlamaForCausalLM.from_pretrained(a.dir, dtype=torch.float32).eval()
prompt = [int(x) for x in open(a.dir + "/prompt_ids.txt").read().split()]
P, N = len(prompt), a.gen
best_pre = best_dec = 1e30
with torch.inference_mode():
    for r in range(a.reps + 1):
        ids = torch.tensor([prompt])
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        nxt = int(out.logits[0, -1].argmax())
        gen = [nxt]
        past = out.past_key_values
        t1 = time.perf_counter()
        for i in range(N - 1):
            out = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(out.logits[0, -1].argmax())
            gen.append(nxt)
        t2 = time.perf_counter()
        if r == 0:
            continue
        best_pre = min(best_pre, t1 - t0)
        best_dec = min(best_dec, t2 - t1)
print("first generated ids:", " ".join(str(x) for x in gen[:16]))
print("RESULT torch %s transformers %s prompt %d gen %d prefill_tok_s %.1f decode_tok_s %.2f"
      % (torch.__version__, transformers.__version__, P, N, P / best_pre, (N - 1) / best_dec))
