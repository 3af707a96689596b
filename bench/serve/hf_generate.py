"""The transformers side of bench/serve/device_check.sh.

  hf_generate.py make-tiny OUT_DIR GGUF     a TinyLlama-shaped model (hidden 2048, 22 layers,
                                            32 heads / 4 KV heads, intermediate 5632; random
                                            weights, seed 0, bf16) with SmolLM2's tokenizer
                                            (vocab 49152) taken from the GGUF, so both servers
                                            read the same folder
  hf_generate.py bench MODEL [GGUF_FILE]    greedy model.generate on the GPU (bf16, SDPA) for
                                            batches of 1, 8, 32, 64 chat prompts (left padded),
                                            64 new tokens each (min_new_tokens = max): one JSON
                                            line per batch with tokens/s and latency
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

PROMPTS = ["Write a short poem about the sea.", "What is the capital of France?", "Explain what a CPU does.",
           "Give me three tips for learning to cook.", "Tell me a fun fact about space.",
           "Summarize the plot of a fairy tale in two sentences."]


def make_tiny(out, gguf):
    d, f = gguf.rsplit("/", 1)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=len(tok), max_position_embeddings=2048, rope_theta=10000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    m.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    print(f"wrote {out}: {sum(p.numel() for p in m.parameters()) / 1e9:.2f} B parameters")


def bench(model, gguf=None):
    kw = {"gguf_file": gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(model, **kw)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    m = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.bfloat16, attn_implementation="sdpa",
                                             **kw).cuda().eval()
    n_new = 64
    for b in (1, 8, 32, 64):
        texts = [tok.apply_chat_template([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], tokenize=False,
                                         add_generation_prompt=True) for i in range(b)]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to("cuda")
        with torch.no_grad():
            m.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)  # warm-up
            torch.cuda.synchronize()
            t0 = time.time()
            out = m.generate(**enc, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                             pad_token_id=tok.pad_token_id)
            torch.cuda.synchronize()
            dt = time.time() - t0
        gen = (out.shape[1] - enc["input_ids"].shape[1]) * b
        print(json.dumps({"side": "transformers generate", "model": model, "batch": b, "new_tokens": gen,
                          "seconds": round(dt, 3), "tokens_per_s": round(gen / dt, 1)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make-tiny":
        make_tiny(sys.argv[2], sys.argv[3])
    else:
        bench(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
