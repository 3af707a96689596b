#!/usr/bin/env bash
# The CPU check of the whole pipeline at small scale: device_run.sh with a tiny fp32 Llama
# (make_model.py --tiny, the same tokenizer) on 5 subjects of tests/data/mmlu (10 val rows
# each), lm-eval on the CPU in float32 and lmadapt --device cpu; the letter each chose is
# compared item by item (lmadapt's JSON "pred"). Per-subject counts must be identical in fp32.
#   PYTHON=/tmp/mmlu-env/bin/python bash bench/mmlu/cpu_check.sh   (a Python with lm_eval, torch)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mmlu-cpu-out}
PY=${PYTHON:-python3}
LMADAPT=${LMADAPT:-build/lmadapt}
SUBJ=${SUBJECTS:-abstract_algebra college_physics formal_logic high_school_european_history world_religions}
D=$(mktemp -d /tmp/mmlu5-XXXX)
mkdir -p "$D/dev" "$D/val"
for s in $SUBJ; do cp tests/data/mmlu/dev/${s}_dev.csv "$D/dev/"; cp tests/data/mmlu/val/${s}_val.csv "$D/val/"; done
rm -rf "$OUT"
OUT=$OUT DATA=$D LMADAPT=$LMADAPT PYTHON=$PY TORCH_DEVICE=cpu LMA_DEVICE=cpu LMEVAL_DTYPE=float32 FP32=0 TINY=1 \
  BATCH=${BATCH:-8} MODEL=${MODEL:-/tmp/tl-mmlu-tiny} bash bench/mmlu/device_run.sh
$PY bench/mmlu/compare.py --lmadapt "$OUT/lmadapt_bf16.json" --lmeval "$OUT/lm_eval_bf16.json" \
  --lmadapt-wall "$(cat "$OUT/lmadapt_bf16.wall")" \
  --lmeval-wall "$(cat "$OUT/lm_eval_bf16.wall")" | tee "$OUT/compare_items.txt"
$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
A = {s["name"]: s for s in json.load(open(out + "/lmadapt_bf16.json"))["results"][0]["subjects"]}
B = {s["name"]: s for s in json.load(open(out + "/lm_eval_bf16.json"))["subjects"]}
print("%-32s %10s %10s" % ("subject", "lmadapt", "lm-eval"))
for s in sorted(B):
    print("%-32s %4d/%-5d %4d/%-5d %s" % (s, A[s]["correct"], A[s]["n"], B[s]["correct"], B[s]["n"],
                                          "" if A[s]["correct"] == B[s]["correct"] else "DIFFERS"))
PYEOF
rm -rf "$D"
