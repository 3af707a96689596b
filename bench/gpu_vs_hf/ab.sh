#!/usr/bin/env bash
# One device call that checks and measures the step's switchable changes (issue 22 item 2):
# builds lmadapt with CUDA (bench/device_build.sh), runs test_backend_cuda, test_shapes_cuda and
# test_train_cuda (with ABON, all three again with those switches), then each training
# row with a change off (AB) and on (ABON, or the default) in the same binary, then transformers' eager (and, COMPILE=1,
# compiled) baselines of the same rows while time is left. Everything goes to stdout and, on the
# device, $OUT/ab.log. The switches (docs/cuda.md): LMA_CUDA_FUSE_QKV=0 (three q, k, v products),
# LMA_CUDA_COPY2D=0 (LoRA projection by projection), LMA_CUDA_RES_GEMM=0 (residual copied, then
# added into), LMA_CUDA_LAZY_ZERO=0 (zeros at once), LMA_LORA_FIRST=0 (docs/lora.md: the base
# product first, LoRA's term added after), LMA_CUDA_NORM_SLAB=0, LMA_CUDA_CE_REG=0,
# LMA_CUDA_ROPE_HEADS=0 (rmsnorm's two kernels, cross-entropy read twice, RoPE a head at a time);
# opt-in, =1: LMA_CUDA_THIN (LoRA's thin products on the tensor cores).
# RUNS="ROW@ENV,ENV ROW@X=0 ...": those rows with those switches, instead of the off/on pairs
# (REPS rounds); PROF_RUNS="ROW@ENV,ENV ...": profiles of those rows with those switches
# ($OUT/prof_ROW_N.log), instead of PROF; TESTS="..." the tests to run ("" none).
# Usage (on the device): [ONLY="ROW ..."] [ABON="LMA_CUDA_X=1 ..."] [TARGETS="bench_train_step lmadapt_cuda test_..."] [AB="LMA_CUDA_X=0 ..."] [COMPILE=1] [EAGER=0] [HF7B=1] [PROF=1 [PROF_ROWS="124m 7b-lora 1b"]] LIMIT=SECONDS bash bench/gpu_vs_hf/ab.sh   (LIMIT: the call's budget, 560)
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=${OUT:-/tmp}/ab.log
exec > >(tee -a "$LOG") 2>&1
T0=$(date +%s)
left() { echo $(( ${LIMIT:-560} - ($(date +%s) - T0) )); }
el() { echo "[t=$(( $(date +%s) - T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
bash bench/device_build.sh build-gpu . ${TARGETS:-} > "${OUT:-/tmp}/build.log" 2>&1 || { tail -30 "${OUT:-/tmp}/build.log"; exit 1; }
el built
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread
# the tests with the defaults; with ABON, the whole-model runs (and every op) once more with it
TESTS=${TESTS-test_backend_cuda test_shapes_cuda test_train_cuda}
for t in $TESTS ${TESTS:+${ABON:+on:test_shapes_cuda on:test_train_cuda on:test_backend_cuda}}; do
    envs=(X=1); log="${OUT:-/tmp}/$t.log"
    [ "${t#on:}" != "$t" ] && { t=${t#on:}; envs=(${ABON}); log="${OUT:-/tmp}/${t}_on.log"; }
    env "${envs[@]}" timeout 200 build-gpu/tests/$t > "$log" 2>&1
    echo "$t ${envs[*]} rc=$? (0 = all passed; 77 = the plugin did not load)"
    grep -E "FAIL|warn" "$log" | head -20; tail -1 "$log"
done
el tested
row() { # NAME ENV... -- bench args: each step's loss (step 1: before any update, the same in every
    # run of a row on either side of a switch, up to the rounding of a changed product) and the RESULT
    local name=$1; shift; local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    case " ${ONLY:-$name} " in *" $name "*) ;; *) return ;; esac # ONLY="124m 1b-lora": those rows alone
    [ "$(left)" -gt 40 ] || { echo "skip $name (time)"; return; }
    echo "== $name ${envs[*]}"
    env "${envs[@]}" timeout 150 build-gpu/bench_train_step --device cuda --vocab 32000 --trace 1 "$@" 2>&1 |
        grep -E "^step|RESULT|bench" | sed 's/grad_norm/g/' | tr '\n' ' '; echo
}
S124="--preset 125m --batch 16 --seq 1024 --steps 10"; S1B="--preset 1b --batch 4 --seq 2048 --steps 5"
S7B="--preset 7b --batch 2 --seq 2048 --steps 3 --lora 16"
args_of() { case $1 in 124m) echo "$S124" ;; 1b) echo "$S1B" ;; 1b-lora) echo "$S1B --lora 16" ;;
    1b-docs512) echo "$S1B --docs 512" ;; 7b-lora) echo "$S7B" ;; esac; }
if [ -n "${RUNS:-}" ]; then # ROW@ENV,ENV items instead of the pairs below, REPS rounds
    for r in $(seq "${REPS:-1}"); do
        for it in $RUNS; do envs=${it#*@}; row "${it%%@*}" ${envs//,/ } -- $(args_of "${it%%@*}"); done
    done
    ONLY=none
fi
OFF=${AB:-LMA_CUDA_FUSE_QKV=0} # the switches of the change under test, off (AB="NAME=0 NAME2=0")
ON=${ABON:-X=1}                 # and on, where that is not the default (ABON="NAME=1 ...": opt-in kernels)
for r in $(seq "${REPS:-2}"); do # REPS: rounds of the 124M pair
    row 124m $OFF -- $S124
    row 124m $ON -- $S124
done
row 1b $OFF -- $S1B
row 1b $ON -- $S1B
row 1b-docs512 $ON -- $S1B --docs 512
row 1b-lora $OFF -- $S1B --lora 16
row 1b-lora $ON -- $S1B --lora 16
row 7b-lora $OFF -- $S7B
row 7b-lora $ON -- $S7B
el rows
hf() {
    [ "$(left)" -gt 90 ] || { echo "skip HF $* (time)"; return; }
    timeout $(( $(left) - 20 )) python3 bench/gpu_vs_hf/hf_train_baseline.py "$@" 2>&1 | grep '^{'
}
if [ "${COMPILE:-0}" = 1 ]; then # compiled first: the better baseline on every row so far
    echo "== transformers torch.compile"
    hf llama124m full 1024 16 10 compile; hf tinyllama1b full 2048 4 5 compile; hf tinyllama1b lora 2048 4 5 compile
fi
i=0
for pr in ${PROF_RUNS:-}; do # ROW@ENV,ENV: a profile of that row with those switches
    i=$((i + 1)); name=${pr%%@*}; envs=${pr#*@}
    [ "$(left)" -gt 60 ] || { echo "skip profile $pr (time)"; continue; }
    env LMA_CUDA_PROFILE=1 ${envs//,/ } timeout 120 build-gpu/bench_train_step --device cuda --vocab 32000 \
        $(args_of "$name") > "${OUT:-/tmp}/prof_${name}_$i.log" 2>&1; echo "profile $pr rc=$? -> prof_${name}_$i.log"
done
if [ "${PROF:-0}" = 1 ]; then # LMA_CUDA_PROFILE=1 tables of the timed steps (warm-up dropped) in $OUT/prof_*.log
    for a in "124m:$S124" "7b-lora:$S7B" "1b:$S1B"; do
        case " ${PROF_ROWS:-7b-lora 1b} " in *" ${a%%:*} "*) ;; *) continue ;; esac
        [ "$(left)" -gt 60 ] || { echo "skip profile ${a%%:*} (time)"; continue; }
        env LMA_CUDA_PROFILE=1 $ON timeout 120 build-gpu/bench_train_step --device cuda --vocab 32000 ${a#*:} \
            > "${OUT:-/tmp}/prof_${a%%:*}.log" 2>&1; echo "profile ${a%%:*} rc=$?"
    done
    el profiles
fi
if [ "${EAGER:-1}" = 1 ]; then
    echo "== transformers eager"; hf llama124m full 1024 16 10; hf tinyllama1b full 2048 4 5; hf tinyllama1b lora 2048 4 5
fi
if [ "${HF7B:-0}" = 1 ]; then # the 7B LoRA row's baselines (long: the 7B model is built on the GPU each run)
    echo "== transformers 7B LoRA, eager then compiled"; hf llama2_7b lora 2048 2 3; hf llama2_7b lora 2048 2 3 compile
fi
el end
