#!/usr/bin/env bash
# Constrained decoding's cost per generated token beside the model's own decode time, on this
# machine's CPU with 2 threads (issue 21: target under 10% slower than unconstrained decoding).
# Usage: bench/json/mask_cost.sh [BUILD_DIR] [MODEL]   (default build, smollm2-135m-instruct)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
MODEL=${2:-smollm2-135m-instruct}
DIR=$("$BUILD/lmadapt" tokenizer encode --tokenizer "$MODEL" --text x >/dev/null 2>&1 && echo "$MODEL" || echo "$MODEL")
export LMA_THREADS=2 OMP_WAIT_POLICY=passive
P="Write a JSON object about Ada Lovelace with her name, birth year, fields and a note:"
for mode in text json grammar; do
    extra=""; [ $mode = json ] && extra="--format json"; [ $mode = grammar ] && extra="--grammar bench/grammar/json.gbnf"
    "$BUILD/lmadapt" generate --model "$MODEL" --prompt "$P" --max-tokens 64 $extra 2>&1 >/dev/null |
        sed -n 's/.*generated \([0-9]*\) tokens in \([0-9.]*\)s (\([0-9.]*\) tok\/s).*/'"$mode"' decode: \1 tokens, \3 tok\/s/p'
done
MDIR=$(ls -d "${LMA_HOME:-$HOME/.cache/lmadapt}/models/$MODEL" 2>/dev/null || echo "$MODEL")
"$BUILD/bench_json_mask" "$MDIR" 5 bench/grammar/json.gbnf
