#!/bin/sh
# Dedup and filter throughput (examples/s) of `lmadapt data` on 2 threads, on the
# public Alpaca set (2k) and on a generated 1M-line set, with the datasketch
# baseline for dedup (bench/data_dedup_datasketch.py, 100k lines of the big set).
# Usage: bench/data_bench.sh [BUILD_DIR [ALPACA_JSON]]   (default build; Release)
# ALPACA_JSON defaults to tests/data/alpaca_small_2k.json (2000 Stanford Alpaca records,
# whole; source in tests/data/MANIFEST.md).
set -eu
B=${1:-build}/lmadapt
A=${2:-$(dirname "$0")/../tests/data/alpaca_small_2k.json}
[ -f "$A" ] || { echo "data_bench: $A not found (give the Alpaca JSON file as the 2nd argument)" >&2; exit 2; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 LMA_QUIET=1
python3 - "$W/gen1m.jsonl" <<'PY'
import random, sys
r = random.Random(1)
words = ("the of and to in is was for on that with as by at from it an be this are or have which one had not "
         "but what all were when we there can more if no out so said up its about into than them only other time "
         "some could these two may first then do any like my now over such our man me even most made after also "
         "did many before must through back years where much your way well down should because each just those "
         "people how too little state good very make world still own see men work long get here between both "
         "life being under never day same another know while last might us great old year off come since against "
         "go came right used take three").split()
with open(sys.argv[1], "w") as f:
    prev = []
    for i in range(1000000):
        if prev and r.random() < 0.1:            # 10% exact or near repeats of a recent line
            q, a = r.choice(prev)
            if r.random() < 0.5:
                a = a.split(); a[r.randrange(len(a))] = "zebra"; a = " ".join(a)
        else:
            q = " ".join(r.choice(words) for _ in range(16)) + " %d" % i
            a = " ".join(r.choice(words) for _ in range(40))
            prev = (prev + [(q, a)])[-1000:]
        f.write('{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"%s"}]}\n' % (q, a))
PY
head -n 100000 "$W/gen1m.jsonl" > "$W/gen100k.jsonl"
now() { python3 -c 'import time; print(time.perf_counter())'; }
run() { # label input command...
    label=$1; shift; input=$1; shift
    n=$(grep -c . "$input" || true); [ "$input" = "$A" ] && n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$A")
    t0=$(now); "$@" > "$W/out.txt"; t1=$(now)
    python3 -c "import sys; n=$n; dt=$t1-$t0; print(f'| $label | {n} | {dt:.2f} | {n/dt:,.0f} |')"
}
echo "| run | examples | seconds | examples/s |"
echo "|---|---|---|---|"
run "dedup alpaca 2k" "$A" "$B" data dedup "$A" -o "$W/d.jsonl"
run "filter alpaca 2k" "$A" "$B" data filter "$A" -o "$W/f.jsonl"
run "dedup generated 1M" "$W/gen1m.jsonl" "$B" data dedup "$W/gen1m.jsonl" -o "$W/d.jsonl"
run "filter generated 1M" "$W/gen1m.jsonl" "$B" data filter "$W/gen1m.jsonl" -o "$W/f.jsonl"
OMP_NUM_THREADS=1 run "dedup generated 1M, 1 thread" "$W/gen1m.jsonl" "$B" data dedup "$W/gen1m.jsonl" -o "$W/d.jsonl"
OMP_NUM_THREADS=1 run "filter generated 1M, 1 thread" "$W/gen1m.jsonl" "$B" data filter "$W/gen1m.jsonl" -o "$W/f.jsonl"
run "dedup generated 100k" "$W/gen100k.jsonl" "$B" data dedup "$W/gen100k.jsonl" -o "$W/d.jsonl"
"$B" data dedup "$W/gen100k.jsonl" -o "$W/d.jsonl" | head -1
echo "baseline:"
python3 "$(dirname "$0")/data_dedup_datasketch.py" "$W/gen100k.jsonl"
python3 "$(dirname "$0")/data_dedup_datasketch.py" "$A"
