#!/usr/bin/env bash
# One CPU training step (forward + backward + AdamW), stories15M shape, batch 8 x 256:
# lmadapt (build/bench_train_step) vs PyTorch CPU (bench/torch_cpu_step.py under
# Debian's python3-torch) with the same thread count, in one run.
#
# Usage: bench/cpu_train_step.sh [--steps N] [--batch B] [--seq T]
#   env: THREADS (default 2), BUILD (build dir, default build), PYTHON (default /usr/bin/python3)
# Extra options go to both programs. If $BUILD/bench_train_step does not exist,
# only the torch side runs. Prints the machine, both RESULT lines and the ratio
# lmadapt tok/s / torch tok/s (> 1 means lmadapt is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
BUILD="${BUILD:-build}"
PYTHON="${PYTHON:-/usr/bin/python3}"
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"

echo "== machine"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "cores:   $(nproc) online; $(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1) per socket x" \
     "$(lscpu | sed -n 's/^Socket(s): *//p' | head -1) socket(s)," \
     "$(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1) thread(s) per core"
echo "memory:  $(free -g | awk '/^Mem:/{print $2}') GiB"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine makes numbers noisy)"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo "threads: $THREADS"

tok_s() { sed -n 's/^RESULT .* tok_s \([0-9.]*\).*/\1/p' | tail -1; }

echo "== torch: $PYTHON bench/torch_cpu_step.py --threads $THREADS $*"
torch_out="$("$PYTHON" bench/torch_cpu_step.py --threads "$THREADS" "$@")"
echo "$torch_out"
torch_tok="$(echo "$torch_out" | tok_s)"

lma_bin="$BUILD/bench_train_step"
if [ -x "$lma_bin" ]; then
  echo "== lmadapt: $lma_bin --threads $THREADS $*"
  lma_out="$("$lma_bin" --threads "$THREADS" "$@")"
  echo "$lma_out"
  lma_tok="$(echo "$lma_out" | tok_s)"
  if [ -n "$lma_tok" ] && [ -n "$torch_tok" ]; then
    echo "== ratio lmadapt/torch tok/s: $(awk -v a="$lma_tok" -v b="$torch_tok" 'BEGIN{printf "%.2f", a/b}')" \
         "($lma_tok / $torch_tok)"
  else
    echo "== ratio: missing a RESULT line" >&2
    exit 1
  fi
else
  echo "== lmadapt: $lma_bin not built (cmake --build $BUILD --target bench_train_step); torch side only"
fi
