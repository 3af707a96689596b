#!/usr/bin/env bash
# lmadapt serve on the GPU beside transformers' generate (the lead runs it on the device; nothing
# is downloaded, no model file is carried). Run from the repository root on the device:
#   bash bench/serve/device_check.sh                      carry: .deps (as the other checks)
# (or the build first, in its own call on the same machine, so that the check's 8 minutes
# are all measurement: bash bench/device_build.sh build-gpu, then the line above.)
# It needs only the repository (bench/serve/tok: SmolLM2's tokenizer, 0.6 MB, committed), the
# .deps/ Debian packages for bench/device_build.sh (libmicrohttpd-dev and libmicrohttpd12
# among them) and python3 with torch + transformers (device: torch 2.11, transformers 5.17).
#   1. builds lmadapt with CUDA (bench/device_build.sh; a build in $BUILD is reused);
#   2. makes two Llama folders with random weights (seed 0, bf16) and SmolLM2's tokenizer
#      (bench/serve/hf_generate.py make): SmolLM2-135M-shaped and TinyLlama-1.1B-shaped;
#   3. per model: greedy chat through the server == lmadapt generate --device cuda on the
#      rendered ids; bench/serve/load.py against `lmadapt serve --device cuda --max-active 64`
#      at 1, 8, 32, 64 concurrent clients ($SECONDS_PER_LEVEL s each, every request exactly
#      $NEW tokens: max_tokens + ignore_eos, no disconnects); transformers generate (bf16, SDPA,
#      batches 1, 8, 32, 64 of the same chat prompts, exactly $NEW new tokens) eager;
#   4. transformers generate with the static cache (+ torch.compile, which generate applies
#      with it) while time remains: batches that would start past the budget are skipped;
# all within $BUDGET_S (default 470) seconds after the build starts.
# Writes under $OUT (default /tmp/serve_device): results.md (the table), results.json (every
# row), load_*.json/.txt, hf_*_{eager,static}.json, greedy_*.txt, build.log, gpu.txt.
# Local test of everything but the GPU (a toy model on the CPU, a build given in $LMA):
#   LMA_SERVE_TOY=1 LMA=build/lmadapt PY=/tmp/refenv/bin/python OUT=/tmp/serve_toy bash bench/serve/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
BUDGET=${BUDGET_S:-470}
OUT=${OUT:-/tmp/serve_device}
mkdir -p "$OUT"
PY=${PY:-python3}
MODELS=${MODELS_DIR:-/tmp/serve_models}
if [ -n "${LMA_SERVE_TOY:-}" ]; then
    DEV=cpu SHAPES=toy LMA=${LMA:-build/lmadapt}
    LEVELS=${LEVELS:-1,4} S=${SECONDS_PER_LEVEL:-4} NEW=${NEW:-8} BATCHES=${BATCHES:-1,4}
    echo "toy run on the CPU" >"$OUT/gpu.txt"
else
    DEV=cuda SHAPES="smollm2 tinyllama"
    LEVELS=${LEVELS:-1,8,32,64} S=${SECONDS_PER_LEVEL:-12} NEW=${NEW:-64} BATCHES=${BATCHES:-1,8,32,64}
    BUILD=${BUILD:-build-gpu}
    LMA=$BUILD/lmadapt
    if [ ! -x "$LMA" ] || [ -n "${REBUILD:-}" ]; then
        bash bench/device_build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { echo "build failed: $OUT/build.log"; tail -30 "$OUT/build.log"; exit 1; }
    fi
    [ -d /tmp/deps ] && export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
"$LMA" serve --help >/dev/null 2>&1 || { echo "$LMA serve does not run (no libmicrohttpd in the build?)"; "$LMA" serve --help | tail -3; exit 1; }
echo "build done after $(( $(date +%s) - T0 )) s"
printf '%s' '[{"role": "user", "content": "Name three colors."}]' >"$OUT/msgs.json"

for shape in $SHAPES; do
    M=$MODELS/$shape
    [ -f "$M/model.safetensors" ] || "$PY" bench/serve/hf_generate.py make "$M" --shape $shape --device $DEV 2>&1 | grep '^{' \
        || { echo "could not make the $shape model"; exit 1; }
    # greedy: the server's chat == lmadapt generate on the rendered ids
    ids=$("$LMA" tokenizer render --tokenizer "$M" --messages "$OUT/msgs.json" --generation-prompt --json |
        "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['ids'])))")
    "$LMA" generate --model "$M" --device $DEV --ids "$ids" --max-tokens 16 --temperature 0 --json 2>/dev/null \
        >"$OUT/greedy_generate_$shape.json"
    "$LMA" serve --model "$M" --device $DEV --port 0 --quiet 2>"$OUT/serve_greedy_$shape.log" &
    spid=$!
    port=
    for _ in $(seq 1 600); do
        port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$OUT/serve_greedy_$shape.log"); [ -n "$port" ] && break
        kill -0 $spid 2>/dev/null || break; sleep 0.2
    done
    curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
        -d '{"messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": 16, "temperature": 0}' \
        >"$OUT/greedy_serve_$shape.json"
    kill -TERM $spid; wait $spid
    "$PY" - "$OUT" $shape <<'EOF' | tee "$OUT/greedy_$shape.txt"
import json, sys
o, shape = sys.argv[1], sys.argv[2]
try:
    g = json.load(open(f"{o}/greedy_generate_{shape}.json"))
    s = json.load(open(f"{o}/greedy_serve_{shape}.json"))
    t = s["choices"][0]["message"]["content"]
    print(f"{shape}: greedy chat through the server == lmadapt generate:", t == g["text"], repr(t[:50]))
except Exception as e:
    print(f"{shape}: greedy check failed: {e}")
EOF
    # the server under load: fixed-length requests
    "$PY" bench/serve/load.py --lmadapt "$LMA" --model "$M" --device $DEV --levels "$LEVELS" --seconds "$S" \
        --max-tokens "$NEW" --ignore-eos --disconnect 0 --max-active 64 --warmup-seconds 3 --warmup-clients 4 \
        --json "$OUT/load_$shape.json" >"$OUT/load_$shape.txt" 2>&1
    tail -8 "$OUT/load_$shape.txt"
    # transformers generate, eager (HF=0: the lmadapt side alone, e.g. to re-run it)
    [ "${HF:-1}" = 1 ] && timeout 300 "$PY" bench/serve/hf_generate.py bench "$M" --mode eager --device $DEV --batches "$BATCHES" \
        --new "$NEW" --deadline $((T0 + BUDGET - 20)) --json "$OUT/hf_${shape}_eager.json" 2>"$OUT/hf_${shape}_eager.log" | tail -4
    echo "$shape done after $(( $(date +%s) - T0 )) s"
done
# static cache + torch.compile while time remains
for shape in $SHAPES; do
    [ "${HF:-1}" = 1 ] || break
    left=$((T0 + BUDGET - $(date +%s)))
    [ $left -gt 30 ] || { echo "no time left for the static cache ($shape)"; continue; }
    timeout $left "$PY" bench/serve/hf_generate.py bench "$MODELS/$shape" --mode static --device $DEV \
        --batches "$BATCHES" --new "$NEW" --deadline $((T0 + BUDGET - 15)) --json "$OUT/hf_${shape}_static.json" \
        2>"$OUT/hf_${shape}_static.log" | tail -4
done

# the table
"$PY" - "$OUT" "$SHAPES" "$NEW" <<'EOF'
import json, os, sys
o, shapes, new = sys.argv[1], sys.argv[2].split(), sys.argv[3]
rows = []
for shape in shapes:
    try:
        for r in json.load(open(f"{o}/load_{shape}.json"))["levels"]:
            rows.append({"model": shape, "side": "lmadapt serve (continuous batching)", "concurrency": r["clients"],
                         "requests": r["completed"], "errors": r["errors"], "tokens_per_s": r["tokens_per_s"],
                         "lat_p50_s": r["lat_p50_s"], "lat_p99_s": r["lat_p99_s"], "ttft_p50_s": r["ttft_p50_s"]})
    except Exception as e:
        rows.append({"model": shape, "side": "lmadapt serve", "error": str(e)})
    for mode in ("eager", "static"):
        p = f"{o}/hf_{shape}_{mode}.json"
        if not os.path.exists(p):
            rows.append({"model": shape, "side": f"transformers generate ({mode})", "error": "no result (see the log)"})
            continue
        for r in json.load(open(p)):
            rows.append({"model": shape, "side": r["side"], "concurrency": r["batch"], "requests": r.get("requests"),
                         "tokens_per_s": r.get("tokens_per_s"), "lat_p50_s": r.get("lat_p50_s"),
                         "lat_p99_s": r.get("lat_p99_s"), "skipped": r.get("skipped"), "warmup_s": r.get("warmup_s")})
gpu = open(f"{o}/gpu.txt").read().strip()
json.dump({"gpu": gpu, "new_tokens": int(new), "rows": rows}, open(f"{o}/results.json", "w"), indent=1)
f = lambda v: "-" if v is None else v
with open(f"{o}/results.md", "w") as md:
    md.write(f"{gpu}; every request {new} new tokens (ignore_eos / min_new_tokens); random bf16 weights\n\n")
    md.write("| model | side | concurrency / batch | requests | tokens/s | latency p50 / p99 (s) | note |\n|---|---|---|---|---|---|---|\n")
    for r in rows:
        note = r.get("error") or r.get("skipped") or (f"errors {r['errors']}" if r.get("errors") else "") or \
            (f"TTFT p50 {r['ttft_p50_s']} s" if r.get("ttft_p50_s") is not None else "") or \
            (f"first call {r['warmup_s']} s" if r.get("warmup_s") is not None else "")
        md.write(f"| {r['model']} | {r['side']} | {f(r.get('concurrency'))} | {f(r.get('requests'))} | "
                 f"{f(r.get('tokens_per_s'))} | {f(r.get('lat_p50_s'))} / {f(r.get('lat_p99_s'))} | {note} |\n")
print(open(f"{o}/results.md").read())
EOF
echo "total $(( $(date +%s) - T0 )) s"
