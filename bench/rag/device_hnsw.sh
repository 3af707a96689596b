#!/usr/bin/env bash
# HNSW at 1M x 384 on the device host's CPU cores (the lead runs it there: no GPU work, no
# internet): lmadapt's HNSW (src/rag/hnsw.c) beside faiss-cpu's IndexHNSWFlat on the same
# random unit vectors, same queries, same exact truth (lma_rag_exact_topk, BLAS):
#   1. builds bench_rag_hnsw alone, CPU only (-DLMA_CUDA=OFF, BUILD, default build-cpu),
#      with the .deps/ Debian packages as bench/device_build.sh does;
#   2. installs the carried faiss-cpu wheel (bench/rag/.wheels, from `pip download
#      faiss-cpu==1.15.1 packaging --python-version 3.12 --only-binary=:all: --platform
#      manylinux_2_28_x86_64`) with --no-deps into /tmp/faisspkg;
#   3. bench_rag_hnsw N DIM NQ then hnsw_faiss.py on its files: both build with THREADS
#      threads (default nproc), find the smallest ef with recall@10 >= R (default 0.95) by
#      batch searches on THREADS threads, then time that ef one query at a time on one
#      thread (p50/p99);
#   4. writes $OUT/hnsw_device.jsonl (every line of both sides), $OUT/hnsw_device.md (the
#      table) and $OUT/hnsw_device.log.
# M 16, efConstruction 100 on both sides (as the 20K and 50K runs in bench/RESULTS.md).
# Usage (on the device): bash bench/rag/device_hnsw.sh     carry: .deps bench/rag/.wheels
# N=200000 (etc.) for a smaller run; each side has a time limit (LIMIT_S, default 250 s) so
# that the whole stays under the device's 10 minutes; a side cut off says so in the table.
# SIDE=lmadapt or SIDE=faiss runs one side alone (LIMIT_S 480: the first call also builds;
# two calls, the same vectors: they are drawn from fixed per-row seeds) when both do not
# fit in one call, as expected at 1M (bench/RESULTS.md: the estimate from 100K here).
# EFS=EF1,EF2,... (both sides, or SIDE=faiss alone): each ef swept and timed one query at a
# time, no tuning: e.g. SIDE=faiss EFS=40960,45056,49152 for faiss's ef at recall 0.95, 1M.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hnsw_device}; mkdir -p "$OUT"
N=${N:-1000000} DIM=${DIM:-384} NQ=${NQ:-200} M=${M:-16} EFC=${EFC:-100} R=${R:-0.95}
T=${THREADS:-$(nproc)} BUILD=${BUILD:-build-cpu} SIDE=${SIDE:-both}
[ "$SIDE" = both ] && LIMIT_S=${LIMIT_S:-250} || LIMIT_S=${LIMIT_S:-480}
PY=${PY:-/opt/torch/.venv/bin/python3}
LOG="$OUT/hnsw_device.log" J="$OUT/hnsw_device.jsonl"
: >"$J"
D=/tmp/deps
if [ -d .deps ]; then
    mkdir -p "$D"
    for f in .deps/*.deb; do dpkg -x "$f" "$D"; done
    find "$D" -name '*.pc' -exec sed -i "s|=/usr|=$D/usr|" {} +
    export PKG_CONFIG_PATH="$D/usr/lib/x86_64-linux-gnu/pkgconfig:$D/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig:${PKG_CONFIG_PATH:-}"
    export LD_LIBRARY_PATH="$D/usr/lib/x86_64-linux-gnu:$D/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
fi
{
    echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    echo "# N=$N DIM=$DIM NQ=$NQ M=$M EFC=$EFC R=$R threads=$T side=$SIDE limit ${LIMIT_S}s/side load $(cut -d' ' -f1 /proc/loadavg)"
    t0=$(date +%s)
    if [ ! -x "$BUILD/bench_rag_hnsw" ]; then
        cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLMA_CUDA=OFF >"$OUT/build.log" 2>&1 &&
            cmake --build "$BUILD" -j"$(nproc)" --target bench_rag_hnsw >>"$OUT/build.log" 2>&1 ||
            { echo "build failed: $OUT/build.log"; tail -20 "$OUT/build.log"; exit 1; }
    fi
    echo "# build: $(($(date +%s) - t0)) s"
    "$PY" -m pip install -q --upgrade --no-deps --no-index --target /tmp/faisspkg bench/rag/.wheels/*.whl 2>&1 | tail -2 ||
        for w in bench/rag/.wheels/*.whl; do "$PY" -m zipfile -e "$w" /tmp/faisspkg; done # no pip: a wheel is a zip
    export PYTHONPATH=/tmp/faisspkg${PYTHONPATH:+:$PYTHONPATH}
    "$PY" -c "import faiss; print('# faiss', faiss.__version__)" || echo "# faiss did not import: the lmadapt side only"
    DIR=$(mktemp -d /tmp/lma_hnsw_dev.XXXXXX)
    t0=$(date +%s)
    EFS_BOTH=${EFS:-auto:$R} # EFS=EF1,EF2,...: sweep and time these ef values instead of tuning
    EFS=$EFS_BOTH
    [ "$SIDE" = faiss ] && EFS=none # the files only
    OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T timeout "$LIMIT_S" \
        "$BUILD/bench_rag_hnsw" "$N" "$DIM" "$NQ" "$DIR" "$M" "$EFC" "$EFS" "$T" | tee -a "$J"
    echo "# lmadapt side ($EFS): rc ${PIPESTATUS[0]}, $(($(date +%s) - t0)) s (data + exact truth + build + search)"
    t0=$(date +%s)
    if [ "$SIDE" = lmadapt ]; then
        echo "# faiss side: not run (SIDE=lmadapt)"
    elif [ -s "$DIR/truth.i64" ]; then
        OMP_NUM_THREADS=$T timeout "$LIMIT_S" \
            "$PY" bench/rag/hnsw_faiss.py "$DIR" "$N" "$DIM" "$M" "$EFC" "$EFS_BOTH" "$T" | tee -a "$J"
        echo "# faiss side: rc ${PIPESTATUS[0]}, $(($(date +%s) - t0)) s (load + build + search)"
    else
        echo "# faiss side: not run (no data: the lmadapt side failed before writing it)"
    fi
    rm -rf "$DIR"
    "$PY" - "$J" "$OUT/hnsw_device.md" "$N" "$DIM" "$NQ" "$M" "$EFC" "$R" "$T" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
n, dim, nq, M, efc, R, T = sys.argv[3:10]
md = [f"N = {n}, dim {dim}, {nq} queries, M {M}, efConstruction {efc}, target recall@10 >= {R}; "
      f"build and recall sweep on {T} threads, latency one query at a time on one thread.", "",
      "| | build (s) | smallest ef with recall@10 >= R | recall@10 | p50 / p99 (ms) | exact scan (ms/query) |",
      "|---|---|---|---|---|---|"]
for impl in ("lmadapt", "faiss"):
    mine = [r for r in rows if r["impl"] == impl]
    ch = [r for r in mine if r.get("chosen")]
    if not ch:  # an explicit EFS list: the smallest timed ef that reaches R
        ch = sorted((r for r in mine if "p50_ms" in r and r["recall10"] >= float(R)), key=lambda r: r["ef"])[:1]
    if not mine:
        md.append(f"| {impl} | not run here | | | | |")
        continue
    if not ch:
        md.append(f"| {impl} | {mine[0]['build_s'] if mine else '-'} | not reached (cut off or failed) | "
                  f"{max((r['recall10'] for r in mine), default='-')} | - | - |")
        continue
    c = ch[-1]
    md.append(f"| {impl} | {c['build_s']} | {c['ef']} | {c['recall10']} | {c['p50_ms']:.2f} / {c['p99_ms']:.2f} | "
              f"{c.get('exact_ms', '-')} |")
md.append("")
md.append("Sweep (ef: recall@10): " + "; ".join(
    f"{impl} " + ", ".join(f"{r['ef']}: {r['recall10']}" for r in rows if r["impl"] == impl) for impl in ("lmadapt", "faiss")))
open(sys.argv[2], "w").write("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
} 2>&1 | tee "$LOG"
