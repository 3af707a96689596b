#!/usr/bin/env python3
"""Baseline for `lmadapt data dedup`: the same algorithm with datasketch 2.0
(MinHash 112 permutations over word 5-gram shingles of the harness-normalized text,
MinHashLSH with 14 bands x 8 rows, exact shingle Jaccard >= 0.8 on candidates,
exact duplicates by normalized-text hash, keep first). Single process.
Usage: data_dedup_datasketch.py FILE.jsonl|FILE.json [--limit N]"""
import json, string, sys, time
from datasketch import MinHash, MinHashLSH

TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)

def records(path):
    with open(path, encoding="utf-8") as f:
        head = f.read(1)
        f.seek(0)
        if head == "[":
            yield from json.load(f)
        else:
            for line in f:
                if line.strip():
                    yield json.loads(line)

def text_of(r):
    if "messages" in r:
        return "\n".join(m.get("content") or "" for m in r["messages"])
    if "instruction" in r:
        u = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
        return u + "\n" + r.get("output", "")
    if "question" in r:
        return r["question"] + "\n" + r["answer"]
    return json.dumps(r)

def main():
    path = sys.argv[1]
    limit = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=112, params=(14, 8))
    exact, shingles = {}, {}
    n = kept = ex = near = 0
    for r in records(path):
        if limit is not None and n >= limit:
            break
        n += 1
        words = text_of(r).translate(TABLE).split()
        key = hash(" ".join(words))
        if key in exact:
            ex += 1
            continue
        k = 5
        sh = {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))} if words else set()
        m = MinHash(num_perm=112, seed=1)
        m.update_batch([s.encode() for s in sh])
        dup = False
        for c in lsh.query(m):
            o = shingles[c]
            if len(sh & o) / max(1, len(sh | o)) >= 0.8:
                dup = True
                break
        if dup:
            near += 1
            continue
        exact[key] = n
        shingles[n] = sh
        lsh.insert(n, m)
        kept += 1
    dt = time.perf_counter() - t0
    print(f"datasketch: {n} examples, kept {kept}, exact {ex}, near {near}, {dt:.2f} s, {n / dt:.0f} examples/s")

if __name__ == "__main__":
    main()
