#!/bin/sh
# The docs/dpo.md worked example: greedy answers of SmolLM2-135M-Instruct to the held-out
# questions (examples/dpo/heldout.txt), LoRA DPO on examples/dpo/prefs.jsonl (made by
# bench/dpo/example_rejected.sh), the same answers with the adapter; writes
# examples/dpo/before.jsonl and after.jsonl and prints the mean answer length.
# Usage (repository root): sh bench/dpo/example.sh [RUN_DIR]   (CPU)
set -e
LMA=${LMA:-build/lmadapt}
RUN=${1:-runs/dpo-concise}
M=smollm2-135m-instruct
D=examples/dpo
SYS="You are a helpful AI assistant named SmolLM, trained by Hugging Face"
answers() { # $1: label, then --adapter DIR or nothing
    label=$1; shift
    tmp=$(mktemp)
    while IFS= read -r q; do
        printf '<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' "$SYS" "$q" > "$tmp"
        $LMA generate --model $M "$@" --prompt-file "$tmp" --temperature 0 --max-tokens 100 --json 2>/dev/null |
            python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'run': sys.argv[2], 'q': sys.argv[1], 'tokens': len(d['ids']), 'text': d['text']}))" "$q" "$label"
    done < $D/heldout.txt
    rm -f "$tmp"
}
[ -n "$SKIP_BEFORE" ] || answers before > $D/before.jsonl
$LMA data validate $D/prefs.jsonl
$LMA dpo --model $M --data $D/prefs.jsonl --out $RUN --method lora --lora-r 16 --lora-alpha 32 \
    --steps ${STEPS:-10} --batch 4 --seq 256 --lr ${LR:-1e-4} --warmup 2 --beta ${BETA:-0.1} --save-every 6 --device cpu
answers after --adapter $RUN/final > $D/after.jsonl
python3 - $D/before.jsonl $D/after.jsonl <<'PY'
import json, sys
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
    print(f"{rows[0]['run']}: mean {sum(r['tokens'] for r in rows) / len(rows):.1f} tokens per answer")
PY
