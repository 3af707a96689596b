#!/usr/bin/env bash
# bf16 compute on the CPU (issue #22 item 5): LoRA training of SmolLM2-135M-Instruct on THREADS
# cores, batch 4 x 256, side by side in one run:
#   lmadapt sft --device cpu        (fp32 GEMMs, OpenBLAS)
#   lmadapt sft --device cpu-bf16   (bf16 products, fp32 sums: src/backend/cpu/cpu_gemm_bf16.c)
#   transformers + PEFT, fp32 and under torch.autocast("cpu", bfloat16)   (peft_step.py)
# lmadapt trains on tests/data/alpaca_first200.json with --all-tokens (the loss on every token,
# so its loss head does the same work as transformers' on random tokens with labels = inputs);
# the sft default (loss on the answers only) is run too, for what a user gets. The model is the
# GGUF of scripts/fetch-models.sh (dequantized to fp32 by both). Tokens/s: lmadapt's median of
# metrics.jsonl from step 3 on; transformers' median after two untimed steps.
#
# Usage: bench/cpu_bf16/run.sh [STEPS]     env: THREADS (2), BUILD (build), PYTHON (python3 with
#        torch, transformers, peft, gguf), MODEL (the .gguf), COMPILE=1 adds torch.compile rows
set -uo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-8}; THREADS=${THREADS:-2}; BUILD=${BUILD:-build}; PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-$HOME/.cache/lmadapt/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
W=$(mktemp -d /tmp/lma_cpu_bf16_XXXXXX)
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1); flags: $(grep -o 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "threads $THREADS; load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null); $(date -u +%FT%TZ)"

lma() { # device, extra flags...
    local d=$1; shift
    "$BUILD/lmadapt" sft --model "$MODEL" --data tests/data/alpaca_first200.json --method lora --lora-r 16 \
        --lora-alpha 32 --lora-dropout 0.05 --lr 2e-4 --out "$W/$d" --overwrite --steps "$STEPS" --batch 4 --seq 256 \
        --threads "$THREADS" --device "$d" --eval-every 0 --save-every 0 "$@" >"$W/$d.log" 2>&1 || { echo "lmadapt $d failed:"; tail -3 "$W/$d.log"; return; }
    "$PYTHON" - "$W/$d/metrics.jsonl" "$d $*" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l]
print("RESULT lmadapt %-26s tok_s %.1f  losses %s" % (sys.argv[2], statistics.median(r["tokens_per_s"] for r in rows[2:]),
      [round(r["loss"], 4) for r in rows]))
PY
}
lma cpu --all-tokens
lma cpu-bf16 --all-tokens
lma cpu
lma cpu-bf16
for dt in fp32 bf16; do
    "$PYTHON" bench/cpu_bf16/peft_step.py --gguf "$MODEL" --threads "$THREADS" --steps "$STEPS" --dtype $dt 2>/dev/null | grep RESULT
    [ "${COMPILE:-0}" = 1 ] && "$PYTHON" bench/cpu_bf16/peft_step.py --gguf "$MODEL" --threads "$THREADS" --steps "$STEPS" \
        --dtype $dt --compile 2>/dev/null | grep RESULT
done
rm -rf "$W"
