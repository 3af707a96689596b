#!/usr/bin/env bash
# One call on the device machine (the session's GPU time is scarce): build, check and time the
# flash kernels, the cuda ctest program, the issue's benchmark rows (transformers side by side
# where the baseline is cheap to rerun), then compute-sanitizer memcheck (flash check + a
# training step of the tiny preset). Falls back to the WMMA
# kernels for the benchmark if the mma.sync check fails. Output under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp}"
bash bench/device_build.sh build-gpu > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread
nvcc -std=c++17 -O3 -arch=sm_90 -Isrc -Iinclude bench/flash/flash_check.cu src/backend/cuda/flash_fwd.cu src/backend/cuda/flash_bwd.cu -o /tmp/fc
echo "== flash check (mma.sync)"; timeout 120 /tmp/fc > "$OUT/flash_mma.txt" 2>&1; ok=$?
grep -v "^ok" "$OUT/flash_mma.txt"
[ $ok = 0 ] || { echo "mma.sync kernels FAILED: benchmarks use LMA_CUDA_FLASH=wmma"; export LMA_CUDA_FLASH=wmma; }
echo "== test_backend_cuda"; timeout 200 build-gpu/tests/test_backend_cuda > "$OUT/test_cuda.txt" 2>&1
grep -E "FAIL|passed" "$OUT/test_cuda.txt" | tail -15
echo "== bench"
HF=1 bash bench/gpu_vs_hf/run.sh 124m 1b 1b-lora 2>&1 | grep -v "^\s*$\|UserWarning\|detach\|loss=round" | tee "$OUT/bench1.txt"
HF=0 bash bench/gpu_vs_hf/run.sh 7b-qlora 7b-lora-ckpt 7b-lora 2>&1 | grep -v "^\s*$" | tee "$OUT/bench2.txt"
echo "== compute-sanitizer"
timeout 120 compute-sanitizer --tool memcheck /tmp/fc check 2>&1 | tail -2
timeout 90 compute-sanitizer --tool memcheck build-gpu/bench_train_step --device cuda --preset tiny --vocab 1000 \
  --batch 2 --seq 128 --steps 1 2>&1 | tail -2
