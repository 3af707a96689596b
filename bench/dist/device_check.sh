#!/usr/bin/env bash
# Distributed training on the GPU machine (issue 23; the lead runs it; results under $OUT):
#   w1     one GPU: world size 1 through the NCCL path (RANK=0 WORLD_SIZE=1, the NCCL comm of
#          one rank, ZeRO 0 and 2) against the plain path, 20 steps of cpt on a 15M model,
#          cuda-fp32 and cuda (bf16): the losses must be the same text (bitwise); a second
#          plain run is the control (a GPU run that is not deterministic shows it there)
#   scale  N GPUs (all visible ones, N >= 2): lmadapt launch -n N --device cuda for ZeRO 0,
#          1, 2 against 1 GPU with the same global batch: every loss within 1e-5 relative
#          (cuda-fp32) and tokens/s of N GPUs over 1 (the scaling)
# Usage (device): bash bench/dist/device_check.sh [w1] [scale]   (default: both; scale
# skips with a note on a one-GPU machine)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/dist_out}"; mkdir -p "$OUT"
W=/tmp/dist_bench; rm -rf "$W"; mkdir -p "$W"
bash bench/device_build.sh build-gpu > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
grep -q "distributed (NCCL): /" "$OUT/build.log" || grep -rq "LMA_HAVE_NCCL" build-gpu/CMakeFiles/lmadapt_cuda.dir/flags.make ||
    { echo "the CUDA plugin was built without NCCL (no nccl.h / libnccl): nothing to check"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
export LMA_QUIET=1 NCCL_NVLS_ENABLE=0
LMA=$PWD/build-gpu/lmadapt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
NG=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
losses() { sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }
# cmp_runs A B TOL WHAT: TOL 0 = the same text
cmp_runs() {
    paste -d' ' <(losses "$1") <(losses "$2") | awk -v tol="$3" -v what="$4" '
        { n++; d = $2 - $4; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (m < 1) m = 1;
          if ((tol == 0 && $2 != $4) || (tol > 0 && d > tol * m)) { bad++; if (!first) first = "step " $1 ": " $2 " vs " $4 }
          if (d > worst) worst = d }
        END { printf "%s %s: %d steps, max abs diff %.3g%s\n", bad || n < 20 ? "FAIL" : "ok", what, n, worst,
              first ? " (first: " first ")" : "" }'
}
steady() { # mean tokens_per_s of steps 3.. (the first two warm up)
    awk -F'"tokens_per_s": ' 'NR > 2 { split($2, a, ","); s += a[1]; n++ } END { printf "%.0f", n ? s / n : 0 }' "$1/metrics.jsonl"
}
head -c 400000 tests/data/tinyshakespeare.txt > "$W/text.txt"
$LMA pretrain --data "$W/text.txt" --out "$W/base" --preset 15m --vocab-size 2048 --batch 8 --seq 256 --steps 2 \
    --device cuda-fp32 > "$OUT/base.log" 2>&1 || { echo "setup failed"; tail -5 "$OUT/base.log"; exit 1; }
A="cpt --model $W/base/final --data $W/text.txt --steps 20 --seq 256 --lr 3e-4 --warmup 2 --save-every 10 --eval-every 10"
rc=0
for row in "${@:-w1 scale}"; do
  case "$row" in
    w1)
      echo "== w1: world size 1 through NCCL vs the plain path, 20 steps, batch 8 x 256" | tee -a "$OUT/w1.txt"
      for dev in cuda-fp32 cuda; do
        $LMA $A --batch 8 --device $dev --out "$W/plain_$dev" > "$OUT/plain_$dev.log" 2>&1 || rc=1
        $LMA $A --batch 8 --device $dev --out "$W/plain2_$dev" > "$OUT/plain2_$dev.log" 2>&1 || rc=1
        for z in 0 2; do
          RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 \
            $LMA $A --batch 8 --device $dev --zero $z --out "$W/nccl1_${dev}_z$z" > "$OUT/nccl1_${dev}_z$z.log" 2>&1 ||
            { echo "nccl world 1 $dev zero $z failed"; tail -5 "$OUT/nccl1_${dev}_z$z.log"; rc=1; }
          grep -h "distributed:" "$OUT/nccl1_${dev}_z$z.log" | tee -a "$OUT/w1.txt"
          cmp_runs "$W/plain_$dev" "$W/nccl1_${dev}_z$z" 0 "$dev: NCCL world 1, ZeRO $z vs plain (bitwise)" | tee -a "$OUT/w1.txt"
        done
        cmp_runs "$W/plain_$dev" "$W/plain2_$dev" 0 "$dev: plain vs plain (control)" | tee -a "$OUT/w1.txt"
        cp "$W/plain_$dev/metrics.jsonl" "$OUT/plain_$dev.metrics.jsonl"
      done ;;
    scale)
      if [ "$NG" -lt 2 ]; then echo "scale: $NG GPU here: needs 2 or more (nvidia-h100-x2 / -x4 / -x8)" | tee -a "$OUT/scale.txt"; continue; fi
      GB=$((8 * NG))
      echo "== scale: $NG GPUs vs 1, global batch $GB x 256, 20 steps, cuda-fp32 (parity) and cuda (speed)" | tee -a "$OUT/scale.txt"
      for dev in cuda-fp32 cuda; do
        CUDA_VISIBLE_DEVICES=0 $LMA $A --batch $GB --device $dev --out "$W/g1_$dev" > "$OUT/g1_$dev.log" 2>&1 || rc=1
        t1=$(steady "$W/g1_$dev")
        for z in 0 1 2; do
          $LMA launch -n "$NG" --device cuda -- lmadapt $A --batch $GB --device $dev --zero $z --out "$W/g${NG}_${dev}_z$z" \
              > "$OUT/g${NG}_${dev}_z$z.log" 2>&1 || { echo "$NG GPUs $dev zero $z failed"; tail -8 "$OUT/g${NG}_${dev}_z$z.log"; rc=1; }
          tol=1e-5; [ $dev = cuda ] && tol=2e-2
          cmp_runs "$W/g1_$dev" "$W/g${NG}_${dev}_z$z" $tol "$dev: $NG GPUs ZeRO $z vs 1 GPU (tol $tol)" | tee -a "$OUT/scale.txt"
          tn=$(steady "$W/g${NG}_${dev}_z$z")
          echo "  $dev ZeRO $z: tokens/s 1 GPU $t1, $NG GPUs $tn (x$(awk -v a="$tn" -v b="$t1" 'BEGIN { printf "%.2f", b ? a / b : 0 }'))" | tee -a "$OUT/scale.txt"
          cp "$W/g${NG}_${dev}_z$z/metrics.jsonl" "$OUT/g${NG}_${dev}_z$z.metrics.jsonl" 2>/dev/null
        done
      done ;;
  esac
done
grep -h "^FAIL" "$OUT"/*.txt && rc=1
exit $rc
