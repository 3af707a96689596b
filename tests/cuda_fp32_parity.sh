#!/bin/sh
# cuda-fp32 is fp32 (TF32 off, as PyTorch's default): per-token log-probs of every tiny model of
# tests/ref/models on --device cuda-fp32 within 1e-4 (relative, floor 1) of the CPU backend's.
# Exit 77 without a GPU. Usage: tests/cuda_fp32_parity.sh LMADAPT MODELS_DIR
set -u
lma=$1; dir=$2
"$lma" score --device cuda-fp32 --model "$dir/llama_gqa" --ids 1,2,3 >/dev/null 2>&1 || { echo "skipped: no GPU"; exit 77; }
ids=5,17,200,3,99,42,7,128,64,250,1,33,77,12,190,8,45,230,6,101
bad=0
for m in "$dir"/*/; do
  [ -f "$m/config.json" ] || continue
  a=$("$lma" score --device cpu --model "$m" --ids $ids --json) || { echo "$m: cpu failed"; bad=1; continue; }
  b=$("$lma" score --device cuda-fp32 --model "$m" --ids $ids --json) || { echo "$m: cuda-fp32 failed"; bad=1; continue; }
  r=$(printf '%s\n%s\n' "$a" "$b" | python3 -c '
import json, sys
a, b = (json.loads(l)["logprobs"] for l in sys.stdin.read().splitlines()[:2])
print(max(abs(x - y) / max(1.0, abs(x)) for x, y in zip(a, b)))')
  echo "$(basename "$m"): cuda-fp32 vs cpu, largest relative log-prob difference $r"
  python3 -c "import sys; sys.exit(0 if $r <= 1e-4 else 1)" || bad=1
done
exit $bad
