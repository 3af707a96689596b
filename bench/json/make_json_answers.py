"""Data for the JSON-answers recipe (docs/recipes/json-answers.md), from the SQuAD v1.1 dev
copy in tests/data/squad (CC BY-SA 4.0): each question with the sentences of its passage
that hold the answer, asked to reply as {"answer": "<span>"}.
  train.jsonl  SFT examples {"messages": [user prompt, assistant JSON]}
  test.jsonl   eval gen records: {"prompt", "answer": {"answer": gold}, "check": "json",
               "required_keys": ["answer"], "schema": {...}} (run with --chat)
Split by question, 22 train / 12 test, the same split as bench/judge/make_squad_judge.py.
Usage: python3 bench/json/make_json_answers.py OUT_DIR
"""
import json
import os
import random
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "squad")
qa = [json.loads(l) for l in open(os.path.join(root, "qa.jsonl"))]
corpus = {}
for l in open(os.path.join(root, "corpus.jsonl")):
    d = json.loads(l)
    corpus[d["id"]] = d["text"]


def source(text, start):
    bounds = [0] + [m.end() for m in re.finditer(r"(?<=[.!?]) (?=[A-Z\"])", text)] + [len(text) + 1]
    for i in range(len(bounds) - 1):
        if bounds[i] <= start < bounds[i + 1]:
            return text[bounds[i]:bounds[min(i + 2, len(bounds) - 1)]].strip()
    return text


schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}
rng = random.Random(7)
order = list(range(len(qa)))
rng.shuffle(order)
split = {"train": order[:22], "test": order[22:]}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, idx in split.items():
    with open(os.path.join(out, name + ".jsonl"), "w") as f:
        for i in idx:
            q = qa[i]
            prompt = ("Read the passage and answer the question with the shortest span of the passage. "
                      "Reply with a JSON object {\"answer\": \"...\"} and nothing else.\n\nPassage: %s\n\nQuestion: %s"
                      % (source(corpus[q["doc_ids"][0]], q["answer_starts"][0]), q["question"]))
            gold = q["answers"][0]
            if name == "train":
                f.write(json.dumps({"messages": [{"role": "user", "content": prompt},
                                                 {"role": "assistant", "content": json.dumps({"answer": gold})}]}) + "\n")
            else:
                f.write(json.dumps({"prompt": prompt, "answer": {"answer": gold}, "check": "json",
                                    "required_keys": ["answer"], "schema": schema}) + "\n")
