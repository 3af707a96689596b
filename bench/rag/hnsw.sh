#!/usr/bin/env bash
# HNSW: lmadapt (src/rag/hnsw.c) vs faiss-cpu IndexHNSWFlat on the same random unit vectors,
# one thread each, side by side. Usage: bench/rag/hnsw.sh [N] [DIM] [NQ]   (default 100000 384 1000)
# Needs build/bench_rag_hnsw (cmake --build build --target bench_rag_hnsw) and a Python with
# faiss-cpu and numpy (PY, default /tmp/refenv/bin/python). EFS=auto:0.95 tunes ef on each side to
# the smallest value reaching recall@10 0.95 (the comparison at equal recall).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000} DIM=${2:-384} NQ=${3:-1000} PY=${PY:-/tmp/refenv/bin/python}
M=${M:-16} EFC=${EFC:-100} EFS=${EFS:-16,32,64,128,256}
DIR=$(mktemp -d /tmp/lma_hnsw_bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) N=$N DIM=$DIM NQ=$NQ M=$M EFC=$EFC load $(cut -d' ' -f1 /proc/loadavg)"
build/bench_rag_hnsw "$N" "$DIM" "$NQ" "$DIR" "$M" "$EFC" "$EFS"
"$PY" bench/rag/hnsw_faiss.py "$DIR" "$N" "$DIM" "$M" "$EFC" "$EFS"
