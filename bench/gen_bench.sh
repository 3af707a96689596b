#!/usr/bin/env bash
# Batch-1 CPU generation, lmadapt vs PyTorch (pip torch + transformers
# LlamaForCausalLM with its KV cache) on the same weights, same prompt, same
# threads, in one run; for the 15m preset and the 125m preset (vocab 32000).
# Then the MMLU scoring paths (KV-cache prefill shared by the 4 choices vs one full
# forward per choice).
#
# Usage: bench/gen_bench.sh          env: THREADS (2), BUILD (build), PYTHON (python3),
#                                         PROMPT (128), GEN (128),
#                                         MMLU (tests/data/mmlu: Hendrycks CSV folders; --limit 2
#                                         reads the first 2 val rows of a subject, the same in the
#                                         cut copy there as in the full data, tests/data/MANIFEST.md)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"; BUILD="${BUILD:-build}"; PYTHON="${PYTHON:-python3}"
PROMPT="${PROMPT:-128}"; GEN="${GEN:-128}"; MMLU="${MMLU:-tests/data/mmlu}"
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=passive
bin="$BUILD/bench_gen"
cmake --build "$BUILD" -j2 --target bench_gen >/dev/null

echo "== machine"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: numbers are noisy)"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD)  threads: $THREADS"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
val() { sed -n "s/^RESULT .* $1 \([0-9.]*\).*/\1/p" | tail -1; }
for preset in 15m 125m; do
  echo "== $preset: lmadapt"
  l="$("$bin" --preset "$preset" --vocab 32000 --prompt "$PROMPT" --gen "$GEN" --threads "$THREADS" --dir "$tmp/$preset")"
  echo "$l"
  echo "== $preset: torch"
  t="$("$PYTHON" bench/gen_torch.py "$tmp/$preset" --gen "$GEN" --threads "$THREADS")"
  echo "$t"
  for k in prefill_tok_s decode_tok_s; do
    echo "$preset $k: lmadapt $(echo "$l" | val $k) torch $(echo "$t" | val $k) ratio" \
         "$(awk -v a="$(echo "$l" | val $k)" -v b="$(echo "$t" | val $k)" 'BEGIN{printf "%.2fx", a/b}')"
  done
done
echo "== MMLU scoring paths"
"$bin" --mmlu "$MMLU" --tok tests/ref/tok/bl --shots 5 --limit 2 --threads "$THREADS"
