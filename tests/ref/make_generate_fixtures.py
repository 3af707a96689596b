"""Greedy continuations from transformers' generate on the fixture models:
makes tests/ref/generate.json ({model: {"prompt": [...], "generated": [...]}}).
Greedy, 12 new tokens, no EOS stop (eos_token_id=None, min_new_tokens = max).
Usage: python3 tests/ref/make_generate_fixtures.py
"""
import json, os
import torch
from transformers import AutoModelForCausalLM

root = os.path.dirname(os.path.abspath(__file__))
out = {}
g = torch.Generator().manual_seed(11)
for name in sorted(os.listdir(os.path.join(root, "models"))):
    d = os.path.join(root, "models", name)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, 6), generator=g)
    with torch.no_grad():
        gen = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, eos_token_id=None,
                             pad_token_id=0, repetition_penalty=1.3)
        gen_plain = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, eos_token_id=None,
                                   pad_token_id=0)
    out[name] = {"prompt": prompt[0].tolist(), "generated": gen_plain[0, 6:].tolist(),
                 "generated_rep1.3": gen[0, 6:].tolist()}
    print(name, out[name])
with open(os.path.join(root, "generate.json"), "w") as f:
    json.dump(out, f, indent=1)
