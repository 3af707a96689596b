#!/usr/bin/env bash
# lmadapt dpo on the GPU machine, one script (the lead runs it; results under $OUT):
#   parity   CUDA (bf16) and cuda-fp32 vs CPU over 20 steps of LoRA and full DPO on a small
#            random model (make_model.py small) and examples/dpo/prefs.jsonl: every step's
#            loss, rewards and log-probs within bf16 tolerance (fp32: tight)
#   7b-lora  Llama-2-7B-shaped LoRA DPO (r 16, all linear), 1 pair x 1024 tokens each side,
#            gradient checkpointing: tokens/s and peak memory beside TRL's DPOTrainer + PEFT
#            (reference forward every step, and with precompute_ref_log_probs)
#   1b-full  TinyLlama-1.1B-shaped full DPO, 1 pair x 1024 each side, beside TRL
# Before (HERE, with internet): bash bench/dpo/fetch_wheels.sh <device python version>;
# carry [".whl"] (and ".deps" as bench/device_build.sh wants).
# Usage (device): bash bench/dpo/device_check.sh [parity] [7b-lora] [1b-full]   (default: all three;
# one call of 10 minutes may not hold all: run the rows in separate calls if needed)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/dpo_out}"; mkdir -p "$OUT"
W=/tmp/dpo_bench; mkdir -p "$W"
bash bench/device_build.sh build-gpu > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
LMA=build-gpu/lmadapt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
trl_ready() {
  [ -d /tmp/trl_site ] && return 0
  [ -d .whl ] || { echo "no .whl/: run bench/dpo/fetch_wheels.sh here and carry .whl"; return 1; }
  pip install -q --no-index --no-deps --find-links .whl --target /tmp/trl_site trl accelerate datasets dill fsspec \
      multiprocess xxhash > "$OUT/pip.log" 2>&1 || { tail -5 "$OUT/pip.log"; return 1; }
  PYTHONPATH=/tmp/trl_site python3 -c "import trl, datasets, pyarrow, pandas; print('trl', trl.__version__)" ||
    { echo "TRL does not import (pyarrow/pandas missing? FULL=1 bash bench/dpo/fetch_wheels.sh)"; return 1; }
}
peak() { # runs "$@" while sampling nvidia-smi; prints its output and the peak MiB (whole GPU)
  local f; f=$(mktemp)
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$f"; sleep 0.2; done) &
  local mp=$!
  "$@"
  local rc=$?
  kill $mp 2>/dev/null; wait $mp 2>/dev/null
  echo "  peak GPU memory (nvidia-smi): $(sort -n "$f" | tail -1) MiB"
  rm -f "$f"
  return $rc
}
steady() { # mean tokens_per_s of metrics.jsonl steps 3.. (the first two warm up)
  python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])][2:]; print('  lmadapt steady tokens/s %.0f over %d steps, last loss %.4f' % (sum(x['tokens_per_s'] for x in m)/len(m), len(m), m[-1]['loss']))" "$1"
}
for row in "${@:-parity 7b-lora 1b-full}"; do
  case "$row" in
    parity)
      echo "== parity: CUDA vs CPU, 20 steps, small random model, examples/dpo/prefs.jsonl" | tee -a "$OUT/parity.txt"
      python3 bench/dpo/make_model.py small "$W/small" > /dev/null
      rc=0
      for method in lora full; do
        lr=1e-4; [ $method = full ] && lr=2e-5
        for dev in cpu cuda cuda-fp32; do
          rm -rf "$W/p_${method}_$dev"
          $LMA dpo --model "$W/small" --data examples/dpo/prefs.jsonl --out "$W/p_${method}_$dev" --method $method \
              --steps 20 --batch 4 --seq 256 --lr $lr --warmup 2 --lora-dropout 0 --save-every 0 --device $dev \
              > "$OUT/p_${method}_$dev.log" 2>&1 || { echo "$method $dev failed"; tail -5 "$OUT/p_${method}_$dev.log"; rc=1; }
          cp "$W/p_${method}_$dev/metrics.jsonl" "$OUT/p_${method}_$dev.metrics.jsonl" 2>/dev/null
        done
        python3 bench/dpo/compare.py "$W/p_${method}_cpu/metrics.jsonl" "$W/p_${method}_cuda/metrics.jsonl" 0.02 0.02 \
            "$method cuda (bf16) vs cpu" | tee -a "$OUT/parity.txt" || rc=1
        python3 bench/dpo/compare.py "$W/p_${method}_cpu/metrics.jsonl" "$W/p_${method}_cuda-fp32/metrics.jsonl" 1e-4 1e-4 \
            "$method cuda-fp32 vs cpu" | tee -a "$OUT/parity.txt" || rc=1
      done
      echo "parity: $([ $rc = 0 ] && echo PASS || echo FAIL)" | tee -a "$OUT/parity.txt" ;;
    7b-lora|1b-full)
      if [ $row = 7b-lora ]; then shape=llama2_7b; method=lora; lr=5e-6; ck=--grad-ckpt; tck=ckpt; else
        shape=tinyllama1b; method=full; lr=1e-6; ck=; tck=; fi
      echo "== $row: $shape $method DPO, 1 pair x 1024 tokens each side ${ck:+(gradient checkpointing)}" | tee -a "$OUT/$row.txt"
      [ -f "$W/$shape/config.json" ] || python3 bench/dpo/make_model.py $shape "$W/$shape" | tee -a "$OUT/$row.txt"
      [ -f "$W/pairs1024.jsonl" ] || python3 bench/dpo/make_pairs.py 1024 64 "$W/pairs1024.jsonl"
      rm -rf "$W/run_$row"
      peak $LMA dpo --model "$W/$shape" --data "$W/pairs1024.jsonl" --out "$W/run_$row" --method $method $ck \
          --steps 12 --batch 1 --seq 1024 --lr $lr --warmup 0 --lora-dropout 0 --save-every 0 --device cuda \
          > "$OUT/$row.lmadapt.log" 2>&1; tail -4 "$OUT/$row.lmadapt.log" | tee -a "$OUT/$row.txt"
      grep "reference log-probs" "$OUT/$row.lmadapt.log" | tee -a "$OUT/$row.txt"
      steady "$W/run_$row/metrics.jsonl" | tee -a "$OUT/$row.txt"
      cp "$W/run_$row/metrics.jsonl" "$OUT/$row.metrics.jsonl"
      if trl_ready; then
        for pre in "" precompute; do
          PYTHONPATH=/tmp/trl_site peak timeout 900 python3 bench/dpo/trl_dpo_baseline.py "$W/$shape" "$W/pairs1024.jsonl" \
              $method 12 1024 $tck $pre 2> "$OUT/$row.trl$pre.err" | tee -a "$OUT/$row.txt"
        done
      fi ;;
    *) echo "unknown row $row" ;;
  esac
done
