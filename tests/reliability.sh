#!/usr/bin/env bash
# Reliability (issue 16, docs/reliability.md): nothing a user has is lost, every bad value
# is refused, every output is valid or absent. Each section tries several variations.
# Usage: tests/reliability.sh LMADAPT SRC_DIR
set -u
B=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export LMA_QUIET=1 LMA_THREADS=2
fails=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# expect RC WHAT-IN-STDERR COMMAND...: the exit status and a phrase of the one-line message
expect() {
    local rc=$1 phrase=$2; shift 2
    local out got
    out=$(timeout 60 "$@" 2>&1 >/dev/null); got=$?
    if [ "$got" = "$rc" ] && grep -qF -- "$phrase" <<<"$out"; then ok "$* -> $rc ($phrase)"
    else bad "$* -> got $got, want $rc with '$phrase': $out"; fi
}
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum) 2>/dev/null; }

head -c 30000 "$SRC/README.md" > text.txt
TRAIN="--batch 2 --seq 32 --preset tiny --vocab-size 300 --save-every 2"
$B pretrain --data text.txt --out base $TRAIN --steps 4 >/dev/null 2>&1 || { echo "FAIL setup: pretrain"; exit 1; }
cat > chat.jsonl <<'J'
{"messages":[{"role":"user","content":"What is lmadapt?"},{"role":"assistant","content":"A toolkit in C."}]}
{"messages":[{"role":"user","content":"Which formats?"},{"role":"assistant","content":"safetensors and GGUF."}]}
{"messages":[{"role":"user","content":"Is it fast?"},{"role":"assistant","content":"It is measured."}]}
J
SFT="--data chat.jsonl --batch 2 --seq 64 --steps 2 --template chatml"

echo "# class 1: a command never writes into a run or model it did not start"
before=$(sums base)
expect 2 "already holds a run" $B pretrain --data text.txt --out base $TRAIN --steps 4
check "a refused second run leaves the first intact" test "$before" = "$(sums base)"
mkdir -p notarun && echo keep > notarun/notes.txt
expect 2 "is not empty" $B pretrain --data text.txt --out notarun $TRAIN --steps 2
check "a folder with other files keeps them" grep -q keep notarun/notes.txt
cp -r base run2
$B pretrain --data text.txt --out run2 $TRAIN --steps 2 --overwrite >/dev/null 2>&1
check "--overwrite replaces the run whole (no checkpoint of the old run left)" \
    test ! -e run2/ckpt-000004 -a -e run2/ckpt-000002 -a -e run2/final/model.safetensors
expect 2 "is inside the input --model" $B sft --model base/final $SFT --out base/final/sub
expect 2 "is the input --model" $B merge --model base/final --adapter base/final --out base/final
ln -s base/final link
expect 2 "is the input --model" $B merge --model link --adapter base/final --out base/final
expect 2 "holds the input --model" $B sft --model base/final $SFT --out base --overwrite
check "an --overwrite that would delete the input is refused before any work" test -e base/final/model.safetensors
expect 2 "is inside the input --model" $B export --model base/final --out base/final/m.gguf
$B sft --model base/final $SFT --out tuned >/dev/null 2>&1
expect 2 "already holds a run" $B sft --model base/final $SFT --out tuned --method lora
$B sft --model base/final $SFT --out tuned --method lora --overwrite >/dev/null 2>&1
check "lora into a full-sft run with --overwrite leaves no stale full model" \
    test -e tuned/final/adapter_model.safetensors -a ! -e tuned/final/model.safetensors
mkdir -p merged && echo x > merged/old.txt
expect 2 "is not empty" $B merge --model base/final --adapter tuned/final --out merged
$B merge --model base/final --adapter tuned/final --out merged --overwrite >/dev/null 2>&1
check "merge --overwrite replaces the folder whole" test -e merged/model.safetensors -a ! -e merged/old.txt

mkdir -p failed && echo '{"lmadapt": "run", "version": 1, "command": "pretrain", "settings": {}}' > failed/run.json
expect 0 "a run that saved nothing" $B pretrain --data text.txt --out failed $TRAIN --steps 1

echo "# class 2: resume keeps the run's settings"
for flag in "--lr 0.01" "--batch 4" "--seq 16" "--schedule linear" "--accum 2" "--min-lr 0" "--warmup 1"; do
    expect 2 "conflicts with the run's" $B pretrain --resume base $flag
done
expect 2 "may only raise it" $B pretrain --resume base --steps 3
cp -r base/final m1
expect 2 "started by 'lmadapt pretrain'" $B sft --model m1 $SFT --resume base
expect 2 "not a run folder" $B pretrain --resume notarun
before=$(sums base/ckpt-000004)
$B pretrain --resume base --steps 6 --threads 1 >/dev/null 2>&1
check "--steps may grow on resume (6 steps run, run.json updated)" \
    grep -q '"steps":[[:space:]]*"6"' base/run.json
check "resume leaves the earlier checkpoint as it was" test "$before" = "$(sums base/ckpt-000004)"
# flags are stored as their state (run.json version 2): a packed sft run has "no-pack": "0"
check "run.json v2 stores --no-pack's state (packed: \"0\")" \
    sh -c 'grep -q "\"version\":[[:space:]]*2" tuned/run.json && grep -q "\"no-pack\":[[:space:]]*\"0\"" tuned/run.json'
RES="--model base/final $SFT --method lora"
expect 2 "conflicts with the run's --no-pack 0" $B sft $RES --resume tuned --no-pack
# version 1 stored the variable: "no-pack": "1" meant packed, "0" unpacked
cp -r tuned legacy
sed -i 's/"version":[[:space:]]*2/"version": 1/; s/"no-pack":[[:space:]]*"0"/"no-pack": "1"/' legacy/run.json
expect 2 "conflicts with the run's --no-pack 1" $B sft $RES --resume legacy --no-pack
sed -i 's/"no-pack": "1"/"no-pack": "0"/' legacy/run.json
expect 0 "" $B sft $RES --resume legacy --no-pack
check "a resumed version-1 run is rewritten as version 2 (unpacked: \"no-pack\": \"1\")" \
    sh -c 'grep -q "\"version\":[[:space:]]*2" legacy/run.json && grep -q "\"no-pack\":[[:space:]]*\"1\"" legacy/run.json'

echo "# class 3: output sets are written whole"
printf '{"text":"a"}\n{"text":"b"}\n{"text":"c"}\n' > d.jsonl
expect 2 "give each output its own path" $B data split d.jsonl --train same.jsonl --val same.jsonl
expect 2 "give each output its own path" $B data filter d.jsonl -o f.jsonl --removed f.jsonl
expect 2 "give each output its own path" $B data filter d.jsonl -o f.jsonl --report f.jsonl
check "refused outputs are not created" test ! -e same.jsonl -a ! -e f.jsonl
# kill -9 at random moments of merge --overwrite: merged/ is always the old set or the new one
$B merge --model base/final --adapter tuned/final --out merged --overwrite >/dev/null 2>&1
ref=$(sums merged)
torn=0
for delay in 0.01 0.03 0.05 0.08 0.12 0.2; do
    $B merge --model base/final --adapter tuned/final --out merged --overwrite >/dev/null 2>&1 &
    pid=$!; sleep $delay; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    [ "$(sums merged)" = "$ref" ] || torn=1
done
check "kill -9 during merge never leaves a torn model folder" test $torn = 0
$B merge --model base/final --adapter tuned/final --out merged --overwrite >/dev/null 2>&1
check "the next merge removes the killed one's temporaries" sh -c '! ls -d merged.tmp.* 2>/dev/null'
# kill -9 during training: final/ is absent or complete
torn=0
for delay in 0.3 0.6 0.9 1.2 1.6; do
    rm -rf k
    $B pretrain --data text.txt --out k $TRAIN --steps 6 >/dev/null 2>&1 &
    pid=$!; sleep $delay; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    if [ -e k/final ]; then
        for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do [ -s k/final/$f ] || torn=1; done
    fi
done
check "kill -9 during training leaves final/ absent or complete" test $torn = 0
# SIGINT during a data command leaves no temporary file
awk 'BEGIN { for (i = 0; i < 300000; i++) printf "{\"text\":\"line %d of a long file with words %d\"}\n", i, i * 7 }' > big.jsonl
left=0
for delay in 0.2 0.5; do
    $B data dedup big.jsonl -o dd.jsonl >/dev/null 2>&1 &
    pid=$!; sleep $delay; kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null
    ls dd.jsonl.tmp.* >/dev/null 2>&1 && left=1
done
check "SIGINT leaves no *.tmp.PID file" test $left = 0

echo "# class 5: inputs are regular files"
mkdir -p zero && cp base/final/* zero/ && ln -sf /dev/zero zero/config.json
expect 1 "not a regular file" $B score --model zero --ids 1,2
mkdir -p fifo && cp base/final/* fifo/ && rm fifo/tokenizer.json && mkfifo fifo/tokenizer.json
expect 1 "not a regular file" $B score --model fifo --text hello
mkfifo pipe
expect 1 "not a regular file" $B data stats pipe
expect 1 "not a regular file" $B sft --model base/final --data pipe --out s5 --steps 1
expect 1 "is a directory" $B score --model base/final --file base
expect 1 "is a directory" $B generate --model base/final --prompt-file base

echo "# class 6: no wrong result with exit 0"
cp -r base/final nanm
hl=$(od -An -t u8 -N8 nanm/model.safetensors | tr -d ' ')
printf '\x00\x00\xc0\x7f' | dd of=nanm/model.safetensors bs=1 seek=$((8 + hl + 16)) conv=notrunc 2>/dev/null
expect 1 "non-finite value" $B generate --model nanm --prompt hello --max-tokens 4
expect 1 "non-finite value" $B score --model nanm --text "hello there"
expect 1 "non-finite value" $B sft --model nanm $SFT --out nan_sft
check "a refused model writes no run output" test ! -e nan_sft/final
expect 1 "no chat_template" sh -c "echo hi | $B chat --model base/final --max-tokens 2"
$B sft --model base/final $SFT --out withtmpl >/dev/null 2>&1
check "sft --template stores the template in the model" grep -q im_start withtmpl/final/tokenizer_config.json
check "chat works on the model trained with --template" sh -c "echo hi | $B chat --model withtmpl/final --max-tokens 2 >/dev/null 2>&1"
mkdir -p evalroot/empty evalroot2/sub && printf '{"q":"%s"}\n' "a b c d e f g h i j k l m n" > evalroot2/sub/e.jsonl
expect 1 "no evaluation documents" $B data decontam d.jsonl --eval evalroot -o dc.jsonl
expect 1 "cannot open" $B data decontam d.jsonl --eval /nonexistent -o dc.jsonl
expect 0 "" $B data decontam d.jsonl --eval evalroot2 -o dc.jsonl
printf '%s\n' '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}' \
    '{"messages":[{"role":"user","content":5},{"role":"assistant","content":"b"}]}' \
    '{"messages":[{"role":"user","content":"c"},{"role":"assistant","content":{"x":1}}]}' > nonstr.jsonl
expect 1 "nonstr.jsonl:2: messages[0] content must be a string" $B sft --model base/final --data nonstr.jsonl --out ns --steps 1 --template chatml
expect 1 "nonstr.jsonl:1: no chat_template in tokenizer_config.json; name" $B sft --model base/final --data nonstr.jsonl --out ns2 --steps 1
expect 0 "2 unreadable records skipped (lines 2, 3)" $B data stats nonstr.jsonl
expect 0 "2 unreadable records skipped (lines 2, 3)" $B data dedup nonstr.jsonl -o nd.jsonl
expect 0 "2 unreadable records skipped (lines 2, 3)" $B data split nonstr.jsonl --train nt.jsonl --valid nv.jsonl
check "invalid records are not copied" test "$(cat nd.jsonl | wc -l)" = 1

echo "# class 8: bounded paths"
head -c 5000000 /dev/zero | tr '\0' 'a' > longword.txt
expect 0 "wrote" timeout 30 $B tokenizer train --vocab-size 300 --out tw longword.txt --quiet
if [ -z "${ASAN_OPTIONS:-}" ]; then # AddressSanitizer cannot start under ulimit -v (its shadow memory)
    truncate -s 300M zeros.bin
    expect 1 "does not fit in memory" sh -c "ulimit -v 250000; $B tokenizer train --vocab-size 300 --out tz zeros.bin --quiet"
    rm -f zeros.bin
    check "an out-of-memory read writes no tokenizer" test ! -e tz
else
    echo "skip the ulimit -v check under AddressSanitizer (the release pass runs it)"
fi

echo "# class 10: messages"
expect 1 "/nonexistent/x.json: cannot create" $B eval --model base/final --task ppl:text.txt --out /nonexistent/x.json
check "an unwritable --out is refused before the evaluation (one message)" \
    test "$($B eval --model base/final --task ppl:text.txt --out /nonexistent/x.json 2>&1 | grep -c 'cannot create')" = 1
printf '%s\n' '{"prompt":"2+2=","answer":"4","stop":[1,2]}' > gen.jsonl
expect 1 'field "stop": element 1 is not a string' $B eval --model base/final --task gen:gen.jsonl
env -u LMA_QUIET $B eval --model base/final --task ppl:text.txt >/dev/null 2>prog.txt
check "progress without a known total shows a count, not '5/0 (0%)'" sh -c '! grep -q "/0 (0%)" prog.txt && grep -q "done" prog.txt'

echo "# JSONL readers: non-UTF-8, NUL bytes, a 50 MB line"
printf '{"text":"caf\xe9 ok"}\n{"text":"a\x00b"}\n{"text":"fine"}\n' > odd.jsonl
expect 0 "1 unreadable record skipped (line 1)" $B data stats odd.jsonl
{ printf '{"text":"'; head -c 50000000 /dev/zero | tr '\0' 'w'; printf '"}\n{"text":"short"}\n'; } > huge.jsonl
expect 0 "" timeout 120 $B data stats huge.jsonl
expect 0 "" timeout 120 $B data dedup huge.jsonl -o hd.jsonl
check "the 50 MB record is kept whole" test "$(wc -c < hd.jsonl)" -gt 50000000
{ head -c 50000000 /dev/zero | tr '\0' '{'; printf '\n{"text":"short"}\n'; } > hugebad.jsonl
expect 0 "1 unreadable record skipped (line 1)" timeout 120 $B data stats hugebad.jsonl
rm -f huge.jsonl hugebad.jsonl hd.jsonl

echo "reliability: $checks checks, $fails failed"
[ "$fails" = 0 ]
