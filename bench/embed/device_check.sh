#!/usr/bin/env bash
# GPU check of the encoder (the lead runs it on the device machine; nothing is downloaded):
#   1. builds with CUDA (bench/device_build.sh; the .deps/ packages as for the other checks);
#   2. test_backend_cuda: the encoder ops (layernorm_fwd, gelu_fwd, attention_bidir_fwd) on
#      cuda-fp32 and cuda (bf16) against the CPU backend, with the rest of the op table;
#   3. bench_embed: the encoder of all-MiniLM-L6-v2's shape (random weights unless
#      MODEL=<a BertModel folder> is given) on cpu, cuda-fp32 and cuda: parity with the CPU
#      (worst token cosine) and sentences/s at lengths 32 and 128, batches 32 and 256;
#   4. with MODEL set to the real all-MiniLM-L6-v2 folder: lmadapt embed of the test
#      fixture sentences on cuda, compared with sentence-transformers' vectors.
# Usage (on the device): bash bench/embed/device_check.sh     Results: $OUT/embed_device.txt
# (the build, bench/device_build.sh, takes the first call; a build kept in $BUILD is reused,
# REBUILD=1 forces one). The real model (90 MB) is over the device's carry limit: without
# MODEL the encoder has random weights of the same shape (parity and speed are the same).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/embed_device}; mkdir -p "$OUT"
BUILD=${BUILD:-build-gpu}
LOG="$OUT/embed_device.txt"
if [ ! -x "$BUILD/bench_embed" ] || [ -n "${REBUILD:-}" ]; then # a build kept from an earlier call is reused
    bash bench/device_build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { echo "build failed: $OUT/build.log"; tail -20 "$OUT/build.log"; exit 1; }
fi
[ -d /tmp/deps ] && export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
{
    echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
    echo "== test_backend_cuda (encoder ops + the op table)"
    timeout 300 "$BUILD/tests/test_backend_cuda" 2>&1 | grep -E "FAIL|encoder|layernorm|gelu|attention_bidir|passed" | tail -40
    echo "== bench_embed (model: ${MODEL:-random weights, all-MiniLM-L6-v2 shape})"
    for len in 32 128; do
        for batch in 32 256; do
            "$BUILD/bench_embed" ${MODEL:+--model "$MODEL"} --dir /tmp/lma_bench_bert --devices cuda-fp32,cuda \
                --len $len --batch $batch --n 4096 --threads "$(nproc)" --reps 3 2>&1
        done
    done
    "$BUILD/bench_embed" ${MODEL:+--model "$MODEL"} --dir /tmp/lma_bench_bert --devices cpu --len 32 --batch 32 \
        --n 4096 --threads "$(nproc)" --reps 2 2>&1
    if [ -n "${MODEL:-}" ]; then
        echo "== lmadapt embed of the fixture sentences on cuda vs sentence-transformers (tests/ref/embed)"
        python3 - "$BUILD/lmadapt" "$MODEL" <<'PYEOF'
import json, struct, subprocess, sys, math
lma, model = sys.argv[1], sys.argv[2]
cases = json.load(open("tests/ref/embed/cases.json"))
texts = [bytes.fromhex(c["hex"]).decode() for c in cases["sentences"]]
raw = open("tests/ref/embed/embeddings.f32", "rb").read()
want = [struct.unpack_from("<384f", raw, 4 * 384 * i) for i in range(len(texts))]
with open("/tmp/lma_embed_fixture.jsonl", "w") as f:
    f.write("".join(json.dumps({"text": t}) + "\n" for t in texts))
for dev in ("cuda-fp32", "cuda"):
    out = subprocess.run([lma, "embed", "--model", model, "--file", "/tmp/lma_embed_fixture.jsonl", "--json", "-q",
                          "--device", dev], capture_output=True).stdout.decode().splitlines()
    worst = 1.0
    for line, w in zip(out, want):
        v = json.loads(line)["embedding"]
        c = sum(a * b for a, b in zip(v, w)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in w))
        worst = min(worst, c)
    print(f"{dev}: {len(out)} sentences, worst cosine vs sentence-transformers {worst:.6f}")
PYEOF
    fi
} 2>&1 | tee "$LOG"
