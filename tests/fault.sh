#!/usr/bin/env bash
# Fault injection (issue 16, docs/reliability.md), SQLite's style: an lmadapt built with
# -DLMA_FAULT=ON (tests/fault_wrap.c) makes its N-th allocation or write fail
# (LMA_FAULT_AT=N). For a short training run (resume of a 2-step run to 4 steps) and for
# merge --overwrite, every fault point is tried in turn (a spread sample of LMA_FAULT_POINTS,
# default 80, unless LMA_FAULT_ALL=1): each run must exit 0 with complete outputs, or
# non-zero with a one-line message, never die of a signal or a sanitizer report, and leave
# the previous outputs intact.
# Usage: tests/fault.sh LMADAPT(built with LMA_FAULT) SRC_DIR
set -u
B=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export LMA_QUIET=1 LMA_THREADS=1 OMP_WAIT_POLICY=passive
# a faulted run may leak on its way out; crashes, UB and lost data are what this test looks for
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
unset LMA_FAULT_AT LMA_FAULT_COUNT
sums() { (cd "$1" 2>/dev/null && find . -type f | sort | xargs -r sha256sum); }

head -c 20000 "$SRC/README.md" > text.txt
$B pretrain --data text.txt --out base0 --batch 2 --seq 32 --preset tiny --vocab-size 300 --steps 2 --save-every 2 \
    >/dev/null 2>&1 || { echo "FAIL setup: pretrain"; exit 1; }
printf '%s\n' '{"messages":[{"role":"user","content":"What is it?"},{"role":"assistant","content":"A toolkit."}]}' \
    '{"messages":[{"role":"user","content":"Which?"},{"role":"assistant","content":"GGUF."}]}' > chat.jsonl
$B sft --model base0/final --data chat.jsonl --out tuned --method lora --steps 1 --batch 2 --seq 64 \
    --template chatml >/dev/null 2>&1 || { echo "FAIL setup: sft"; exit 1; }
$B merge --model base0/final --adapter tuned/final --out merged0 >/dev/null 2>&1 || { echo "FAIL setup: merge"; exit 1; }

count() { LMA_FAULT_COUNT=1 "$@" 2>&1 >/dev/null | sed -n 's/^lmadapt-fault: \([0-9]*\) calls$/\1/p' | tail -1; }
points() { # N: the points to try, spread evenly over 1..N
    local n=$1 k=${LMA_FAULT_POINTS:-80}
    if [ "${LMA_FAULT_ALL:-0}" = 1 ] || [ "$n" -le "$k" ]; then seq 1 "$n"
    else awk -v n="$n" -v k="$k" 'BEGIN { for (i = 0; i < k; i++) print 1 + int(i * (n - 1) / (k - 1)) }' | uniq; fi
}
fails=0 tried=0 failed_runs=0
bad() { fails=$((fails + 1)); echo "FAIL $*"; }
# judge K RC STDERR-FILE CMD: the common properties of one faulted run
judge() {
    local k=$1 rc=$2 err=$3 what=$4
    tried=$((tried + 1))
    if [ "$rc" -ge 128 ] || grep -q "Sanitizer\|runtime error" "$err"; then bad "$what at fault $k: died (rc $rc): $(head -c 300 "$err")"; return 1; fi
    if [ "$rc" != 0 ]; then
        failed_runs=$((failed_runs + 1))
        grep -q "^lmadapt [a-z]*: ." "$err" || { bad "$what at fault $k: rc $rc without a message"; return 1; }
    fi
    return 0
}

# 1. training: resume base (2 steps) to 4 steps
cp -r base0 run && n_train=$(count $B pretrain --resume run --steps 4) && rm -rf run
old_ckpt=$(sums base0/ckpt-000002) old_final=$(sums base0/final)
for k in $(points "$n_train"); do
    rm -rf run && cp -r base0 run
    LMA_FAULT_AT=$k $B pretrain --resume run --steps 4 >/dev/null 2>err; rc=$?
    judge "$k" "$rc" err "pretrain --resume" || continue
    [ "$(sums run/ckpt-000002)" = "$old_ckpt" ] || bad "training fault $k: ckpt-000002 changed"
    if [ "$rc" != 0 ]; then
        f=$(sums run/final)
        if [ "$f" != "$old_final" ]; then
            for x in config.json model.safetensors tokenizer.json; do [ -s run/final/$x ] || bad "training fault $k: final/ torn"; done
        fi
    else
        for x in config.json model.safetensors tokenizer.json; do [ -s run/final/$x ] || bad "training fault $k: rc 0 but final/$x missing"; done
    fi
done
echo "training: $n_train fault points, tried $(points "$n_train" | wc -l)"

# 2. merge --overwrite over an earlier merge
n_merge=$(cp -r merged0 m && count $B merge --model base0/final --adapter tuned/final --out m --overwrite)
ref=$(sums m) old=$(sums merged0)
rm -rf m
for k in $(points "$n_merge"); do
    rm -rf m m.tmp.* && cp -r merged0 m
    LMA_FAULT_AT=$k $B merge --model base0/final --adapter tuned/final --out m --overwrite >/dev/null 2>err; rc=$?
    judge "$k" "$rc" err "merge" || continue
    got=$(sums m)
    if [ "$rc" != 0 ]; then [ "$got" = "$old" ] || [ "$got" = "$ref" ] || bad "merge fault $k: m/ is neither the old nor the new model"
    else [ "$got" = "$ref" ] || bad "merge fault $k: rc 0 but m/ differs from a clean merge"; fi
done
echo "merge: $n_merge fault points, tried $(points "$n_merge" | wc -l)"
echo "fault: $tried faulted runs ($failed_runs exited non-zero with a message), $fails failures"
[ "$fails" = 0 ] && [ "$n_train" -gt 0 ] && [ "$n_merge" -gt 0 ]
