#!/usr/bin/env bash
# lmadapt serve on the GPU beside transformers' generate, for SmolLM2-135M-Instruct and a
# TinyLlama-shaped model (1.1B, random weights, SmolLM2's tokenizer). Run on the device:
#   bash bench/serve/device_check.sh
# Needs: .deps/ with libmicrohttpd-dev and libmicrohttpd12 .debs besides the usual ones
# (apt-get download libmicrohttpd-dev libmicrohttpd12; bench/device_build.sh unpacks them),
# python3 with torch + transformers + gguf (the transformers side), and the SmolLM2 GGUF:
# LMA_SERVE_GGUF=path (default: the model cache, ~/.cache/lmadapt/models/smollm2-135m-instruct).
# Writes under $OUT (default /tmp/serve_device): build.log, the load test of each model
# (load_*.json / .txt: levels 1, 8, 32, 64 concurrent clients, 60 s each, --max-active 64),
# hf_*.txt (transformers generate, batches 1, 8, 32, 64, 64 new tokens) and greedy.txt (the
# server's greedy chat on cuda == lmadapt generate --device cuda on the rendered ids).
# SECONDS_PER_LEVEL=N shortens the load levels.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/serve_device}
mkdir -p "$OUT"
bash bench/device_build.sh build-gpu >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
LMA=build-gpu/lmadapt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
GGUF=${LMA_SERVE_GGUF:-$(ls ${LMA_HOME:-$HOME/.cache/lmadapt}/models/smollm2-135m-instruct/*.gguf 2>/dev/null | head -1)}
[ -f "$GGUF" ] || { echo "no SmolLM2 GGUF: set LMA_SERVE_GGUF"; exit 1; }
S=${SECONDS_PER_LEVEL:-60}

# 1. greedy equality on the GPU
printf '%s' '[{"role": "user", "content": "Name three colors."}]' >/tmp/serve_msgs.json
ids=$($LMA tokenizer render --tokenizer "$GGUF" --messages /tmp/serve_msgs.json --generation-prompt --json |
    python3 -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['ids'])))")
$LMA generate --model "$GGUF" --device cuda --ids "$ids" --max-tokens 48 --temperature 0 --json 2>/dev/null \
    >"$OUT/greedy_generate.json"
$LMA serve --model "$GGUF" --device cuda --port 0 --quiet 2>"$OUT/serve_greedy.log" &
spid=$!
for _ in $(seq 1 300); do port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$OUT/serve_greedy.log"); [ -n "$port" ] && break; sleep 0.2; done
curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": 48, "temperature": 0}' \
    >"$OUT/greedy_serve.json"
kill -TERM $spid; wait $spid
python3 - "$OUT" <<'EOF' | tee "$OUT/greedy.txt"
import json, sys
g = json.load(open(sys.argv[1] + "/greedy_generate.json"))
s = json.load(open(sys.argv[1] + "/greedy_serve.json"))
t = s["choices"][0]["message"]["content"]
print("greedy chat on cuda: server == lmadapt generate:", t == g["text"], repr(t[:60]))
EOF

# 2. SmolLM2: lmadapt serve under load, transformers generate batches
python3 bench/serve/load.py --lmadapt $LMA --model "$GGUF" --device cuda --levels 1,8,32,64 --seconds "$S" \
    --max-active 64 --json "$OUT/load_smollm2.json" 2>&1 | tee "$OUT/load_smollm2.txt"
python3 bench/serve/hf_generate.py bench "$(dirname "$GGUF")" "$(basename "$GGUF")" 2>&1 | tee "$OUT/hf_smollm2.txt"

# 3. TinyLlama-shaped (1.1B, random weights): the same on both sides
TINY=/tmp/tinyllama-shaped
[ -f $TINY/config.json ] || python3 bench/serve/hf_generate.py make-tiny $TINY "$GGUF" 2>&1 | tail -1
python3 bench/serve/load.py --lmadapt $LMA --model $TINY --device cuda --levels 1,8,32,64 --seconds "$S" \
    --max-active 64 --json "$OUT/load_tinyllama.json" 2>&1 | tee "$OUT/load_tinyllama.txt"
python3 bench/serve/hf_generate.py bench $TINY 2>&1 | tee "$OUT/hf_tinyllama.txt"
