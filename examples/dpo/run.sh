#!/bin/sh
# The docs/dpo.md worked example: LoRA DPO of SmolLM2-135M-Instruct on a concise-vs-rambling
# preference set, with greedy answers to held-out questions before and after.
# Usage: examples/dpo/run.sh [RUN_DIR] (from the repository root; CPU, about 10 minutes on 2 cores)
set -e
LMA=${LMA:-build/lmadapt}
RUN=${1:-runs/dpo-concise}
M=smollm2-135m-instruct
D=examples/dpo
answers() { # $1: label, then --adapter DIR or nothing
    label=$1; shift
    while IFS= read -r q; do
        p=$(printf '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' "$q")
        $LMA generate --model $M "$@" --prompt "$p" --temperature 0 --max-tokens 100 --json 2>/dev/null |
            python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'run': '$label', 'q': sys.argv[1], 'tokens': len(d['ids']), 'text': d['text']}))" "$q"
    done < $D/heldout.txt
}
answers before > $D/before.jsonl
$LMA data validate $D/prefs.jsonl
$LMA dpo --model $M --data $D/prefs.jsonl --out $RUN --method lora --lora-r 16 --lora-alpha 32 \
    --steps 12 --batch 4 --seq 256 --lr 5e-4 --warmup 2 --beta 0.1 --save-every 12 --device cpu
answers after --adapter $RUN/final > $D/after.jsonl
python3 - $D/before.jsonl $D/after.jsonl <<'PY'
import json, sys
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
    print(f"{rows[0]['run']}: mean {sum(r['tokens'] for r in rows) / len(rows):.1f} tokens per answer")
PY
