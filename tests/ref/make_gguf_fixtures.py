#!/usr/bin/env python3
"""Parity fixtures for lmadapt's GGUF model loading (tests/test_gguf_model.c).

transformers loads SmolLM2-135M-Instruct from its GGUF file (Q4_1 weights, Q8_0
embedding; transformers dequantizes with gguf-py to fp32 and undoes llama.cpp's Q/K
row permutation), in fp32 with eager attention on the CPU. For a few texts (prose,
code, a ChatML rendering) it records the token ids and the per-token log-probs
log p(ids[i+1] | ids[..i]); for a chat prompt, the 24 greedy tokens.

Also, for every tensor of the file, a checksum of gguf-py's dequantized fp32 values
(sum over i of bits(x[i]) * (2i + 1) mod 2^64, the float bits as uint32), so the C test
can check that lmadapt's dequantization of the real file is bit-identical to gguf-py's.

Run from the repository root (the model comes from scripts/fetch-models.sh):
    python3 tests/ref/make_gguf_fixtures.py [PATH.gguf] [--tensors-only]
Writes tests/ref/gguf/smollm2_logprobs.json and smollm2_tensors.json. Needs torch,
transformers, gguf (CPU).
"""
import importlib.metadata
import json
import os
import sys

import gguf
import numpy as np

HOME = os.environ.get("LMA_HOME", os.path.expanduser("~/.cache/lmadapt"))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
PATH = ARGS[0] if ARGS else os.path.join(HOME, "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf")
OUT = os.path.join(HERE, "smollm2_logprobs.json")


def tensor_sums():
    r = gguf.GGUFReader(PATH)
    sums = {}
    for t in r.tensors:
        w = gguf.dequantize(t.data, t.tensor_type).astype(np.float32).ravel().view(np.uint32).astype(np.uint64)
        i = np.arange(w.size, dtype=np.uint64)
        sums[t.name] = {"type": t.tensor_type.name, "n": int(w.size),
                        "sum": str(int(np.sum(w * (np.uint64(2) * i + np.uint64(1)), dtype=np.uint64)))}
    with open(os.path.join(HERE, "smollm2_tensors.json"), "w") as fp:
        json.dump({"model": os.path.basename(PATH), "gguf": importlib.metadata.version("gguf"), "tensors": sums},
                  fp, indent=0)
    print("wrote", len(sums), "tensor sums")


os.makedirs(HERE, exist_ok=True)
tensor_sums()
if "--tensors-only" in sys.argv:
    sys.exit(0)

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

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
                  "gguf": importlib.metadata.version("gguf")},
    "dtype": "float32", "attn_implementation": "eager",
    "cases": cases,
    "greedy": {"prompt": prompt, "prompt_ids": pids, "ids": gen, "text": tok.decode(gen)},
}
with open(OUT, "w") as fp:
    json.dump(doc, fp, indent=1, ensure_ascii=False)
print("wrote", OUT, [len(c["ids"]) for c in cases], repr(doc["greedy"]["text"]))
