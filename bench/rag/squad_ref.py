"""Python reference for SQuAD retrieval (bench/rag/squad.sh): the same three modes as
lmadapt rag eval, built from the usual libraries.
  bm25:   rank_bm25.BM25Okapi (k1 1.2, b 0.75) over lowercase \\w+ tokens of each paragraph
  vector: sentence-transformers all-MiniLM-L6-v2 (normalized), cosine, exact
  hybrid: reciprocal rank fusion (k 60) of the two top-50 lists
Metrics as src/rag/metrics.h (one labelled paragraph per question): recall@1/5/10,
MRR@10, nDCG@10. Usage: squad_ref.py CORPUS.jsonl QA.jsonl MODEL_DIR"""
import json, math, re, sys, time
import numpy as np
from rank_bm25 import BM25Okapi
from sentence_transformers import SentenceTransformer

corpus = [json.loads(l) for l in open(sys.argv[1])]
qa = [json.loads(l) for l in open(sys.argv[2])]
ids = [d["id"] for d in corpus]
tok = lambda s: re.findall(r"\w+", s.lower())
bm25 = BM25Okapi([tok(d["text"]) for d in corpus], k1=1.2, b=0.75)
model = SentenceTransformer(sys.argv[3], device="cpu")
t0 = time.perf_counter()
emb = model.encode([d["text"] for d in corpus], normalize_embeddings=True, batch_size=32)
qemb = model.encode([q["question"] for q in qa], normalize_embeddings=True, batch_size=32)
enc_s = time.perf_counter() - t0


def metrics(ranked, rel):
    g = [1 if d == rel else 0 for d in ranked]
    first = next((i for i, x in enumerate(g[:10]) if x), None)
    return {"recall@1": sum(g[:1]), "recall@5": sum(g[:5]), "recall@10": sum(g[:10]),
            "mrr@10": 0 if first is None else 1 / (first + 1),
            "ndcg@10": 0 if first is None else 1 / math.log2(first + 2)}


res = {m: [] for m in ("bm25", "vector", "hybrid")}
for qi, q in enumerate(qa):
    rel = q["doc_ids"][0]
    s = bm25.get_scores(tok(q["question"]))
    b = [ids[i] for i in np.argsort(-s, kind="stable")[:50] if s[i] > 0]
    v = [ids[i] for i in np.argsort(-(emb @ qemb[qi]), kind="stable")[:50]]
    f = {}
    for lst in (b, v):
        for r, d in enumerate(lst):
            f[d] = f.get(d, 0) + 1 / (60 + r + 1)
    h = sorted(f, key=lambda d: (-f[d], d))
    for m, ranked in (("bm25", b), ("vector", v), ("hybrid", h)):
        res[m].append(metrics(ranked[:10], rel))
for m, rows in res.items():
    out = {"impl": "python-ref", "mode": m, "n": len(rows)}
    for k in rows[0]:
        out[k] = round(sum(r[k] for r in rows) / len(rows), 4)
    print(json.dumps(out))
print(json.dumps({"impl": "python-ref", "encode_s": round(enc_s, 2), "paragraphs": len(corpus), "questions": len(qa)}))
