#!/usr/bin/env python3
"""Parity fixtures for lmadapt's GGUF model loading (tests/test_gguf_model.c).

transformers loads SmolLM2-135M-Instruct from its GGUF file (Q4_1 weights, Q8_0
embedding; transformers dequantizes with gguf-py to fp32 and undoes llama.cpp's Q/K
row permutation), in fp32 with eager attention on the CPU. For a few texts (prose,
code, a ChatML rendering) it records the token ids and the per-token log-probs
log p(ids[i+1] | ids[..i]); for a chat prompt, the 24 greedy tokens.

Run from the repository root (the model comes from scripts/fetch-models.sh):
    python3 tests/ref/make_gguf_fixtures.py [PATH.gguf]
Writes tests/ref/gguf/smollm2_logprobs.json. Needs torch, transformers, gguf (CPU).
"""
import json
import os
import sys

import gguf
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HOME = os.environ.get("LMA_HOME", os.path.expanduser("~/.cache/lmadapt"))
PATH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HOME, "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf", "smollm2_logprobs.json")

torch.manual_seed(0)
torch.set_num_threads(2)
d, f = os.path.dirname(PATH), os.path.basename(PATH)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()

chat = [{"role": "user", "content": "What does LoRA change in a model, in one sentence?"}]
chat_text = tok.apply_chat_template(chat + [{"role": "assistant", "content":
                                    "LoRA adds small low-rank matrices beside the frozen weights."}], tokenize=False)
texts = {
    "prose": "The quick brown fox jumps over the lazy dog. Adapting a language model to a new domain "
             "starts with data: clean, deduplicated, and in the same format at training and inference.",
    "code": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
            "print([fib(i) for i in range(10)])  # 0 1 1 2 3 5 8\n",
    "chat": chat_text,
}
cases = []
with torch.no_grad():
    for name, text in texts.items():
        ids = tok(text, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits, -1)
        lps = [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
        cases.append({"name": name, "text": text, "ids": ids, "logprobs": lps})
    prompt = tok.apply_chat_template([{"role": "user", "content": "Explain in a few sentences why the sky is blue."}],
                                     tokenize=False, add_generation_prompt=True)
    pids = tok(prompt, add_special_tokens=False)["input_ids"]
    out = model.generate(torch.tensor([pids]), max_new_tokens=24, do_sample=False, num_beams=1,
                         attention_mask=torch.ones(1, len(pids), dtype=torch.long))
    gen = out[0, len(pids):].tolist()

doc = {
    "model": os.path.basename(PATH),
    "made_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                  "gguf": getattr(gguf, "__version__", "?")},
    "dtype": "float32", "attn_implementation": "eager",
    "cases": cases,
    "greedy": {"prompt": prompt, "prompt_ids": pids, "ids": gen, "text": tok.decode(gen)},
}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as fp:
    json.dump(doc, fp, indent=1, ensure_ascii=False)
print("wrote", OUT, [len(c["ids"]) for c in cases], repr(doc["greedy"]["text"]))
