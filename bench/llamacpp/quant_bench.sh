#!/usr/bin/env bash
# Quantized CPU inference, lmadapt vs llama.cpp, on the same GGUF files, the same threads,
# back to back in one run (docs/gguf.md "Quantized inference"; results: bench/RESULTS.md).
#   models: SmolLM2-135M-Instruct Q4_1 (the fetched model), the same exported to Q8_0 by
#           `lmadapt export --type q8_0`, and a TinyLlama-1.1B-shaped random Q8_0 file
#           (make_tinyllama_q8.py; tokens/s only);
#   speed:  llama-bench -t T -p P -n N -r R  beside  bench_qmat --threads T --prompt P --gen N
#           --reps R (lmadapt, blocks kept; best of R), ROUNDS rounds alternating;
#   CPU:    CPU time per decoded token with 1 thread, each tool run with R=1 and R=3 reps and
#           the difference divided by the extra tokens (load, warm-up and prefill cancel):
#           on a shared machine wall-clock tokens/s follow the scheduler, CPU time much less;
#   text:   greedy continuations of two prompts (greedy.sh beside bench_qmat --greedy).
# Usage: bench/llamacpp/quant_bench.sh     env: THREADS (2), P (128), N (64), R (3), ROUNDS (2),
#        BUILD (build), PYTHON (/tmp/refenv/bin/python: gguf-py + numpy, for the TinyLlama file),
#        LMA_HOME (~/.cache/lmadapt). Needs bench/llamacpp/build.sh done and the model fetched.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2}; P=${P:-128}; N=${N:-64}; R=${R:-3}; ROUNDS=${ROUNDS:-2}; BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/tmp/refenv/bin/python}
home=${LMA_HOME:-$HOME/.cache/lmadapt}
bin="$home/llama.cpp/bin"
[ -x "$bin/llama-bench" ] || { echo "quant_bench: run bench/llamacpp/build.sh first" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target bench_qmat lmadapt >/dev/null
q41="$home/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$q41" ] || { echo "quant_bench: $q41 missing (scripts/fetch-models.sh)" >&2; exit 1; }
mkdir -p "$home/bench"
q80="$home/bench/SmolLM2-135M-Instruct.Q8_0.gguf"
tiny="$home/bench/tinyllama-shaped-q8_0.gguf"
[ -f "$q80" ] || "$BUILD/lmadapt" export --model "$q41" --out "$q80" --type q8_0 >/dev/null
[ -f "$tiny" ] || "$PYTHON" bench/llamacpp/make_tinyllama_q8.py "$q41" "$tiny"

echo "== machine"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; flags: $(grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx512vnni\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD)  threads: $THREADS"
echo "llama.cpp: $(cat "$home/llama.cpp/VERSION")"
export OMP_WAIT_POLICY=passive
load() { cut -d' ' -f1-3 /proc/loadavg; }
lb() { # model extra-args -> "pp tg"
  "$bin/llama-bench" -m "$1" -t "$THREADS" -p "$P" -n "$N" -r "$R" 2>/dev/null |
    awk -F'|' -v p="pp$P" -v n="tg$N" '$7 ~ p {split($8,a," "); pp=a[1]} $7 ~ n {split($8,a," "); tg=a[1]} END {print pp, tg}'
}
lm() {
  OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BUILD/bench_qmat" "$1" --threads "$THREADS" --prompt "$P" \
    --gen "$N" --reps "$R" | sed -n 's/^RESULT .* pp_tok_s \([0-9.]*\) tg_tok_s \([0-9.]*\).*/\1 \2/p'
}
cpu_ms() { perf stat -x, -e task-clock "$@" 2>&1 >/dev/null | grep task-clock | cut -d, -f1; }
per_tok() { # n cmd...(with REPS placeholder) -> ms of CPU per decoded token
  local n=$1; shift
  local a b; a=$(cpu_ms "${@//REPS/1}"); b=$(cpu_ms "${@//REPS/3}")
  echo "($b - $a) / (2 * $n)" | bc -l | cut -c1-6
}
for m in "$q41" "$q80" "$tiny"; do
  echo "== $(basename "$m")"
  for r in $(seq "$ROUNDS"); do
    l=$(lb "$m"); echo "llama.cpp  pp$P ${l% *} t/s  tg$N ${l#* } t/s   (load $(load))"
    x=$(lm "$m"); echo "lmadapt    pp$P ${x% *} t/s  tg$N ${x#* } t/s   (load $(load))"
  done
  if command -v perf >/dev/null; then
    n=$N; [ "$m" = "$tiny" ] && n=16
    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    a=$(per_tok "$n" "$bin/llama-bench" -m "$m" -t 1 -p 0 -n "$n" -r REPS)
    b=$(per_tok "$n" "$BUILD/bench_qmat" "$m" --threads 1 --prompt 1 --gen "$n" --reps REPS)
    unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS
    echo "CPU per decoded token, 1 thread: llama.cpp $a ms, lmadapt $b ms   (load $(load))"
  fi
done
for m in "$q41" "$q80"; do
  echo "== greedy text, $(basename "$m")"
  for prompt in $'<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n' "Once upon a time"; do
    echo "prompt: $(printf '%q' "$prompt")"
    echo "  llama.cpp: $(bench/llamacpp/greedy.sh "$m" "$prompt" 24 2>/dev/null | tr '\n' ' ')"
    echo "  lmadapt:   $(OMP_NUM_THREADS=$THREADS "$BUILD/bench_qmat" "$m" --threads "$THREADS" --prompt 1 --gen 1 --reps 1 \
                      --text "$prompt" --greedy 24 | sed '/^RESULT/d; /^loaded/d; s/^greedy ([^)]*): //' | tr '\n' ' ')"
  done
done
