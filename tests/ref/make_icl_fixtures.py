# BM25 reference for tests/test_icl.c: rank_bm25's BM25Okapi (k1 1.5, b 0.75, epsilon 0.25)
# over a small pool, with the words icl.c uses (lowercased runs of ASCII letters and digits).
# Writes tests/ref/icl/pool.jsonl and tests/ref/icl/bm25.json.
# Run: /tmp/refenv/bin/python tests/ref/make_icl_fixtures.py
import json, os, re
from rank_bm25 import BM25Okapi
here = os.path.join(os.path.dirname(__file__), "icl")
pool = [
    ("What is the capital of France?", "Paris"), ("What is the capital of Italy?", "Rome"),
    ("Translate cat to French", "chat"), ("Translate dog to French", "chien"),
    ("How many legs does a spider have?", "8"), ("How many legs does a cat have?", "4"),
    ("What colour is the sky on a clear day?", "blue"), ("Name the largest planet", "Jupiter"),
    ("What is 2 + 2?", "4"), ("What is 3 + 5?", "8"), ("Spell the word cat backwards", "tac"),
    ("The capital of Spain is?", "Madrid"),
]
words = lambda s: re.findall(r"[a-z0-9]+", s.lower())
bm = BM25Okapi([words(q) for q, _ in pool])
queries = ["capital of Germany", "how many legs does a dog have", "translate bird to French", "what is 7 + 1",
           "zebra unknown words only"]
with open(os.path.join(here, "pool.jsonl"), "w") as f:
    for q, a in pool: f.write(json.dumps({"input": q, "output": a}) + "\n")
with open(os.path.join(here, "bm25.json"), "w") as f:
    json.dump({"queries": queries, "scores": [list(map(float, bm.get_scores(words(q)))) for q in queries]}, f, indent=1)
