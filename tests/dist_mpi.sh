#!/usr/bin/env bash
# Data-parallel training on CPU processes through MPI (issue 23, docs/distributed.md):
#   - the comm's collectives with 2 and 3 ranks against hand-computed sums (test_dist_comm);
#   - 2 ranks vs 1 process, the same global batch (--batch 4 --accum 2), 20 steps, fp32:
#     full fine-tuning (ZeRO 0), ZeRO-1, ZeRO-2, LoRA (ZeRO-1, ZeRO-2) and SFT (ZeRO-2,
#     packed chat rows with loss on the assistant tokens): every loss and validation
#     loss within 1e-6 (relative) of the 1-process run; not bitwise, since each rank's
#     matrix products see 2 of the 4 rows (the sums run in another order);
#   - ZeRO-1 and ZeRO-2 on 2 ranks against ZeRO 0 on 2 ranks: the same all-reduced gradients
#     and an elementwise AdamW on each shard, so ZeRO-1 is bitwise ZeRO 0; ZeRO-2 sums the
#     gradient norm by shards (within 1e-6);
#   - world size 1 through the distributed path (RANK=0 WORLD_SIZE=1, and mpirun -n 1) is
#     bitwise the plain run;
#   - checkpoints N -> M: a 2-rank ZeRO-2 run cut at step 10 resumes on 2 ranks (bitwise the
#     uninterrupted run), on 1 process and on 3 ranks (within 1e-6); a 1-process checkpoint
#     resumes on 2 ranks with ZeRO-2, and a ZeRO-2 one with ZeRO 0.
# The base model: a tiny one pretrained here for 2 steps (tests/ref/models have no tokenizer).
# Usage: tests/dist_mpi.sh LMADAPT TEST_DIST_COMM SRC_DIR   (exit 77: no mpirun)
set -u
B=$1
TC=$2
SRC=$3
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt install openmpi-bin libopenmpi-dev)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export LMA_QUIET=1 LMA_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
# Open MPI in a container, as root, on 2 cores: allowed, oversubscribed, shared memory only
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm_rsh_agent=false
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" # Open MPI's own allocations at exit
fail=0
bad() { echo "FAIL: $*"; fail=1; }
losses() { sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }
vals() { sed -n 's/.*"step": \([0-9]*\),.*"val_loss": \([^,}]*\).*/\1 \2/p' "$1/metrics.jsonl"; }
# same(A, B, TOL, WHAT): the same steps, each loss within TOL relative (0: the same text)
same() {
    local a b
    a=$(losses "$1"; vals "$1" | sed 's/^/v/') b=$(losses "$2"; vals "$2" | sed 's/^/v/')
    [ -n "$a" ] || { bad "$4: no losses in $1"; return; }
    local r
    r=$(paste -d' ' <(echo "$a") <(echo "$b") | awk -v tol="$3" '
        { n++; if ($1 != $3) { print "step " $1 " vs " $3; stop = 1; exit }
          if (tol == 0) { if ($2 != $4) { print "step " $1 ": " $2 " vs " $4; stop = 1; exit } }
          else { d = $2 - $4; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (m < 1) m = 1;
                 if (d > tol * m) { print "step " $1 ": " $2 " vs " $4 " (diff " d ")"; stop = 1; exit }
                 if (d > worst) worst = d } }
        END { if (stop) exit; if (n < 20) print "only " n " values"; else printf "max abs diff %.3g\n", worst }')
    case "$r" in "max abs diff"*) echo "ok: $4 ($(echo "$a" | wc -l) values, $r)" ;; *) bad "$4: $r" ;; esac
}
mpi() { local n=$1; shift; mpirun -n "$n" "$B" "$@"; }

# ---- the comm's collectives
for n in 2 3; do
    mpirun -n $n "$TC" > comm$n.log 2>&1 || { bad "test_dist_comm on $n ranks"; cat comm$n.log; }
done

head -c 60000 "$SRC/tests/data/tinyshakespeare.txt" > text.txt
"$B" pretrain --data text.txt --out base --batch 4 --seq 32 --preset tiny --vocab-size 300 --steps 2 \
    >/dev/null 2>&1 || { echo "FAIL setup: pretrain"; exit 1; }
A="cpt --model base/final --data text.txt --steps 20 --batch 4 --accum 2 --seq 32 --lr 1e-3 --warmup 2 --eval-every 5 --save-every 5 --keep 10"
run1() { local out=$1; shift; "$B" $A --out "$out" "$@" > "$out.log" 2>&1 || { bad "1 process $out"; tail -3 "$out.log"; }; }
runN() { local n=$1 out=$2; shift 2; mpi "$n" $A --out "$out" "$@" > "$out.log" 2>&1 || { bad "$n ranks $out"; tail -5 "$out.log"; }; }

# ---- full fine-tuning, ZeRO 0/1/2
run1 one
runN 2 z0 --zero 0
runN 2 z1 --zero 1
runN 2 z2 --zero 2
same one z0 1e-6 "full: 2 ranks (all-reduce) vs 1 process, 20 steps"
same one z2 1e-6 "full: 2 ranks ZeRO-2 vs 1 process"
same z0 z1 0 "full: ZeRO-1 bitwise ZeRO 0 on 2 ranks"
same z0 z2 1e-6 "full: ZeRO-2 vs ZeRO 0 on 2 ranks"
grep -q '"distributed' z0.log || grep -q "distributed: 2 ranks" z0.log || bad "no 'distributed: 2 ranks' line in z0.log"
[ -f z2/final/model.safetensors ] || bad "ZeRO-2 run wrote no final/model.safetensors"
ls z2/ckpt-000020/optimizer-rank00000.safetensors z2/ckpt-000020/optimizer-rank00001.json >/dev/null 2>&1 ||
    bad "ZeRO-2 checkpoint without its optimizer shards"
cmp -s one/final/model.safetensors z1/final/model.safetensors && echo "note: final models identical bytes"

# ---- world size 1 through the distributed path: bitwise the plain run
RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 "$B" $A --out w1 > w1.log 2>&1 || bad "RANK=0 WORLD_SIZE=1 run"
same one w1 0 "world 1 (local comm, RANK/WORLD_SIZE) bitwise the plain run"
runN 1 m1
same one m1 0 "world 1 (mpirun -n 1, MPI comm) bitwise the plain run"

# ---- LoRA: only adapter gradients move (dropout off: each rank would draw its own masks)
L="--method lora --lora-r 4 --lora-dropout 0"
run1 lone $L
runN 2 lz1 --zero 1 $L
runN 2 lz2 --zero 2 $L
same lone lz1 1e-6 "LoRA: 2 ranks ZeRO-1 vs 1 process"
same lone lz2 1e-6 "LoRA: 2 ranks ZeRO-2 vs 1 process"
[ -f lz2/final/adapter_model.safetensors ] || bad "LoRA run wrote no adapter"

# ---- SFT (packed chat rows, loss on assistant tokens only: the ranks' rows hold different
# numbers of targets, so the global count must set the scale)
S="sft --model base/final --data $SRC/tests/data/alpaca_first200.json --template chatml --steps 20 --batch 4 --seq 64 --lr 1e-3 --warmup 2 --eval-every 5"
"$B" $S --out sone > sone.log 2>&1 || { bad "sft 1 process"; tail -3 sone.log; }
mpi 2 $S --out sz2 --zero 2 > sz2.log 2>&1 || { bad "sft 2 ranks"; tail -5 sz2.log; }
same sone sz2 1e-6 "SFT: 2 ranks ZeRO-2 vs 1 process"

# ---- checkpoints N -> M: z2 cut back to step 10, resumed on 2, 1 and 3 ranks
cut() { # copy of run $1 as $2 with the checkpoints after step 10 and final/ removed
    cp -r "$1" "$2"; rm -rf "$2"/ckpt-000015 "$2"/ckpt-000020 "$2"/final; echo ckpt-000010 > "$2/latest"
}
cut z2 r22; mpi 2 $A --resume r22 > r22.log 2>&1 || { bad "resume 2 -> 2"; tail -5 r22.log; }
same z2 r22 0 "resume of a 2-rank ZeRO-2 checkpoint on 2 ranks: bitwise the uninterrupted run"
cut z2 r21; "$B" $A --resume r21 > r21.log 2>&1 || { bad "resume 2 -> 1"; tail -5 r21.log; }
same z2 r21 1e-6 "resume 2 ranks -> 1 process (shards merged)"
cut z2 r23; mpi 3 $A --resume r23 > r23.log 2>&1 || { bad "resume 2 -> 3"; tail -5 r23.log; }
same z2 r23 1e-6 "resume 2 ranks -> 3 ranks (re-sharded)"
cut one r12; mpi 2 $A --resume r12 --zero 2 > r12.log 2>&1 || { bad "resume 1 -> 2"; tail -5 r12.log; }
same one r12 1e-6 "resume 1 process -> 2 ranks, ZeRO 0 -> 2 (the stage may change on resume)"
cut z2 r20; mpi 2 $A --resume r20 --zero 0 > r20.log 2>&1 || { bad "resume ZeRO-2 -> 0"; tail -5 r20.log; }
same z2 r20 1e-6 "resume 2 ranks ZeRO-2 -> ZeRO 0"
# ---- lmadapt launch: on CPU through mpirun (bitwise the mpirun run above); the forked mode
# (cuda) checked for its environment and its failure handling with a shell as the command
"$B" launch -n 2 --device cpu -- lmadapt $A --out lz --zero 2 > lz.log 2>&1 || { bad "launch -n 2 --device cpu"; tail -5 lz.log; }
same z2 lz 0 "launch -n 2 --device cpu: bitwise the mpirun -n 2 run"
got=$("$B" launch -n 3 --device cuda -- sh -c 'echo "$RANK/$WORLD_SIZE/$LOCAL_RANK $MASTER_ADDR:$MASTER_PORT $CUDA_VISIBLE_DEVICES $NCCL_NVLS_ENABLE $(dirname "$LMA_NCCL_ID_FILE")"' | sort)
want0="0/3/0 127.0.0.1:29500 0 0"
case "$got" in "$want0 "*) ;; *) bad "launch --device cuda environment: $got" ;; esac
[ "$(echo "$got" | awk '{print $5}' | sort -u | wc -l)" = 1 ] && [ "$(echo "$got" | wc -l)" = 3 ] ||
    bad "launch: 3 ranks sharing one id folder: $got"
start=$(date +%s)
"$B" launch -n 2 --device cuda -- sh -c 'if [ "$RANK" = 1 ]; then exit 3; fi; sleep 60' 2>/dev/null; rc=$?
[ $rc = 3 ] && [ $(( $(date +%s) - start )) -lt 30 ] && echo "ok: launch: a failing rank (3) stops the others" ||
    bad "launch: failing rank gave $rc"
"$B" launch -n 2 --device cpu > /dev/null 2>&1; [ $? = 2 ] || bad "launch without a command is a usage error"

[ $fail = 0 ] && echo "dist_mpi: all passed"
exit $fail
