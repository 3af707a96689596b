#!/usr/bin/env bash
# `lmadapt mem` against measured peaks on the GPU rows of bench/gpu_vs_hf (issue 18):
# for each row, lmadapt's counted device allocations (bench_train_step's peak_alloc_gb, the
# allocator high-water mark, lma_cuda_memory) and transformers + PEFT's
# torch.cuda.max_memory_allocated (hf_train_baseline.py), beside `lmadapt mem`'s
# predictions in both styles, with the error per row. One call on the device machine:
#   bash bench/mem/device_check.sh [ROW...]     rows: 124m 1b 1b-lora 7b-lora-ckpt 7b-lora 7b-qlora
# (HF=0 skips the Python baselines). Writes $OUT/mem_rows.md (the table for bench/RESULTS.md)
# and $OUT/mem_rows.log (every command's output).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp}"
bash bench/device_build.sh build-gpu > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
LOG="$OUT/mem_rows.log"; : > "$LOG"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
num() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" | head -1; }
err() { awk -v p="$1" -v m="$2" 'BEGIN { if (m == "" || m == 0) print "-"; else printf "%+.1f%%", 100 * (p / m - 1) }'; }
{
  echo "GPU: $GPU; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); GiB"
  echo
  echo "| row | lmadapt measured | mem predicted | error | transformers measured | mem --style hf | error |"
  echo "|---|---|---|---|---|---|---|"
} > "$OUT/mem_rows.md"
for row in "${@:-124m 1b 1b-lora 7b-lora-ckpt 7b-lora 7b-qlora}"; do
  for r in $row; do
    case "$r" in
      124m)         P=125m; M=full;  B=16; T=1024; CK=0; HFN=llama124m;   HFM=full ;;
      1b)           P=1b;   M=full;  B=4;  T=2048; CK=0; HFN=tinyllama1b; HFM=full ;;
      1b-lora)      P=1b;   M=lora;  B=4;  T=2048; CK=0; HFN=tinyllama1b; HFM=lora ;;
      7b-lora-ckpt) P=7b;   M=lora;  B=1;  T=2048; CK=1; HFN=llama2_7b;   HFM=lora ;;
      7b-lora)      P=7b;   M=lora;  B=2;  T=2048; CK=0; HFN=llama2_7b;   HFM=lora ;;
      7b-qlora)     P=7b;   M=qlora; B=1;  T=2048; CK=1; HFN=;            HFM= ;;
      *) echo "unknown row $r"; continue ;;
    esac
    extra=(); [ "$M" = lora ] && extra=(--lora 16); [ "$M" = qlora ] && extra=(--qlora 16)
    ck=(); [ "$CK" = 1 ] && ck=(--grad-ckpt)
    echo "== $r" >> "$LOG"
    lm=$(timeout 300 build-gpu/bench_train_step --device cuda --preset "$P" --vocab 32000 --batch "$B" --seq "$T" \
         --steps 3 --ckpt "$CK" "${extra[@]}" 2>&1 | tee -a "$LOG" | sed -n 's/.*peak_alloc_gb \([0-9.]*\).*/\1/p')
    pl=$(build-gpu/lmadapt mem --preset "$P" --vocab 32000 --method "$M" --batch "$B" --seq "$T" "${ck[@]}" \
         --lora-rank 16 --device cuda --json | tee -a "$LOG" | num peak_gib)
    ph=$(build-gpu/lmadapt mem --preset "$P" --vocab 32000 --method "$M" --batch "$B" --seq "$T" "${ck[@]}" \
         --lora-rank 16 --device cuda --style hf --json | tee -a "$LOG" | num peak_gib)
    hm=
    if [ -n "$HFN" ] && [ "${HF:-1}" != 0 ]; then
      hfck=(); [ "$CK" = 1 ] && hfck=(ckpt)
      hm=$(timeout 600 python3 bench/gpu_vs_hf/hf_train_baseline.py "$HFN" "$HFM" "$T" "$B" 3 "${hfck[@]}" 2>&1 \
           | tee -a "$LOG" | num peak_gb)
    fi
    echo "| $r | ${lm:--} | $pl | $(err "$pl" "$lm") | ${hm:--} | $ph | $(err "$ph" "$hm") |" >> "$OUT/mem_rows.md"
  done
done
cat "$OUT/mem_rows.md"
