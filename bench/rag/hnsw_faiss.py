"""faiss-cpu HNSW on the vectors bench_rag_hnsw wrote (same base, queries, exact truth).
Usage: hnsw_faiss.py DIR N DIM [M EFC EF1,EF2,... | auto:R [THREADS]]   (inner product = cosine: unit vectors)
One JSON line per ef: build seconds, recall@10, single-query latency p50/p99 (1 thread).
auto:R tunes ef as bench_rag_hnsw does: doubling from 16 until recall@10 >= R, then
bisecting to the smallest such ef (within 5%); the chosen line has "chosen": true.
THREADS > 1 (default 1), as bench_rag_hnsw: the build and each ef's recall (one batch search)
on that many threads; latency one query at a time on one thread, at the chosen ef only under
auto:R (every ef of a list)."""
import json, sys, time
import numpy as np
import faiss

d_, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
M = int(sys.argv[4]) if len(sys.argv) > 4 else 16
efc = int(sys.argv[5]) if len(sys.argv) > 5 else 100
efs_arg = sys.argv[6] if len(sys.argv) > 6 else "16,32,64,128,256"
threads = int(sys.argv[7]) if len(sys.argv) > 7 else 1
base = np.fromfile(f"{d_}/base.f32", dtype=np.float32).reshape(n, dim)
q = np.fromfile(f"{d_}/queries.f32", dtype=np.float32).reshape(-1, dim)
truth = np.fromfile(f"{d_}/truth.i64", dtype=np.int64).reshape(len(q), 10)
faiss.omp_set_num_threads(threads)  # as many threads as lmadapt's build
index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
index.hnsw.efConstruction = efc
t0 = time.perf_counter()
index.add(base)
build = time.perf_counter() - t0
print(f"# faiss build: {build:.1f} s ({threads} threads)", file=sys.stderr, flush=True)


def run(ef, chosen=False):
    index.hnsw.efSearch = max(ef, 10)
    timed = threads <= 1 or chosen or not efs_arg.startswith("auto:")
    lat, hit = [], 0
    if timed:  # one query at a time, one thread
        faiss.omp_set_num_threads(1)
        for i in range(len(q)):
            a = time.perf_counter()
            _, ids = index.search(q[i:i + 1], 10)
            lat.append((time.perf_counter() - a) * 1e3)
            hit += len(set(ids[0].tolist()) & set(truth[i].tolist()))
        faiss.omp_set_num_threads(threads)
        lat.sort()
    else:
        _, ids = index.search(q, 10)
        hit = sum(len(set(ids[i].tolist()) & set(truth[i].tolist())) for i in range(len(q)))
    rec = hit / (10 * len(q))
    line = {"impl": "faiss", "n": n, "dim": dim, "M": M, "efc": efc, "ef": ef, "threads": threads,
            "build_s": round(build, 2), "recall10": round(rec, 4)}
    if timed:
        line.update({"p50_ms": round(lat[len(lat) // 2], 4), "p99_ms": round(lat[int(len(lat) * 0.99)], 4)})
    if chosen:
        line["chosen"] = True
    print(json.dumps(line), flush=True)
    return rec


if efs_arg.startswith("auto:"):
    target = float(efs_arg[5:])
    lo, hi = 0, 16
    while hi < (1 << 20) and run(hi) < target:
        lo, hi = hi, hi * 2
    while lo and hi - lo > hi // 20:
        mid = lo + (hi - lo) // 2
        if run(mid) >= target:
            hi = mid
        else:
            lo = mid
    run(hi, True)
else:
    for ef in (int(x) for x in efs_arg.split(",")):
        run(ef)
