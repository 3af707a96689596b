#!/usr/bin/env bash
# llama.cpp runs what lmadapt exports: SmolLM2-135M-Instruct exported to GGUF f32 and q8_0,
# and a LoRA adapter trained by lmadapt (sft --method lora) exported to GGUF, each run
# greedily by llama.cpp (llama-completion, built by build.sh) and by lmadapt on the same
# prompt; the script prints both texts and whether they agree.
#
# Usage: bench/llamacpp/export_check.sh [WORK_DIR]   (default /tmp/lma_export_check)
# Needs: build/lmadapt, the model (scripts/fetch-models.sh), llama.cpp (bench/llamacpp/build.sh).
# Environment: LORA_STEPS (default 40), N (tokens, default 24).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lma="$root/build/lmadapt"
work=${1:-/tmp/lma_export_check}
steps=${LORA_STEPS:-40}
n=${N:-24}
[ -x "$lma" ] || { echo "export_check: build lmadapt first (build/lmadapt)" >&2; exit 1; }
mkdir -p "$work"

prompt_for() { # ChatML prompt of one user message, with SmolLM2's default system prompt
  printf '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' "$1"
}
lmadapt_greedy() { # MODEL PROMPT [ADAPTER]
  local extra=()
  [ -n "${3:-}" ] && extra=(--adapter "$3")
  "$lma" generate --model "$1" --prompt "$2" --max-tokens "$n" --temperature 0 --json "${extra[@]}" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")'
}
compare() { # LABEL LLAMA_TEXT LMADAPT_TEXT
  printf '%s\n  llama.cpp: %q\n  lmadapt:   %q\n' "$1" "$2" "$3"
  if [ "$2" = "$3" ]; then echo "  => identical"; else echo "  => DIFFERENT"; fi
}

P=$(prompt_for "Explain in a few sentences why the sky is blue.")
for t in f32 q8_0; do
  "$lma" export --model smollm2-135m-instruct --type "$t" --out "$work/smollm2-$t.gguf" >/dev/null
  a=$(bash "$here/greedy.sh" "$work/smollm2-$t.gguf" "$P" "$n" 2>/dev/null)
  b=$(lmadapt_greedy "$work/smollm2-$t.gguf" "$P")
  compare "export $t ($(du -h "$work/smollm2-$t.gguf" | cut -f1))" "$a" "$b"
done

# A LoRA that visibly changes the answers: 16 Alpaca questions answered "Arr, matey! ..."
python3 - "$root/tests/data/alpaca_first200.json" "$work/pirate.jsonl" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))[:16]
with open(sys.argv[2], "w") as f:
    for r in rows:
        q = r["instruction"] + ("\n" + r["input"] if r["input"] else "")
        f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                         {"role": "assistant", "content": "Arr, matey! " + r["output"][:160]}]}) + "\n")
EOF
if [ ! -f "$work/lora/final/adapter_model.safetensors" ]; then
  rm -rf "$work/lora"
  "$lma" sft --model smollm2-135m-instruct --data "$work/pirate.jsonl" --out "$work/lora" --method lora \
    --steps "$steps" --batch 4 --seq 128 --lr 2e-3 --warmup 2 --save-every "$steps" >/dev/null 2>&1
fi
"$lma" export --model smollm2-135m-instruct --adapter "$work/lora/final" --out "$work/pirate-lora.gguf" >/dev/null
Q=$(prompt_for "What is the capital of France?")
a=$(bash "$here/greedy.sh" "$work/smollm2-f32.gguf" "$Q" "$n" --lora "$work/pirate-lora.gguf" 2>/dev/null)
b=$(lmadapt_greedy smollm2-135m-instruct "$Q" "$work/lora/final")
compare "LoRA adapter ($steps steps) applied with --lora" "$a" "$b"
base=$(bash "$here/greedy.sh" "$work/smollm2-f32.gguf" "$Q" "$n" 2>/dev/null)
printf 'without the adapter, llama.cpp: %q\n' "$base"
