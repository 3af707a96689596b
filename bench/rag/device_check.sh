#!/usr/bin/env bash
# GPU check of the exact cosine scan (src/rag/scan.c; the lead runs it on the device machine):
#   1. builds with CUDA (bench/device_build.sh; the .deps/ packages as for the other checks);
#   2. ctest -L cuda -R rag_scan: test_rag_scan on "cuda" and "cuda-fp32" against the CPU BLAS
#      scan (same top-k ids, scores within 1e-5);
#   3. bench_rag_scan: the CPU BLAS scan beside the GPU GEMM scan, single queries, on
#      N random 384-d vectors (N 100K and 1M), with the share of equal top-10 lists.
# Usage (on the device): bash bench/rag/device_check.sh     carry: .deps
# Results: $OUT/rag_device.txt (a build kept in $BUILD is reused, REBUILD=1 forces one).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/rag_device}; mkdir -p "$OUT"
BUILD=${BUILD:-build-gpu}
if [ ! -x "$BUILD/bench_rag_scan" ] || [ -n "${REBUILD:-}" ]; then
    bash bench/device_build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { echo "build failed: $OUT/build.log"; tail -20 "$OUT/build.log"; exit 1; }
fi
[ -d /tmp/deps ] && export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
{
    echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
    echo "== ctest -L cuda -R rag_scan"
    (cd "$BUILD" && timeout 300 ctest -L cuda -R rag_scan --output-on-failure 2>&1 | tail -15)
    "$BUILD/tests/test_rag_scan" cuda 2>&1 | tail -8
    echo "== bench_rag_scan (cpu BLAS on $(nproc) threads vs the GPU GEMM; ms per single query)"
    for n in 100000 1000000; do
        OMP_NUM_THREADS=$(nproc) OPENBLAS_NUM_THREADS=$(nproc) timeout 200 "$BUILD/bench_rag_scan" $n 384 100 cuda 2>&1
    done
} 2>&1 | tee "$OUT/rag_device.txt"
