#!/usr/bin/env bash
# Context extension 2x of a model (docs/recipes/long-context.md), end to end in one call:
#   (0) build: bash bench/device_build.sh $BUILD (incremental; skipped with SKIP_BUILD=1)
#   (a) before: passkey retrieval at $CTX x $DEPTHS ($TRIALS keys a cell), one eval call per
#       context (a slow or failed length loses only its own column), and the perplexity of
#       held-out text (the first $HELDOUT_BYTES bytes of tests/data/tinyshakespeare.txt, not
#       trained on) in windows of $PPL_WINDOW tokens, $PPL_LIMIT tokens
#   (b) cpt --method lora --rope-scaling $ROPE --seq $SEQ --batch 1 --accum $ACCUM --steps
#       $STEPS --lr $LR on long documents, each file one document (--docs files):
#       the rest of tinyshakespeare, the project's docs/*.md joined, its C sources joined
#       (no replay, no validation split); stopped by SIGTERM at $T_CPT s it saves a checkpoint,
#       which is then merged instead of final/ (said in the log and the table)
#   (c) merge of the adapter into the base; the merged config.json must carry rope_scaling
#       and the longer max_position_embeddings (checked; patched, loudly, if missing)
#   (d) after: the same evaluations on the merged model; and (CONTROL=1, the default) on the
#       base with the run's rope scaling but no training: the trained adapter with its lora_B
#       zeroed (eval --adapter applies the adapter's rope_scaling.json)
#   (e) $OUT/table.md: passkey accuracy per depth x context (base, scaled untrained, after),
#       held-out perplexity at $PPL_WINDOW, each step's status and seconds. A step that failed
#       or timed out shows as such in its cells, never as a 0.
#
# Usage (device, GPU): MODEL=/path/SmolLM2-135M-Instruct.Q4_1.gguf OUT=$OUT \
#                      bash bench/long_context/device_run.sh
# Usage (CPU proof):   MODEL=~/.cache/lmadapt/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
#                      DEVICE=cpu BUILD=build SKIP_BUILD=1 THREADS=2 CTX=512,1024 DEPTHS=0,0.5,1 TRIALS=1 \
#                      SEQ=512 STEPS=2 PPL_WINDOW=512 PPL_LIMIT=1024 T_EVAL=400 T_CPT=600 BUDGET=3600 \
#                      OUT=/tmp/lc_out bash bench/long_context/device_run.sh
# Environment (defaults for an H100, ~4-5 minutes with the build):
#   MODEL (required)  base model: .gguf file, HF folder or short name
#   OUT (/tmp/longctx_out)  the small results; WORK (/tmp/longctx_work) the run dir, merged model
#   BUILD (build-gpu) SKIP_BUILD (unset) DEVICE (cuda) THREADS (all cores)
#   CTX (4096,8192,12288,16384) DEPTHS (0,0.25,0.5,0.75,1) TRIALS (4 keys a cell) CONTROL (1)
#   PPL_WINDOW (8192) PPL_LIMIT (32768) HELDOUT_BYTES (131072)
#   ROPE (yarn:2) SEQ (16384) STEPS (150) ACCUM (1) LR (2e-4) WARMUP (10) LORA_R (16)
#   GRAD_CKPT (0; 1 adds --grad-ckpt: SmolLM2 LoRA at 16K needs 8.6 GiB without, 1.6 with,
#   by lmadapt mem, so an H100 runs without and saves the recompute)
#   BUDGET (350: seconds for the whole call, build included; each step's limit is cut to what
#   is left, a step with nothing left is skipped and says so, the table is always written)
#   T_EVAL (120: seconds per eval call) T_CPT (180) T_MERGE (120)
#   RESERVE (75: seconds the cpt leaves of the budget for the merge and the "after" evals)
#   CUDA_TEST (0; 1 first runs $BUILD/tests/test_backend_cuda, up to 200 s, into the log)
# Writes under $OUT (6 files): log.txt (every command, its output, rc and seconds),
# before.json, control.json, after.json (the eval results per context, each call's status),
# metrics.jsonl (the cpt run's), table.md (the tables, printed at the end too).
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${MODEL:?set MODEL to the base model (.gguf file, HF folder or short name)}"
OUT="${OUT:-/tmp/longctx_out}"
WORK="${WORK:-/tmp/longctx_work}"
BUILD="${BUILD:-build-gpu}"
DEVICE="${DEVICE:-cuda}"
CTX="${CTX:-4096,8192,12288,16384}"
DEPTHS="${DEPTHS:-0,0.25,0.5,0.75,1}"
TRIALS="${TRIALS:-4}"
PPL_WINDOW="${PPL_WINDOW:-8192}"
PPL_LIMIT="${PPL_LIMIT:-32768}"
HELDOUT_BYTES="${HELDOUT_BYTES:-131072}"
ROPE="${ROPE:-yarn:2}"
SEQ="${SEQ:-16384}"
STEPS="${STEPS:-150}"
ACCUM="${ACCUM:-1}"
LR="${LR:-2e-4}"
WARMUP="${WARMUP:-10}"
LORA_R="${LORA_R:-16}"
T_EVAL="${T_EVAL:-120}"
T_CPT="${T_CPT:-180}"
GRAD_CKPT="${GRAD_CKPT:-0}"
T_MERGE="${T_MERGE:-120}"
BUDGET="${BUDGET:-350}"
RESERVE="${RESERVE:-75}"
START=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - START))); }
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"
: > "$LOG"
STATUS="$WORK/status.tsv" # step <tab> rc <tab> seconds <tab> note
: > "$STATUS"
say() { echo "$*" | tee -a "$LOG"; }
# run NAME TIMEOUT CMD...: logs the command and its output, records rc and seconds
run() {
  local name="$1" lim="$2"; shift 2
  local rem; rem=$(left)
  if [ "$rem" -le 5 ]; then
    printf '%s\t125\t0\tskipped: the %ss budget is spent\n' "$name" "$BUDGET" >> "$STATUS"
    say "-- $name: skipped, the ${BUDGET}s budget is spent"
    return 125
  fi
  [ "$lim" -gt "$rem" ] && lim=$rem
  say "== $name (limit ${lim}s): $*"
  local t0 rc; t0=$(date +%s.%N)
  timeout -k 30 "$lim" "$@" >> "$LOG" 2>&1
  rc=$?
  local dt; dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local note=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note="timeout after ${lim}s"; elif [ "$rc" != 0 ]; then note="failed (rc $rc)"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$note" >> "$STATUS"
  say "-- $name: $note, ${dt}s"
  return "$rc"
}

say "long-context run $(date -u +%FT%TZ): MODEL=$MODEL DEVICE=$DEVICE CTX=$CTX DEPTHS=$DEPTHS TRIALS=$TRIALS"
say "  PPL_WINDOW=$PPL_WINDOW PPL_LIMIT=$PPL_LIMIT ROPE=$ROPE SEQ=$SEQ STEPS=$STEPS ACCUM=$ACCUM LR=$LR LORA_R=$LORA_R GRAD_CKPT=$GRAD_CKPT"
say "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 | sed 's/^/; /')"

# (0) build
if [ -z "${SKIP_BUILD:-}" ]; then
  run build 400 bash bench/device_build.sh "$BUILD" || { tail -30 "$LOG"; say "FATAL: the build failed"; exit 1; }
fi
if [ -d /tmp/deps ]; then # the libraries bench/device_build.sh unpacked (after the build: it makes them)
  export LD_LIBRARY_PATH="/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
fi
LMA="$BUILD/lmadapt"
if [ ! -x "$LMA" ]; then say "FATAL: no $LMA"; exit 1; fi
if [ "${CUDA_TEST:-0}" = 1 ]; then # the backend against the CPU: cached prefill, yarn rope past 8192
  run test_backend_cuda 200 "$BUILD/tests/test_backend_cuda"
  say "test_backend_cuda: $(grep -E 'passed' "$LOG" | tail -1); $(grep -c '^FAIL' "$LOG") FAIL lines in the log"
fi

DEV=(--device "$DEVICE")
[ -n "${THREADS:-}" ] && DEV+=(--threads "$THREADS")
DEQ=()
case "$MODEL" in *.gguf) [ "$DEVICE" = cpu ] && DEQ=(--dequantize) ;; esac # fp32 as the merged model is

# data: held-out text for perplexity, long training documents (one file = one document)
DATA="$WORK/data"
rm -rf "$DATA" && mkdir -p "$DATA/train"
SH=tests/data/tinyshakespeare.txt
head -c "$HELDOUT_BYTES" "$SH" > "$DATA/heldout.txt"
tail -c +"$((HELDOUT_BYTES + 1))" "$SH" > "$DATA/train/shakespeare_rest.txt"
cat README.md docs/*.md docs/*/*.md > "$DATA/train/docs.md" 2>/dev/null
find src -name '*.[ch]' | sort | xargs cat > "$DATA/train/src.c"
find cli -name '*.[ch]' | sort | xargs cat > "$DATA/train/cli.c"
say "data: held-out $(wc -c < "$DATA/heldout.txt") bytes; training files: $(cd "$DATA/train" && wc -c * | tr '\n' ' ')"

# eval PHASE MODEL [ARGS...]: one call per passkey context, then the perplexity
evals() {
  local ph="$1" m="$2" c
  shift 2
  local extra=("$@")
  for c in ${CTX//,/ }; do
    run "$ph passkey $c" "$T_EVAL" "$LMA" eval --model "$m" --task passkey --context "$c" --depths "$DEPTHS" \
      --passkey-trials "$TRIALS" "${DEV[@]}" ${extra[@]+"${extra[@]}"} --out "$WORK/$ph.passkey.$c.json"
  done
  run "$ph ppl" "$T_EVAL" "$LMA" eval --model "$m" --task "ppl:$DATA/heldout.txt" --ppl-window "$PPL_WINDOW" \
    --limit "$PPL_LIMIT" "${DEV[@]}" ${extra[@]+"${extra[@]}"} --out "$WORK/$ph.ppl.json"
}
rm -f "$WORK"/before.*.json "$WORK"/control.*.json "$WORK"/after.*.json
evals before "$MODEL" ${DEQ[@]+"${DEQ[@]}"}

# (b) the LoRA run with the RoPE scaled
RUN="$WORK/run"
MERGED="$WORK/merged"
rm -rf "$RUN" "$MERGED" "$WORK/zero_adapter" # nothing of an earlier call may stand in for this one's
CKPT=()
[ "$GRAD_CKPT" = 1 ] && CKPT=(--grad-ckpt)
LIM=$(( $(left) - RESERVE ))
[ "$LIM" -gt "$T_CPT" ] && LIM=$T_CPT
[ "$LIM" -lt 30 ] && LIM=30
run cpt "$LIM" "$LMA" cpt --model "$MODEL" --data "$DATA/train" --docs files --method lora --lora-r "$LORA_R" \
  --rope-scaling "$ROPE" --seq "$SEQ" --batch 1 --accum "$ACCUM" --steps "$STEPS" --lr "$LR" --warmup "$WARMUP" \
  ${CKPT[@]+"${CKPT[@]}"} --val-fraction 0 --save-every "$STEPS" "${DEV[@]}" --out "$RUN" --overwrite
TOK=$(grep -o 'training data: [0-9]* documents, [0-9]* tokens' "$LOG" | tail -1 | awk '{print $5}')
[ -n "$TOK" ] && say "training tokens $TOK; the run reads $((STEPS * ACCUM * SEQ)) = $(awk -v a=$((STEPS * ACCUM * SEQ)) -v b="$TOK" 'BEGIN { printf "%.1f", a / b }') epochs"
[ -f "$RUN/metrics.jsonl" ] && cp "$RUN/metrics.jsonl" "$OUT/metrics.jsonl"
ADAPTER="$RUN/final"
if [ ! -f "$ADAPTER/adapter_config.json" ] && [ -f "$RUN/latest" ]; then
  ADAPTER="$RUN/$(cat "$RUN/latest")"
  say "NOTE: no $RUN/final (cpt stopped early): merging the checkpoint $ADAPTER"
  printf 'adapter\t0\t0\tcheckpoint %s (cpt did not finish)\n' "$(cat "$RUN/latest")" >> "$STATUS"
fi

# (c) merge, and the rope scaling of the merged config
if [ -f "$ADAPTER/adapter_config.json" ]; then
  run merge "$T_MERGE" "$LMA" merge --model "$MODEL" --adapter "$ADAPTER" --out "$MERGED" --overwrite
  if [ -f "$MERGED/config.json" ]; then
    python3 - "$MERGED/config.json" "$ROPE" "$STATUS" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
path, rope, status = sys.argv[1], sys.argv[2], sys.argv[3]
c = json.load(open(path))
kind, factor = rope.split(":")[0], float(rope.split(":")[1])
rs = c.get("rope_scaling") or {}
print("merged config.json: max_position_embeddings %s, rope_scaling %s" % (c.get("max_position_embeddings"), json.dumps(rs)))
if rs.get("rope_type", rs.get("type")) != kind or float(rs.get("factor", 0)) != factor:
    orig = c["max_position_embeddings"]
    rs = {"rope_type": kind, "factor": factor}
    if kind in ("yarn", "llama3"):
        rs["original_max_position_embeddings"] = orig
        c["max_position_embeddings"] = int(orig * factor)
    if kind == "llama3":
        rs.update(low_freq_factor=1.0, high_freq_factor=4.0)
    c["rope_scaling"] = rs
    json.dump(c, open(path, "w"), indent=1)
    print("PATCHED merged config.json (merge did not carry the run's rope scaling): %s, max_position_embeddings %d"
          % (json.dumps(rs), c["max_position_embeddings"]))
    open(status, "a").write("rope_scaling\t0\t0\tPATCHED into the merged config.json by this script\n")
EOF
  fi
else
  say "FATAL: no adapter to merge (cpt failed before any checkpoint)"
  printf 'merge\t1\t0\tskipped: no adapter\n' >> "$STATUS"
fi

# (d) after; and the control (CONTROL=1): the base with the run's rope scaling and no training,
# through the trained adapter with its lora_B zeroed (B = 0: the adapter adds nothing, its
# rope_scaling.json still applies)
if [ -f "$MERGED/config.json" ]; then evals after "$MERGED"; else say "after: skipped (no merged model)"; fi
if [ "${CONTROL:-1}" = 1 ] && [ -f "$ADAPTER/adapter_config.json" ]; then
  ZERO="$WORK/zero_adapter"
  rm -rf "$ZERO" && mkdir -p "$ZERO" && cp "$ADAPTER"/*.json "$ZERO"/ && rm -f "$ZERO/trainer_state.json"
  python3 - "$ADAPTER/adapter_model.safetensors" "$ZERO/adapter_model.safetensors" <<'EOF' 2>&1 | tee -a "$LOG"
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
data = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
zeroed = 0
for name, t in header.items():
    if name != "__metadata__" and "lora_B" in name:
        a, b = t["data_offsets"]
        data[8 + n + a:8 + n + b] = bytes(b - a)
        zeroed += 1
open(dst, "wb").write(data)
print("control adapter: %d lora_B tensors zeroed" % zeroed)
EOF
  if [ -f "$ZERO/rope_scaling.json" ]; then
    evals control "$MODEL" --adapter "$ZERO" ${DEQ[@]+"${DEQ[@]}"}
  else
    say "control: skipped (the adapter has no rope_scaling.json: an lmadapt without it)"
  fi
fi


# (e) before.json, control.json, after.json, table.md
python3 - "$WORK" "$OUT" "$STATUS" "$CTX" "$PPL_WINDOW" "$MODEL" "$ROPE" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, sys
work, out, status_path, ctx, win, model, rope = sys.argv[1:8]
ctxs = [int(c) for c in ctx.split(",")]
status = {}
for line in open(status_path):
    f = line.rstrip("\n").split("\t")
    status[f[0]] = {"rc": int(f[1]), "seconds": float(f[2]), "note": f[3]}
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
phases = [("before", "base"), ("control", rope + ", untrained"), ("after", rope + " + LoRA run")]
res = {}
for ph, _ in phases:
    d = {"passkey": {}, "ppl": None, "status": {}}
    for c in ctxs:
        j = load(os.path.join(work, "%s.passkey.%d.json" % (ph, c)))
        st = status.get("%s passkey %d" % (ph, c), {"note": "not run"})
        d["status"]["passkey %d" % c] = st
        if j and st["note"] == "ok":
            d["model"] = j.get("model")
            d["passkey"][str(c)] = j["results"][0]
    j = load(os.path.join(work, "%s.ppl.json" % ph))
    st = status.get("%s ppl" % ph, {"note": "not run"})
    d["status"]["ppl"] = st
    if j and st["note"] == "ok":
        d["model"] = j.get("model")
        d["ppl"] = j["results"][0]
    res[ph] = d
    if any(v["note"] != "not run" for v in d["status"].values()):
        json.dump(d, open(os.path.join(out, ph + ".json"), "w"), indent=1)
phases = [(ph, label) for ph, label in phases if any(v["note"] != "not run" for v in res[ph]["status"].values())]
depths = []
for d in res.values():
    for r in d["passkey"].values():
        for cell in r["cells"]:
            if cell["depth"] not in depths:
                depths.append(cell["depth"])
def failed(ph, key):
    return "**%s**" % res[ph]["status"][key]["note"]
def cell_text(ph, c, depth):
    r = res[ph]["passkey"].get(str(c))
    if r is None:
        return failed(ph, "passkey %d" % c)
    for cell in r["cells"]:
        if cell["depth"] == depth:
            return "%d/%d" % (cell["correct"], cell["n"])
    return "-"
def acc(ph, c):
    r = res[ph]["passkey"].get(str(c))
    if r is None or not r["n"]:
        return failed(ph, "passkey %d" % c)
    return "**%.2f** (%d/%d)" % (r["correct"] / r["n"], r["correct"], r["n"])
L = ["# Context extension %s: before / after" % rope, "",
     "Base model %s. Passkey retrieval (greedy; a 5-digit key hidden in filler at each depth of a "
     "context of N tokens): correct/keys per cell. Columns: %s." % (model, "; ".join("%s = %s" % p for p in phases)), ""]
L.append("| depth \\ context | " + " | ".join("%d %s" % (c, ph) for c in ctxs for ph, _ in phases) + " |")
L.append("|---" * (1 + len(ctxs) * len(phases)) + "|")
for dp in depths or [None]:
    L.append("| %s | " % ("%.2f" % dp if dp is not None else "-") +
             " | ".join(cell_text(ph, c, dp) for c in ctxs for ph, _ in phases) + " |")
L.append("| all depths | " + " | ".join(acc(ph, c) for c in ctxs for ph, _ in phases) + " |")
L.append("")
L.append("| held-out perplexity (first bytes of tinyshakespeare, not trained on), window %s | ppl | tokens | bits/byte | vs base |" % win)
L.append("|---|---|---|---|---|")
b = res["before"]["ppl"]
for ph, label in phases:
    p = res[ph]["ppl"]
    if p:
        ch = "%+.2f%%" % (100 * (p["ppl"] / b["ppl"] - 1)) if b else "n/a"
        L.append("| %s | %.3f | %d | %.4f | %s |" % (label, p["ppl"], p["tokens"], p["bits_per_byte"], ch))
    else:
        L.append("| %s | %s | | | |" % (label, failed(ph, "ppl")))
L.append("")
L.append("| step | status | seconds |")
L.append("|---|---|---|")
for k, v in status.items():
    L.append("| %s | %s | %.1f |" % (k, v["note"] if v["note"] == "ok" else "**%s**" % v["note"], v["seconds"]))
bad = [k for k, v in status.items() if v["note"] != "ok"]
L.append("")
L.append("Steps not ok: %s" % (", ".join(bad) if bad else "none"))
text = "\n".join(L) + "\n"
open(os.path.join(out, "table.md"), "w").write(text)
print(text)
EOF
say "done $(date -u +%FT%TZ); files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
# exit 1 when a step failed or ran out of time (the table says which)
if awk -F'\t' '$2 != 0 { bad = 1 } END { exit !bad }' "$STATUS"; then exit 1; fi
exit 0
