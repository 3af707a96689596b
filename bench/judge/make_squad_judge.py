"""Labelled judgements for the judge recipe (docs/recipes/judge.md), from the SQuAD
v1.1 dev copy in tests/data/squad (CC BY-SA 4.0).

For each question: the source is the sentence of the paragraph that holds the answer
(and the one after it); three responses with a groundedness label on a 1..3 scale,
labelled by construction (not by people):
  3  the gold answer span (stated in the source)
  2  the gold answer plus a made-up date ("... It was first reported in 1873."):
     the answer is supported, the added claim is not
  1  the gold answer of another question (not supported by the source)
Questions are split 22 train / 12 test (deterministic), so no test question, source or
response text is seen in training.
Usage: python3 bench/judge/make_squad_judge.py OUT_DIR  ->  OUT_DIR/{train,test}.jsonl
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
    # sentence boundaries: ". " followed by a capital letter
    bounds = [0] + [m.end() for m in re.finditer(r"(?<=[.!?]) (?=[A-Z\"])", text)] + [len(text) + 1]
    for i in range(len(bounds) - 1):
        if bounds[i] <= start < bounds[i + 1]:
            return text[bounds[i]:bounds[min(i + 2, len(bounds) - 1)]].strip()
    return text


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
            src = source(corpus[q["doc_ids"][0]], q["answer_starts"][0])
            gold = q["answers"][0]
            other = qa[(i + 1 + rng.randrange(len(qa) - 1)) % len(qa)]["answers"][0]
            year = rng.randrange(1700, 2000)
            items = [(gold, 3), ("%s. It was first reported in %d." % (gold, year), 2), (other, 1)]
            rng.shuffle(items)
            for resp, lab in items:
                f.write(json.dumps({"question": q["question"], "sources": [src], "response": resp,
                                    "label": {"groundedness": lab}}) + "\n")
