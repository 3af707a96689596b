"""transformers' generate on the GPU, the baseline of bench/gen_gpu.sh (nothing is downloaded).

  gen_gpu_hf.py --shape 1b|7b --batches 1,32 --prompt 128 --gen 256 --mode eager|static
                [--deadline EPOCH] [--json OUT]

A LlamaForCausalLM of the shape of lmadapt's preset (1b: TinyLlama-1.1B, hidden 2048, 22 layers,
32 / 4 heads, intermediate 5632; 7b: Llama-2-7B, hidden 4096, 32 layers, 32 / 32 heads,
intermediate 11008; vocab 32000) with random bf16 weights made on the GPU, SDPA attention;
random prompt ids (batch x prompt); greedy generate of exactly --gen new tokens
(min_new_tokens = max_new_tokens: no early stop). eager: the default dynamic cache; static:
cache_implementation="static", with which generate compiles the decoding forward with
torch.compile (its first call, the compile, is untimed and reported as warmup_s). Per batch:
new tokens/s over the best of --reps (1) timed runs (prefill included, as generate runs it) and the
peak GPU memory. A batch that would start past --deadline is skipped and says so.
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=SHAPES, required=True)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=256)
    ap.add_argument("--mode", choices=("eager", "static"), default="eager")
    ap.add_argument("--deadline", type=float, default=0)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = LlamaConfig(vocab_size=32000, max_position_embeddings=a.prompt + a.gen + 8, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, attn_implementation="sdpa", **SHAPES[a.shape])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(cfg, dtype=torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    rows = []
    for b in [int(x) for x in a.batches.split(",")]:
        row = dict(impl="transformers", mode=a.mode, shape=a.shape, params=params, batch=b, prompt=a.prompt,
                   gen=a.gen, torch=torch.__version__, gpu=torch.cuda.get_device_name())
        if a.deadline and time.time() > a.deadline:
            row["skipped"] = "past the deadline"
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        ids = torch.randint(0, 32000, (b, a.prompt), device="cuda", generator=torch.Generator("cuda").manual_seed(b))
        kw = dict(max_new_tokens=a.gen, min_new_tokens=a.gen, do_sample=False, pad_token_id=0,
                  attention_mask=torch.ones_like(ids))
        if a.mode == "static":
            kw["cache_implementation"] = "static"
        torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        warm = dict(kw) if a.mode == "static" else dict(kw, max_new_tokens=4, min_new_tokens=4)
        with torch.no_grad():
            model.generate(ids, **warm)  # warm-up (static: the compile, at the timed shapes)
        torch.cuda.synchronize()
        row["warmup_s"] = round(time.time() - t0, 2)
        best = 1e30
        for _ in range(a.reps):
            torch.cuda.synchronize()
            t0 = time.time()
            with torch.no_grad():
                out = model.generate(ids, **kw)
            torch.cuda.synchronize()
            best = min(best, time.time() - t0)
        assert out.shape[1] == a.prompt + a.gen, out.shape
        row["seconds"] = round(best, 3)
        row["tok_s"] = round(b * a.gen / best, 1)
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
