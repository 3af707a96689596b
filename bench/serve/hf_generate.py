"""The transformers side of bench/serve/device_check.sh (nothing is downloaded).

  hf_generate.py make OUT_DIR --shape smollm2|tinyllama|toy [--tok bench/serve/tok] [--device cuda]
      a Llama folder with random weights (seed 0, bf16 safetensors) of the shape of
      SmolLM2-135M (hidden 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536, tied
      embeddings, rope_theta 100000), TinyLlama-1.1B (hidden 2048, 22 layers, 32 / 4 heads,
      intermediate 5632, rope_theta 10000) or a toy (hidden 64, 2 layers: local tests), all
      with SmolLM2's tokenizer (vocab 49152, its chat template) from bench/serve/tok: both
      servers read the same folder.
  hf_generate.py bench MODEL_DIR --mode eager|static [--device cuda] [--batches 1,8,32,64]
                 [--new 64] [--reps 3] [--deadline EPOCH] [--json OUT]
      greedy model.generate (bf16 on cuda, fp32 on cpu; SDPA attention) of the chat prompts
      of bench/serve/load.py (left padded) in batches, exactly --new tokens each
      (min_new_tokens = max_new_tokens, EOS ignored as the server's ignore_eos does).
      eager: the default dynamic cache; static: cache_implementation="static", with which
      generate compiles the decoding forward with torch.compile on cuda (transformers >= 4.48
      does it by itself for a static cache; not on the CPU); the first call of each batch size
      (the compile) is untimed and reported as warmup_s. Per batch: tokens/s over --reps
      timed runs and the latency of a request (the batch's wall time: all its requests end
      together) p50 / p99 over them. A batch that would start after --deadline is skipped
      (reported as skipped).
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import time

PROMPTS = ["Write a short poem about the sea.", "What is the capital of France?", "Explain what a CPU does.",
           "Give me three tips for learning to cook.", "Tell me a fun fact about space.",
           "Summarize the plot of a fairy tale in two sentences."]

SHAPES = {
    "smollm2": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, rope_theta=100000.0, tie_word_embeddings=True,
                    max_position_embeddings=8192, rms_norm_eps=1e-5),
    "tinyllama": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, rope_theta=10000.0, tie_word_embeddings=False,
                      max_position_embeddings=2048, rms_norm_eps=1e-5),
    "toy": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, rope_theta=100000.0, tie_word_embeddings=True,
                max_position_embeddings=2048, rms_norm_eps=1e-5),
}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None


def make(out, shape, tok_dir, device):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    os.makedirs(out, exist_ok=True)
    with gzip.open(os.path.join(tok_dir, "tokenizer.json.gz"), "rb") as f, \
            open(os.path.join(out, "tokenizer.json"), "wb") as g:
        shutil.copyfileobj(f, g)
    tcfg = json.load(open(os.path.join(tok_dir, "tokenizer_config.json")))
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(out, "tokenizer.json"),
                                  **{k: tcfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")})
    tok.chat_template = tcfg["chat_template"]
    tok.save_pretrained(out)
    # the chat template inside tokenizer_config.json too (whatever this transformers version writes)
    p = os.path.join(out, "tokenizer_config.json")
    c = json.load(open(p))
    c["chat_template"] = tcfg["chat_template"]
    json.dump(c, open(p, "w"), indent=1)
    cfg = LlamaConfig(vocab_size=49152, bos_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
                      eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.convert_tokens_to_ids("<|im_end|>"), **SHAPES[shape])
    torch.manual_seed(0)
    with torch.device(device):
        m = LlamaForCausalLM(cfg)
    m = m.to(torch.bfloat16)
    m.save_pretrained(out)
    n = sum(p.numel() for p in m.parameters())
    print(json.dumps({"made": out, "shape": shape, "parameters": n}), flush=True)


def bench(model, mode, device, batches, n_new, reps, deadline, out_json):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    tok.padding_side = "left"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    m = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, attn_implementation="sdpa").to(device).eval()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    kw = dict(do_sample=False, pad_token_id=tok.pad_token_id, max_new_tokens=n_new, min_new_tokens=n_new)
    if mode == "static":
        kw["cache_implementation"] = "static"
    rows = []
    for b in batches:
        row = {"side": f"transformers generate ({mode})", "model": os.path.basename(model.rstrip("/")), "batch": b,
               "new_tokens_each": n_new}
        if deadline and time.time() > deadline:
            row["skipped"] = "out of time"
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        texts = [tok.apply_chat_template([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], tokenize=False,
                                         add_generation_prompt=True) for i in range(b)]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            t0 = time.time()
            m.generate(**enc, **kw)  # warm-up (static: compiles for this batch size)
            sync()
            row["warmup_s"] = round(time.time() - t0, 2)
            lat, gen = [], 0
            for _ in range(reps):
                t0 = time.time()
                out = m.generate(**enc, **kw)
                sync()
                dt = time.time() - t0
                n = (out.shape[1] - enc["input_ids"].shape[1]) * b
                gen += n
                lat += [dt] * b
        row.update({"requests": b * reps, "tokens": gen, "seconds": round(sum(lat) / b, 3),
                    "tokens_per_s": round(gen / (sum(lat) / b), 1), "lat_p50_s": round(pct(lat, 50), 3),
                    "lat_p99_s": round(pct(lat, 99), 3)})
        rows.append(row)
        print(json.dumps(row), flush=True)
    if out_json:
        json.dump(rows, open(out_json, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a1 = sub.add_parser("make")
    a1.add_argument("out")
    a1.add_argument("--shape", choices=sorted(SHAPES), required=True)
    a1.add_argument("--tok", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "tok"))
    a1.add_argument("--device", default="cpu")
    a2 = sub.add_parser("bench")
    a2.add_argument("model")
    a2.add_argument("--mode", choices=["eager", "static"], default="eager")
    a2.add_argument("--device", default="cuda")
    a2.add_argument("--batches", default="1,8,32,64")
    a2.add_argument("--new", type=int, default=64)
    a2.add_argument("--reps", type=int, default=3)
    a2.add_argument("--deadline", type=float, default=0)
    a2.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.out, a.shape, a.tok, a.device)
    else:
        bench(a.model, a.mode, a.device, [int(x) for x in a.batches.split(",")], a.new, a.reps, a.deadline, a.json)


if __name__ == "__main__":
    sys.exit(main())
