#!/usr/bin/env bash
# MMLU 5-shot on the GPU machine: lmadapt eval beside lm-evaluation-harness 0.4.13 (HF backend)
# on a TinyLlama-1.1B-shaped random model, same prompts; timings and scores under $OUT.
#
#   bash bench/mmlu/device_run.sh            (from the repo root; lmadapt built by
#                                              bash bench/device_build.sh build-gpu)
# Environment (all optional):
#   LMADAPT  lmadapt binary (default build-gpu/lmadapt)
#   DATA     MMLU folder with dev/ and val/ (default .mmlu/data when present, else tests/data/mmlu)
#   WHEELS   wheel folder (default .whl, else .mmlu/whl)
#   OUT      output folder (default ./out)
#   BATCH    lm-eval batch size (default auto)
#   LIMIT    items per subject for both tools (default 0 = all)
#   FP32     1 (default): also run both in fp32 (lmadapt cuda-fp32, lm-eval float32) after the bf16 pair
#   MODEL    model folder to write/use (default /tmp/tl-mmlu)
#   PYTHON   python (default python3)
#   REUSE_MODEL  1: keep an existing $MODEL instead of writing it anew
# For the CPU check (bench/mmlu/README.md): TORCH_DEVICE=cpu LMA_DEVICE=cpu LMEVAL_DTYPE=float32
#   FP32=0 TINY=1 (a tiny fp32 model; the bf16 pair then runs in fp32 on the CPU).
# Every stage's status goes to $OUT/stages.txt; a failed stage does not stop the later ones.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-./out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LMADAPT=${LMADAPT:-build-gpu/lmadapt}
if [ -z "${DATA:-}" ]; then
  if [ -d .mmlu/data/val ]; then DATA=.mmlu/data; else DATA=tests/data/mmlu; fi
fi
if [ -z "${WHEELS:-}" ]; then
  if [ -d .whl ]; then WHEELS=.whl; else WHEELS=.mmlu/whl; fi
fi
BATCH=${BATCH:-auto}
LIMIT=${LIMIT:-0}
FP32=${FP32:-1}
MODEL=${MODEL:-/tmp/tl-mmlu}
PY=${PYTHON:-python3}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
LMA_DEVICE=${LMA_DEVICE:-cuda}
LMEVAL_DTYPE=${LMEVAL_DTYPE:-bfloat16}
TINY=${TINY:-0}
exec > >(tee -a "$OUT/run.log") 2>&1
: > "$OUT/stages.txt"
stage() { echo "$1 $2 ${3:-}" | tee -a "$OUT/stages.txt"; }
T0=$(date +%s)

# ---- environment
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l) changed paths"
  echo "gpu:"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  echo "python: $($PY --version 2>&1)"
  echo "lmadapt: $LMADAPT ($("$LMADAPT" --version 2>&1 | head -1))"
  echo "data: $DATA ($(ls "$DATA"/val/*.csv "$DATA"/test/*.csv 2>/dev/null | wc -l) eval files)  wheels: $WHEELS  limit: $LIMIT  batch: $BATCH"
} | tee "$OUT/env.txt"
stage env ok

# ---- 1. lm_eval from the carried wheels, offline
inst_ok=0
if $PY -c "import lm_eval, datasets" 2>/dev/null; then
  inst_ok=1; stage install ok "already installed"
else
  export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
  if $PY -m pip install --no-index --find-links "$WHEELS" lm_eval==0.4.13 > "$OUT/pip.log" 2>&1; then
    inst_ok=1; stage install ok "resolver"
  else
    tail -20 "$OUT/pip.log"
    # fallback: every carried wheel whose distribution is not installed at all, without dependency checks
    missing=$($PY - "$WHEELS" <<'EOF'
import glob, os, re, sys
from importlib import metadata
for w in sorted(glob.glob(os.path.join(sys.argv[1], "*.whl"))):
    name = re.sub(r"[-_.]+", "-", os.path.basename(w).split("-")[0]).lower()
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(w)
EOF
)
    if [ -n "$missing" ] && $PY -m pip install --no-index --no-deps $missing >> "$OUT/pip.log" 2>&1 \
       && $PY -c "import lm_eval, datasets, evaluate"; then
      inst_ok=1; stage install ok "fallback --no-deps"
    else
      tail -20 "$OUT/pip.log"; stage install FAILED
    fi
  fi
fi
$PY - > "$OUT/versions.txt" 2>&1 <<'EOF'
from importlib import metadata
for p in ["torch", "transformers", "tokenizers", "accelerate", "lm_eval", "datasets", "evaluate", "fsspec", "huggingface_hub", "numpy", "pandas", "pyarrow"]:
    try: print(p, metadata.version(p))
    except Exception as e: print(p, "missing")
EOF
cat "$OUT/versions.txt"

# ---- 2. tokenizer: lmadapt and transformers ids on the MMLU requests
if [ $inst_ok = 1 ]; then
  if $PY bench/mmlu/check_tokenizer.py --tok .mmlu/tok --data "$DATA" --lmadapt "$LMADAPT" --items 1 \
       > "$OUT/check_tokenizer.log" 2>&1; then stage tokenizer ok; else stage tokenizer FAILED; fi
  grep -A20 "tokenizer check" "$OUT/check_tokenizer.log"
fi

# ---- 3. the model
if [ "${REUSE_MODEL:-0}" = 1 ] && [ -f "$MODEL/model.safetensors" ] && [ -f "$MODEL/tokenizer.json" ]; then
  stage model ok "reused $MODEL"
elif $PY bench/mmlu/make_model.py --out "$MODEL" --tok .mmlu/tok $([ "$TINY" = 1 ] && echo --tiny) \
       > "$OUT/make_model.log" 2>&1; then
  stage model ok; tail -2 "$OUT/make_model.log"
else
  tail -20 "$OUT/make_model.log"; stage model FAILED
fi

timed() {  # timed NAME cmd...: wall seconds to $OUT/NAME.wall, /usr/bin/time -v (if present) to $OUT/NAME.time
  local name=$1; shift
  local t0 t1 rc
  t0=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then /usr/bin/time -v -o "$OUT/$name.time" "$@"; rc=$?
  else "$@"; rc=$?; echo "no /usr/bin/time: wall clock only" > "$OUT/$name.time"; fi
  t1=$(date +%s.%N)
  $PY -c "print('%.3f' % ($t1 - $t0))" > "$OUT/$name.wall"
  echo "$name: exit $rc, wall $(cat "$OUT/$name.wall") s" >&2
  return $rc
}

run_pair() {  # run_pair TAG LMADAPT_DEVICE LMEVAL_DTYPE
  local tag=$1 dev=$2 dtype=$3
  rm -f "$OUT/lmadapt_$tag.json"
  if timed "lmadapt_$tag" "$LMADAPT" eval --model "$MODEL" --task "mmlu:$DATA" --shots 5 --limit "$LIMIT" \
       --device "$dev" --json --out "$OUT/lmadapt_$tag.json" > "$OUT/lmadapt_$tag.stdout" 2> "$OUT/lmadapt_$tag.log"; then
    stage "lmadapt_$tag" ok "$(cat "$OUT/lmadapt_$tag.wall") s"
  else
    tail -20 "$OUT/lmadapt_$tag.log"; stage "lmadapt_$tag" FAILED
  fi
  if [ $inst_ok = 1 ]; then
    if timed "lm_eval_$tag" $PY bench/mmlu/lm_eval_mmlu.py --model "$MODEL" --data "$DATA" --dtype "$dtype" \
         --device "$TORCH_DEVICE" --batch-size "$BATCH" --limit "$LIMIT" --out "$OUT/lm_eval_$tag.json" \
         > "$OUT/lm_eval_$tag.log" 2>&1; then
      stage "lm_eval_$tag" ok "$(cat "$OUT/lm_eval_$tag.wall") s"; tail -1 "$OUT/lm_eval_$tag.log"
    else
      tail -30 "$OUT/lm_eval_$tag.log"; stage "lm_eval_$tag" FAILED
    fi
  fi
  echo "===== compare ($tag: lmadapt --device $dev, lm-eval dtype $dtype)" | tee "$OUT/compare_$tag.txt"
  $PY bench/mmlu/compare.py --lmadapt "$OUT/lmadapt_$tag.json" --lmeval "$OUT/lm_eval_$tag.json" \
    --lmadapt-wall "$(cat "$OUT/lmadapt_$tag.wall" 2>/dev/null || echo 0)" \
    --lmeval-wall "$(cat "$OUT/lm_eval_$tag.wall" 2>/dev/null || echo 0)" \
    --json "$OUT/compare_$tag.json" 2>&1 | tee -a "$OUT/compare_$tag.txt"
}

# ---- 4. bf16: lmadapt --device cuda (bf16 weights and activations) vs lm-eval dtype bfloat16
run_pair bf16 "$LMA_DEVICE" "$LMEVAL_DTYPE"
# ---- 5. fp32: lmadapt --device cuda-fp32 vs lm-eval float32 (exactness; TF32 off on both by default)
if [ "$FP32" = 1 ]; then run_pair fp32 cuda-fp32 float32; fi

echo "total $(( $(date +%s) - T0 )) s"
cat "$OUT/stages.txt"
exit 0
