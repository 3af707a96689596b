#!/bin/sh
# Fault injection on the GPU: every device allocation of a short cuda run is made to fail in
# turn (LMA_CUDA_FAIL_ALLOC_AT=N, src/backend/cuda/cuda_backend.cu); each run must either
# succeed or exit 1 with a one-line "out of memory" message -- never crash, never exit 0
# with a failed op (the backend's sync reports it: backend.h). Exit 77 without a GPU.
# Usage: tests/cuda_fault.sh LMADAPT MODEL_DIR [MAX_N]
set -u
lma=$1; model=$2; max=${3:-60}
"$lma" score --device cuda --model "$model" --ids 1,2,3 >/dev/null 2>&1 || { echo "skipped: no GPU"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
i=0
for cmd in "score --ids 1,2,3,4,5,6,7,8" "generate --ids 1,2,3 --max-tokens 4 --temperature 0"; do
  i=$((i + 1)); "$lma" $cmd --device cuda --model "$model" >"$tmp/base$i" 2>/dev/null || { echo "baseline failed: $cmd"; exit 1; }
done
fails=0; failed_ok=0; succeeded=0
n=1
while [ "$n" -le "$max" ]; do
  i=0
  for cmd in "score --ids 1,2,3,4,5,6,7,8" "generate --ids 1,2,3 --max-tokens 4 --temperature 0"; do
    i=$((i + 1))
    LMA_CUDA_FAIL_ALLOC_AT=$n "$lma" $cmd --device cuda --model "$model" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/base$i"; then succeeded=$((succeeded + 1))
    elif [ $rc -eq 1 ] && grep -qi "memory" "$tmp/err" && [ "$(wc -l < "$tmp/err")" -le 2 ]; then failed_ok=$((failed_ok + 1))
    else fails=$((fails + 1)); echo "N=$n '$cmd': rc $rc: $(head -c 300 "$tmp/err")"; fi
  done
  n=$((n + 1))
done
echo "cuda_fault: $((2 * max)) runs: $failed_ok failed cleanly with an out-of-memory message, $succeeded gave the fault-free output (N past the run's allocations, or a fallback), $fails bad"
[ $fails -eq 0 ]
