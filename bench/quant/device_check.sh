#!/usr/bin/env bash
# The AVX-512 VNNI kernels of src/quant/qdot.c cannot run on the 2-core development machine
# (AVX2 only). On a host whose CPU has AVX-512 F/BW/VL + VNNI (e.g. the GPU machines' Xeons or
# EPYC Genoa), this builds and runs tests/test_quant_matmul, which checks every kernel the CPU
# supports (scalar, avx2, avx512) against the scalar oracle and the dequantized fp32 product;
# a kernel the CPU lacks is reported "not supported by this CPU, not tested here".
# Usage (repository root): bench/quant/device_check.sh     writes $OUT/quant_check.txt (OUT default /tmp)
set -euo pipefail
out=${OUT:-/tmp}
mkdir -p "$out"
{
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "flags: $(grep -o -w 'avx2\|avx512f\|avx512bw\|avx512vl\|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  cmake -S . -B build-quant -DCMAKE_BUILD_TYPE=Release -DLMA_CUDA=OFF >/dev/null
  cmake --build build-quant -j"$(nproc)" --target test_quant_matmul >/dev/null
  OMP_NUM_THREADS=4 ./build-quant/tests/test_quant_matmul 2>&1 | grep -v '^ *$' | tail -15
} 2>&1 | tee "$out/quant_check.txt"
