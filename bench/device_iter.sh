#!/usr/bin/env bash
# One device call for a kernel iteration (lmadapt only, no Python baseline): build, flash
# attention check and timings (the flash kernel and cuDNN's fused attention) (also for each -D variant in FLASH_VARIANTS, e.g.
# "-DLMA_FLASH_BWD_MINB=1"; commas join flags of one variant), test_backend_cuda, a profiled run (LMA_CUDA_PROFILE=1: per-op
# and per-GEMM GPU time) of each row of PROF_ROWS (default: ROWS), then the timed rows of
# ROWS (124m 1b 1b-lora by default), 5 steps each. MEMCHECK=1 also runs the cuda_memcheck
# ctest. BUILD_FLAGS (e.g. "-DLMA_FLASH_BWD_MINB=1") go to nvcc for the whole build (fresh build
# dir, through CMake's CUDAFLAGS). Everything under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp}"
CUDAFLAGS="${BUILD_FLAGS:-}" bash bench/device_build.sh build-gpu > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread
fc() { nvcc -std=c++17 -O3 -arch=sm_90 -Isrc -Iinclude -DLMA_HAVE_CUDNN "$@" bench/flash/flash_check.cu src/backend/cuda/flash_fwd.cu \
  src/backend/cuda/flash_bwd.cu src/backend/cuda/cudnn_sdpa.cu -lcudnn -o /tmp/fc; }
echo "== flash check"; fc && timeout 120 /tmp/fc > "$OUT/flash.txt" 2>&1; echo "rc $?"; grep -v "^ok" "$OUT/flash.txt"
for v in ${FLASH_VARIANTS:-}; do
  echo "== flash $v"; fc ${v//,/ } && timeout 120 /tmp/fc 2>&1 | grep -v "^ok"
done
echo "== test_backend_cuda"; timeout 200 build-gpu/tests/test_backend_cuda > "$OUT/test_cuda.txt" 2>&1; echo "rc $?"
grep -E "FAIL|passed" "$OUT/test_cuda.txt" | tail -15
if [ -n "${MEMCHECK:-}" ]; then
  echo "== cuda_memcheck"; (cd build-gpu && timeout 200 ctest -R cuda_memcheck --output-on-failure | grep -E "tests passed|Failed|memcheck")
fi
args() { case "$1" in
  124m) echo "--preset 125m --batch 16 --seq 1024" ;; 1b) echo "--preset 1b --batch 4 --seq 2048" ;;
  1b-lora) echo "--preset 1b --batch 4 --seq 2048 --lora 16" ;;
  7b-lora-ckpt) echo "--preset 7b --batch 1 --seq 2048 --lora 16 --ckpt 1" ;;
  7b-lora) echo "--preset 7b --batch 2 --seq 2048 --lora 16" ;;
  7b-qlora) echo "--preset 7b --batch 1 --seq 2048 --qlora 16 --ckpt 1" ;; esac; }
ROWS="${ROWS:-124m 1b 1b-lora}"
b() { timeout 300 build-gpu/bench_train_step --device cuda --vocab 32000 $(args "$1") "${@:2}"; }
for row in ${PROF_ROWS:-$ROWS}; do LMA_CUDA_PROFILE=1 b "$row" --steps 3 > "$OUT/prof_$row.txt" 2>&1; done
for row in $ROWS; do echo "== $row"; b "$row" --steps 5 2>&1 | grep RESULT; done
