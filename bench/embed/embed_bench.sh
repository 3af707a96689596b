#!/usr/bin/env bash
# Embedding throughput on the CPU, side by side: `lmadapt embed` vs sentence-transformers
# (bench/embed/st_encode.py), the same sentences (bench/embed/make_sentences.py: N
# paragraphs of tests/data/alpaca_small_2k.json), the same threads and batch size.
# Each side runs ROUNDS times, alternating; the best run of each counts. lmadapt's time
# is the whole command (model load, tokenizing, JSON output); sentence-transformers' is
# its encode() call only (after a warm-up), so the ratio favours the baseline. Both wall
# time and CPU time (user + system) are reported: on a shared machine the wall time
# depends on the other load, the CPU time much less.
# Also checks that both sides give the same vectors (worst cosine).
# Usage: bench/embed/embed_bench.sh [N=2000] [THREADS=2] [BATCH=32] [ROUNDS=2]
# Env: LMA (default build/lmadapt), PY (default /tmp/refenv/bin/python), MODEL (short name or folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2000}; THREADS=${2:-2}; BATCH=${3:-32}; ROUNDS=${4:-2}
LMA=${LMA:-build/lmadapt}; PY=${PY:-/tmp/refenv/bin/python}; MODEL=${MODEL:-all-minilm-l6-v2}
MDIR=$MODEL; [ -d "$MDIR" ] || MDIR=${LMA_HOME:-$HOME/.cache/lmadapt}/models/$MODEL
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
$PY bench/embed/make_sentences.py tests/data/alpaca_small_2k.json "$N" >"$tmp/s.jsonl"
n=$(wc -l <"$tmp/s.jsonl")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sentences: $n, threads: $THREADS, batch: $BATCH, rounds: $ROUNDS"
best_l=""; best_s=""; best_lc=""; best_sc=""
for r in $(seq "$ROUNDS"); do
    t0=$(date +%s.%N)
    OMP_NUM_THREADS=$THREADS /usr/bin/time -f "%U %S" -o "$tmp/time" "$LMA" embed --model "$MODEL" --file "$tmp/s.jsonl" \
        --json --threads "$THREADS" --batch "$BATCH" -q >"$tmp/l.jsonl"
    t1=$(date +%s.%N)
    l=$(echo "$t1 - $t0" | bc -l)
    lc=$(awk '{print $1 + $2}' "$tmp/time")
    OMP_NUM_THREADS=$THREADS $PY bench/embed/st_encode.py --model "$MDIR" --file "$tmp/s.jsonl" --threads "$THREADS" \
        --batch "$BATCH" --out "$tmp/st.f32" 2>/dev/null >"$tmp/st.json"
    s=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$tmp/st.json")
    sc=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_seconds"])' "$tmp/st.json")
    printf 'round %d: lmadapt %.2f s wall, %.2f s cpu; sentence-transformers %.2f s wall, %.2f s cpu (load now %s)\n' \
        "$r" "$l" "$lc" "$s" "$sc" "$(cut -d' ' -f1 /proc/loadavg)"
    if [ -z "$best_lc" ] || [ "$(echo "$lc < $best_lc" | bc -l)" = 1 ]; then best_lc=$lc; fi
    if [ -z "$best_sc" ] || [ "$(echo "$sc < $best_sc" | bc -l)" = 1 ]; then best_sc=$sc; fi
    if [ -z "$best_l" ] || [ "$(echo "$l < $best_l" | bc -l)" = 1 ]; then best_l=$l; fi
    if [ -z "$best_s" ] || [ "$(echo "$s < $best_s" | bc -l)" = 1 ]; then best_s=$s; fi
done
$PY - "$tmp/l.jsonl" "$tmp/st.f32" <<'PYEOF'
import json, sys
import numpy as np
a = np.array([json.loads(l)["embedding"] for l in open(sys.argv[1])], dtype=np.float64)
b = np.fromfile(sys.argv[2], "<f4").reshape(a.shape).astype(np.float64)
c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
print(f"same vectors: worst cosine lmadapt vs sentence-transformers {c.min():.8f} over {len(c)}")
PYEOF
printf 'best: lmadapt %.2f s = %.1f sentences/s; sentence-transformers %.2f s = %.1f sentences/s; ratio %.2fx\n' \
    "$best_l" "$(echo "$n / $best_l" | bc -l)" "$best_s" "$(echo "$n / $best_s" | bc -l)" "$(echo "$best_s / $best_l" | bc -l)"
printf 'cpu time (user+sys; robust to other load): lmadapt %.2f s, sentence-transformers %.2f s; ratio %.2fx\n' \
    "$best_lc" "$best_sc" "$(echo "$best_sc / $best_lc" | bc -l)"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
