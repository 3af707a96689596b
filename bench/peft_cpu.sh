#!/bin/sh
# PEFT on CPU: step time and peak RSS of `lmadapt sft` with --method full, lora
# and qlora on the same model (a random Llama of the 60m preset shape: dim 512,
# 8 layers, 8 heads, MLP 1376, vocab 1200 = the bl test tokenizer), same data
# (tests/ref/sft/bl.jsonl, Llama 3 template), batch 4 x 128 tokens, 12 steps;
# the step time is the median of steps 3..12 from metrics.jsonl (tokens/s).
# Usage: bench/peft_cpu.sh BUILD_DIR [THREADS]
set -e
B=${1:-build}; THR=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/lma_peft_bench_XXXXXX)
python3 - "$W/base" <<'PY'
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
c = LlamaConfig(vocab_size=1200, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                num_key_value_heads=8, intermediate_size=1376, max_position_embeddings=2048,
                tie_word_embeddings=False)
torch.manual_seed(0)
LlamaForCausalLM(c).save_pretrained(sys.argv[1])
PY
cp "$ROOT/tests/ref/tok/bl/tokenizer.json" "$ROOT/tests/ref/tok/bl/tokenizer_config.json" "$W/base/"
for m in full lora qlora; do
  /usr/bin/time -f "%M" -o "$W/$m.rss" "$B/lmadapt" sft --model "$W/base" --data "$ROOT/tests/ref/sft/bl.jsonl" \
    --method $m --out "$W/$m" --steps 12 --batch 4 --seq 128 --threads "$THR" --template llama3 \
    --eval-every 0 --save-every 0 --lora-r 16 --lora-alpha 32 --lora-dropout 0.05 > "$W/$m.out" 2>/dev/null
  python3 - "$W/$m/metrics.jsonl" "$W/$m.rss" "$m" "$W/$m.out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = statistics.median(r["tokens_per_s"] for r in rows[2:])
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
line = [l for l in open(sys.argv[4]) if l.startswith("trainable")]
print("%-6s step %.3f s  %.0f tokens/s  peak RSS %.0f MB  final loss %.4f  %s" %
      (sys.argv[3], 512 / tps, tps, rss, rows[-1]["loss"], line[0].strip() if line else ""))
PY
done
rm -rf "$W"
