#!/bin/sh
# ctest cuda_memcheck (label cuda): compute-sanitizer memcheck of training steps of the tiny
# preset on both CUDA tables: full, LoRA, QLoRA with activation checkpointing. Exit 77
# (skipped) without compute-sanitizer or a GPU. Usage: cuda_memcheck.sh BENCH_TRAIN_STEP
bench="$1"
command -v compute-sanitizer >/dev/null 2>&1 || { echo "compute-sanitizer not found: skipped"; exit 77; }
"$bench" --device cuda --preset tiny --vocab 1000 --batch 2 --seq 64 --steps 1 >/dev/null 2>&1 ||
  { echo "no CUDA device (or no cuda plugin): skipped"; exit 77; }
for dev in cuda cuda-fp32; do
  for mode in "" "--lora 4" "--qlora 4 --ckpt 1"; do
    echo "== memcheck: --device $dev $mode"
    # shellcheck disable=SC2086
    compute-sanitizer --tool memcheck --error-exitcode 1 "$bench" --device "$dev" --preset tiny --vocab 1000 \
      --batch 2 --seq 128 --steps 1 $mode || exit 1
  done
done
echo "memcheck clean"
