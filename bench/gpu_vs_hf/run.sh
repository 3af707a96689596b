#!/usr/bin/env bash
# lmadapt vs transformers (+ PEFT) training throughput and peak GPU memory, in one run
# on the device machine. Builds lmadapt with CUDA (bench/device_build.sh), then for each
# row runs build-gpu/bench_train_step --device cuda and hf_train_baseline.py on the same
# config. Usage: bash bench/gpu_vs_hf/run.sh [ROW...]   (rows: 124m; more as lmadapt's
# CUDA path grows: tinyllama1b, lora rows). Prints one line per side per row.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash bench/device_build.sh build-gpu > "${OUT:-/tmp}/build.log" 2>&1 || { tail -30 "${OUT:-/tmp}/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
peak() { # runs "$@" while sampling nvidia-smi; prints the command's output and the peak MiB
  local f; f=$(mktemp)
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$f"; sleep 0.2; done) &
  local mp=$!
  "$@"
  kill $mp 2>/dev/null; wait $mp 2>/dev/null
  echo "  peak GPU memory (nvidia-smi, whole process): $(sort -n "$f" | tail -1) MiB"
  rm -f "$f"
}
for row in "${@:-124m}"; do
  case "$row" in
    124m)
      echo "== row 124m: Llama 124M full, batch 16 x 1024"
      peak build-gpu/bench_train_step --device cuda --preset 125m --vocab 32000 --batch 16 --seq 1024 --steps 5
      peak python3 bench/gpu_vs_hf/hf_train_baseline.py llama124m full 1024 16 10
      ;;
    *) echo "unknown row $row" ;;
  esac
done
