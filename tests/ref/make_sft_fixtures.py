"""SFT loss masks from transformers' apply_chat_template: makes tests/ref/sft/.

For each tokenizer fixture (tests/ref/tok/bl: Llama 3 template, tests/ref/tok/sp:
Llama 2 template) and a set of conversations (single turn, system prompt,
multi-turn, "weight": 0 on an assistant turn), the expected labels are computed
the classic way, independently of lmadapt's span logic: assistant message i
covers the tokens between the rendering of messages[:i] (with the generation
prompt where the template has one) and the rendering of messages[:i+1]; a
message with weight 0 gets no labels. Output: <tok>.jsonl (the data, OpenAI
messages format) and <tok>.expected.json ({"ids": [[...]], "labels": [[0/1...]]}).
Usage: python3 tests/ref/make_sft_fixtures.py
"""
import json, os
from transformers import PreTrainedTokenizerFast

root = os.path.dirname(os.path.abspath(__file__))
convs = [
    [{"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris is the capital of France."}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name a prime number."},
     {"role": "assistant", "content": "Seven."}],
    [{"role": "user", "content": "Hi there"},
     {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Count to three."},
     {"role": "assistant", "content": "One, two, three."}],
    [{"role": "system", "content": "Be kind."},
     {"role": "user", "content": "Tell me a joke"},
     {"role": "assistant", "content": "I forgot it, sorry.", "weight": 0},
     {"role": "user", "content": "Try again"},
     {"role": "assistant", "content": "Why did the chicken cross the road? To get to the other side."}],
]

for name in ("bl", "sp"):
    d = os.path.join(root, "tok", name)
    tok = PreTrainedTokenizerFast.from_pretrained(d)
    ids_all, labels_all = [], []
    for conv in convs:
        msgs = [{"role": m["role"], "content": m["content"]} for m in conv]
        full = tok.apply_chat_template(msgs, tokenize=False)
        ids = tok(full, add_special_tokens=False)["input_ids"]
        labels = [0] * len(ids)
        for i, m in enumerate(conv):
            if m["role"] != "assistant" or m.get("weight", 1) == 0:
                continue
            pre = tok.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
            upto = tok.apply_chat_template(msgs[:i + 1], tokenize=False)
            a = len(tok(pre, add_special_tokens=False)["input_ids"])
            b = len(tok(upto, add_special_tokens=False)["input_ids"])
            assert tok(upto, add_special_tokens=False)["input_ids"] == ids[:b], "prefix tokenization is not stable"
            for t in range(a, b):
                labels[t] = 1
        ids_all.append(ids)
        labels_all.append(labels)
    out = os.path.join(root, "sft")
    with open(os.path.join(out, name + ".jsonl"), "w") as f:
        for c in convs:
            f.write(json.dumps({"messages": c}) + "\n")
    with open(os.path.join(out, name + ".expected.json"), "w") as f:
        json.dump({"tokenizer": "tests/ref/tok/" + name, "ids": ids_all, "labels": labels_all}, f)
    print(name, [len(x) for x in ids_all], [sum(x) for x in labels_all])
