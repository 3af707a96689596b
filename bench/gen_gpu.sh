#!/usr/bin/env bash
# Generation on the GPU (issue 22 item 3), lmadapt beside transformers' generate, one device call:
#   1. builds lmadapt with CUDA (bench/device_build.sh $BUILD; reused when there) and, with
#      CUDA_TEST=1, runs test_backend_cuda first (its last lines go to the log);
#   2. lmadapt: bench_gen --device cuda, with decode steps replayed as CUDA graphs and without, (bf16 weights, activations and KV cache) for each
#      shape in $SHAPES (1b: TinyLlama-1.1B, 7b: Llama-2-7B; random weights, vocab 32000) at
#      each batch in $BATCHES: prompt $PROMPT random tokens, $GEN new tokens, greedy; prefill
#      tokens/s, decode tokens/s (batch > 1: one lma_model_decode_batch step for all sequences
#      a token) and end-to-end new tokens/s (prefill included, as generate measures);
#   3. transformers (bench/gen_gpu_hf.py) on the same shapes and batches: eager generate, then
#      with the static cache + torch.compile (MODES) while the budget lasts;
#   4. $OUT/gen_gpu.md: the table, the bandwidth limit of batch-1 decode (bf16 weight bytes /
#      the card's memory bandwidth: 3.35 TB/s H100 SXM, 4.8 TB/s H200) and the ratios.
# Usage (device): bash bench/gen_gpu.sh          carry: .deps
# Environment: OUT (/tmp/gen_gpu) BUILD (build-gpu) SHAPES (1b,7b) BATCHES (1,32) PROMPT (128)
#   GEN (256) MODES (eager,static) HF_SHAPES (the transformers side's shapes, space-separated; $SHAPES) BUDGET_S (540: seconds for the whole call; a transformers
#   run that would start past it is skipped and says so) CUDA_TEST (0) PY (python3) GRAPHS ("1 0": with graphs, without)
# Local check of the plumbing (no GPU): DEVICE=cpu SHAPES=15m MODES= BUILD=build bash bench/gen_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/gen_gpu} BUILD=${BUILD:-build-gpu} SHAPES=${SHAPES:-1b,7b} BATCHES=${BATCHES:-1,32}
PROMPT=${PROMPT:-128} GEN=${GEN:-256} MODES=${MODES:-eager,static} BUDGET=${BUDGET_S:-540} PY=${PY:-python3}
mkdir -p "$OUT"
LOG=$OUT/gen_gpu.log J=$OUT/gen_gpu.jsonl
: >"$J"
{
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null) shapes $SHAPES batches $BATCHES prompt $PROMPT gen $GEN"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
if [ ! -x "$BUILD/bench_gen" ] || [ -n "${REBUILD:-}" ]; then
    bash bench/device_build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { echo "build failed"; tail -30 "$OUT/build.log"; exit 1; }
fi
[ -d /tmp/deps ] && export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
echo "# build done after $(( $(date +%s) - T0 )) s"
if [ "${CUDA_TEST:-0}" = 1 ]; then
    timeout 200 "$BUILD/tests/test_backend_cuda" >"$OUT/test_backend_cuda.log" 2>&1
    echo "# test_backend_cuda: rc $?, $(tail -1 "$OUT/test_backend_cuda.log"), $(( $(date +%s) - T0 )) s"
    grep -E "FAIL" "$OUT/test_backend_cuda.log" | head -12
fi
for shape in ${SHAPES//,/ }; do
    for g in ${GRAPHS:-1 0}; do # decode steps replayed as CUDA graphs, then without (LMA_DECODE_GRAPHS=0); one model each
        LMA_DECODE_GRAPHS=$g timeout 300 "$BUILD/bench_gen" --preset "$shape" --vocab 32000 --device "${DEVICE:-cuda}" \
            --batch "$BATCHES" --prompt "$PROMPT" --gen "$GEN" --reps 2 2>&1 | grep -v '^first' | sed "s/^/graphs $g: /" |
            tee /dev/stderr | awk -v s="$shape" -v g="$g" '$3 == "RESULT" { for (i = 5; i < NF; i += 2) v[$i] = $(i + 1);
                printf "{\"impl\": \"lmadapt\", \"graphs\": %s, \"shape\": \"%s\", \"params\": %s, \"batch\": %s, \"prefill_tok_s\": %s, \"decode_tok_s\": %s}\n",
                g, s, v["params"], v["batch"], v["prefill_tok_s"], v["decode_tok_s"] }' >>"$J"
    done
done
echo "# lmadapt done after $(( $(date +%s) - T0 )) s"
for mode in ${MODES//,/ }; do
    for shape in ${HF_SHAPES:-${SHAPES//,/ }}; do
        left=$(( BUDGET - ($(date +%s) - T0) ))
        [ "$left" -lt 20 ] && { echo "# transformers $mode $shape: skipped, the ${BUDGET}s budget is spent"; continue; }
        timeout "$left" "$PY" bench/gen_gpu_hf.py --shape "$shape" --batches "$BATCHES" --prompt "$PROMPT" --gen "$GEN" \
            --mode "$mode" --deadline $(( T0 + BUDGET - 30 )) 2>"$OUT/hf_${mode}_$shape.err" | tee -a "$J"
        echo "# transformers $mode $shape: rc ${PIPESTATUS[0]}, $(( $(date +%s) - T0 )) s"
    done
done
"$PY" - "$J" "$PROMPT" "$GEN" "${GPU:-no GPU}" <<'EOF' | tee "$OUT/gen_gpu.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
P, G, gpu = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bw = 4.8e12 if "H200" in gpu else 3.35e12
print(f"{gpu}; prompt {P} random tokens, {G} new tokens, greedy; bf16 weights on both sides. "
      "End-to-end: new tokens / (prefill + decode) seconds, as generate is timed.\n")
print("| shape | batch | lmadapt prefill tok/s | lmadapt decode tok/s (without graphs) | lmadapt end-to-end tok/s | "
      "transformers eager tok/s | transformers static+compile tok/s | lmadapt / eager | lmadapt / compiled |")
print("|---|---|---|---|---|---|---|---|---|")
nog = {(r["shape"], r["batch"]): r["decode_tok_s"] for r in rows if r["impl"] == "lmadapt" and r["graphs"] == 0}
for r in [r for r in rows if r["impl"] == "lmadapt" and r["graphs"] == 1]:
    s, b = r["shape"], r["batch"]
    pre, dec = r["prefill_tok_s"], r["decode_tok_s"]
    e2e = b * G / (b * P / pre + b * (G - 1) / dec)
    hf = {m: next((x for x in rows if x["impl"] == "transformers" and x["mode"] == m and x["shape"] == s
                   and x["batch"] == b and "tok_s" in x), None) for m in ("eager", "static")}
    cell = lambda x: f"{x['tok_s']:,.1f} ({x['peak_gib']} GiB)" if x else "not run"
    ratio = lambda x: f"{e2e / x['tok_s']:.2f}x" if x else "-"
    print(f"| {s} | {b} | {pre:,.0f} | {dec:,.1f} ({nog.get((s, b), 0):,.1f}) | {e2e:,.1f} | {cell(hf['eager'])} | {cell(hf['static'])} | "
          f"{ratio(hf['eager'])} | {ratio(hf['static'])} |")
print()
for r in [r for r in rows if r["impl"] == "lmadapt" and r["batch"] == 1 and r["graphs"] == 1]:
    lim = bw / (2 * r["params"])
    print(f"{r['shape']} batch 1: bandwidth limit {lim:,.0f} tok/s ({2 * r['params'] / 1e9:.2f} GB of bf16 weights a token "
          f"at {bw / 1e12:.2f} TB/s); lmadapt decodes at {r['decode_tok_s']:,.1f} = {lim / r['decode_tok_s']:.2f}x the limit's time")
EOF
echo "# done after $(( $(date +%s) - T0 )) s"
} 2>&1 | tee "$LOG"
