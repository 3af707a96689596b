"""LangChain + Chroma's default setup on the SQuAD retrieval bench (bench/rag/squad.sh):
the same corpus, questions, relevance and metrics as bench/rag/squad_ref.py and
lmadapt rag eval.
  vector: langchain_chroma.Chroma (its defaults: an in-memory collection, HNSW, L2 space)
          over langchain_huggingface.HuggingFaceEmbeddings(all-MiniLM-L6-v2; the model's own
          Normalize layer makes L2 order = cosine order), as_retriever(k)
  bm25:   langchain_community BM25Retriever.from_documents, defaults (rank_bm25 BM25Okapi
          k1 1.5, b 0.75 over str.split() tokens: case and punctuation kept)
  hybrid: EnsembleRetriever([bm25, vector], weights [0.5, 0.5]) (its default c 60: RRF),
          both retrievers at depth 50 as lmadapt fuses top-50 lists
Whole paragraphs are the documents (as squad_ref.py; the model truncates at 256 tokens).
Times: index (embedding + Chroma insert; BM25 build) as chunks/s; per-question
retriever.invoke latency p50/p99 (ms), the query embedding included.
Usage: langchain_squad.py CORPUS.jsonl QA.jsonl MODEL_DIR   (a venv with langchain,
langchain-community, langchain-chroma, chromadb, langchain-huggingface, rank_bm25)"""
import json, math, sys, time
from importlib.metadata import version

from langchain_core.documents import Document
from langchain_chroma import Chroma
from langchain_community.retrievers import BM25Retriever
from langchain_huggingface import HuggingFaceEmbeddings

try:
    from langchain.retrievers import EnsembleRetriever
except ImportError:  # LangChain 1.x moved it to langchain-classic
    from langchain_classic.retrievers import EnsembleRetriever

corpus = [json.loads(l) for l in open(sys.argv[1])]
qa = [json.loads(l) for l in open(sys.argv[2])]
docs = [Document(page_content=d["text"], metadata={"id": d["id"]}) for d in corpus]
K, DEPTH = 10, 50

t0 = time.perf_counter()
emb = HuggingFaceEmbeddings(model_name=sys.argv[3], model_kwargs={"device": "cpu"})
emb.embed_query("warm-up")  # the model load is reported apart (load_s), not in the index time
t_load = time.perf_counter() - t0
t0 = time.perf_counter()
store = Chroma.from_documents(docs, emb, ids=[d["id"] for d in corpus])
t_vec = time.perf_counter() - t0
t0 = time.perf_counter()
bm25 = BM25Retriever.from_documents(docs, k=K)
t_bm25 = time.perf_counter() - t0
bm25_deep = BM25Retriever.from_documents(docs, k=DEPTH)
retrievers = {
    "bm25": bm25,
    "vector": store.as_retriever(search_kwargs={"k": K}),
    "hybrid": EnsembleRetriever(retrievers=[bm25_deep, store.as_retriever(search_kwargs={"k": DEPTH})],
                                weights=[0.5, 0.5]),
}


def metrics(ranked, rel):
    g = [1 if d == rel else 0 for d in ranked]
    first = next((i for i, x in enumerate(g[:10]) if x), None)
    return {"recall@1": sum(g[:1]), "recall@5": sum(g[:5]), "recall@10": sum(g[:10]),
            "mrr@10": 0 if first is None else 1 / (first + 1),
            "ndcg@10": 0 if first is None else 1 / math.log2(first + 2)}


for mode, r in retrievers.items():
    rows, lat = [], []
    for q in qa:
        a = time.perf_counter()
        got = r.invoke(q["question"])
        lat.append((time.perf_counter() - a) * 1e3)
        ranked = list(dict.fromkeys(d.metadata["id"] for d in got))[:K]
        rows.append(metrics(ranked, q["doc_ids"][0]))
    lat.sort()
    out = {"impl": "langchain+chroma", "mode": mode, "n": len(rows)}
    for k in rows[0]:
        out[k] = round(sum(x[k] for x in rows) / len(rows), 4)
    out["query_p50_ms"] = round(lat[len(lat) // 2], 3)
    out["query_p99_ms"] = round(lat[int(len(lat) * 0.99)], 3)
    print(json.dumps(out), flush=True)
print(json.dumps({"impl": "langchain+chroma", "load_s": round(t_load, 2), "index_vector_s": round(t_vec, 3),
                  "index_vector_chunks_per_s": round(len(docs) / t_vec, 1), "index_bm25_s": round(t_bm25, 4),
                  "paragraphs": len(docs), "questions": len(qa),
                  "versions": {p: version(p) for p in ("langchain", "langchain-community", "langchain-chroma", "chromadb",
                                                       "langchain-huggingface", "langchain-core", "rank-bm25",
                                                       "sentence-transformers", "torch")}}))
