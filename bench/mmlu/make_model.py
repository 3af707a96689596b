"""Writes a TinyLlama-1.1B-shaped LlamaForCausalLM with random weights as a HF folder.

    python3 bench/mmlu/make_model.py --out /tmp/tl-mmlu [--tok .mmlu/tok] [--tiny] [--std 0.02]

Full size (default): hidden 2048, intermediate 5632, 22 layers, 32 heads, 4 kv heads,
vocab 32000, max_position_embeddings 2048, rope_theta 10000, rms_norm_eps 1e-5, untied
embeddings (TinyLlama-1.1B's config.json), saved as bf16 safetensors.
--tiny: hidden 64, intermediate 176, 2 layers, 4 heads, 2 kv heads, same vocab and
context, saved as fp32 (the CPU check: lm-eval and lmadapt both in fp32).
Weights: torch.manual_seed(--seed, 0) then transformers' own init (normal(0, std) for
every Linear and the embedding, ones for the norms) with initializer_range = --std:
default 0.02 (HF's default) at full size, 0.3 with --tiny. At 0.02 a full-width model
already answers different letters for different questions (attention logits scale with
std^2 x hidden); a hidden-64 model at 0.02 answers "C" to every item, so --tiny uses 0.3
(README.md, "Choosing the init").
The tokenizer files of --tok are copied beside the weights.
"""
import argparse, json, os, shutil, time


def config_kwargs(tiny):
    if tiny:
        return dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2)
    return dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                num_key_value_heads=4)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/tl-mmlu")
    ap.add_argument("--tok", default=".mmlu/tok")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--std", type=float, help="initializer_range (default 0.02, with --tiny 0.3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["bf16", "fp32"], help="default: bf16, fp32 with --tiny")
    a = ap.parse_args()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    t0 = time.time()
    if a.std is None:
        a.std = 0.3 if a.tiny else 0.02
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype or ("fp32" if a.tiny else "bf16")]
    cfg = LlamaConfig(vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-5,
                      hidden_act="silu", tie_word_embeddings=False, initializer_range=a.std,
                      bos_token_id=1, eos_token_id=2, attention_bias=False, mlp_bias=False,
                      **config_kwargs(a.tiny))
    torch.manual_seed(a.seed)
    model = LlamaForCausalLM(cfg)  # fp32 init on the CPU, then cast: the same weights whatever the device
    model = model.to(dtype)
    model.config.torch_dtype = dtype  # transformers 5 calls it dtype; both are read back
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(a.tok, f)):
            shutil.copy(os.path.join(a.tok, f), os.path.join(a.out, f))
    n = sum(p.numel() for p in model.parameters())
    print("wrote %s: %d parameters, %s, std %g, seed %d, %.1f s" % (a.out, n, dtype, a.std, a.seed, time.time() - t0))
    print(json.dumps({k: v for k, v in json.load(open(os.path.join(a.out, "config.json"))).items()
                      if k in ("hidden_size", "num_hidden_layers", "dtype", "torch_dtype", "tie_word_embeddings")}))


if __name__ == "__main__":
    main()
