#!/usr/bin/env bash
# lmadapt vs transformers (+ PEFT) training throughput and peak GPU memory, in one run
# on the device machine. Builds lmadapt with CUDA (bench/device_build.sh), then for each
# row runs build-gpu/bench_train_step --device cuda and hf_train_baseline.py on the same
# config. Usage: bash bench/gpu_vs_hf/run.sh [ROW...]   rows: 124m 1b 1b-lora 7b-lora-ckpt 7b-lora 7b-qlora
# (the issue's rows; HF=0 skips the Python baselines, COMPILE=1 adds torch.compile ones,
# DEVICE=cuda-fp32 runs lmadapt's fp32 table). Prints one line per side per row.
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
lma() { peak timeout 300 build-gpu/bench_train_step --device "${DEVICE:-cuda}" --vocab 32000 "$@"; }
hf() { # NAME MODE SEQ BATCH STEPS [ckpt]: eager, and compiled when COMPILE=1
  [ "${HF:-1}" = 0 ] && return
  peak python3 bench/gpu_vs_hf/hf_train_baseline.py "$@"
  [ "${COMPILE:-0}" = 1 ] && peak timeout 600 python3 bench/gpu_vs_hf/hf_train_baseline.py "$@" compile
}
for row in "${@:-124m}"; do
  case "$row" in
    124m)
      echo "== row 124m: Llama 124M full, batch 16 x 1024"
      lma --preset 125m --batch 16 --seq 1024 --steps 5
      hf llama124m full 1024 16 10 ;;
    1b)
      echo "== row 1b: TinyLlama-1.1B config full, batch 4 x 2048"
      lma --preset 1b --batch 4 --seq 2048 --steps 5
      hf tinyllama1b full 2048 4 5 ;;
    1b-lora)
      echo "== row 1b-lora: TinyLlama-1.1B config LoRA r=16 all linear, batch 4 x 2048"
      lma --preset 1b --batch 4 --seq 2048 --steps 5 --lora 16
      hf tinyllama1b lora 2048 4 5 ;;
    7b-lora-ckpt)
      echo "== row 7b-lora-ckpt: Llama-2-7B config LoRA r=16 all linear, batch 1 x 2048, gradient checkpointing"
      lma --preset 7b --batch 1 --seq 2048 --steps 3 --lora 16 --ckpt 1
      hf llama2_7b lora 2048 1 3 ckpt ;;
    7b-lora)
      echo "== row 7b-lora: Llama-2-7B config LoRA r=16 all linear, batch 2 x 2048, no checkpointing"
      lma --preset 7b --batch 2 --seq 2048 --steps 3 --lora 16
      hf llama2_7b lora 2048 2 3 ;;
    7b-qlora)
      echo "== row 7b-qlora: Llama-2-7B config QLoRA r=16 all linear, batch 1 x 2048, gradient checkpointing"
      echo "   (no Python QLoRA baseline on the device machine: compare with the LoRA rows)"
      lma --preset 7b --batch 1 --seq 2048 --steps 3 --qlora 16 --ckpt 1 ;;
    *) echo "unknown row $row" ;;
  esac
done
