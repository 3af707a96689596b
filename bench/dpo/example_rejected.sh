#!/bin/sh
# Makes examples/dpo/prefs.jsonl for the docs/dpo.md worked example: for each question of
# examples/dpo/questions.tsv (question TAB concise answer), the chosen reply is the concise
# answer and the rejected one is SmolLM2-135M-Instruct's own greedy answer (on-policy, cut
# at 60 tokens): DPO then lowers the base model's verbose style itself.
# Usage (repository root): sh bench/dpo/example_rejected.sh
set -e
LMA=${LMA:-build/lmadapt}
M=smollm2-135m-instruct
D=examples/dpo
SYS="You are a helpful AI assistant named SmolLM, trained by Hugging Face"
tmp=$(mktemp)
: > $D/prefs.jsonl
while IFS="$(printf '\t')" read -r q a; do
    printf '<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' "$SYS" "$q" > "$tmp"
    $LMA generate --model $M --prompt-file "$tmp" --temperature 0 --max-tokens 60 --json 2>/dev/null |
        python3 -c "
import json, sys
d = json.load(sys.stdin); q, a = sys.argv[1], sys.argv[2]
print(json.dumps({'prompt': [{'role': 'user', 'content': q}], 'chosen': [{'role': 'assistant', 'content': a}],
                  'rejected': [{'role': 'assistant', 'content': d['text'].strip()}]}))" "$q" "$a" >> $D/prefs.jsonl
done < $D/questions.tsv
rm -f "$tmp"
wc -l $D/prefs.jsonl
