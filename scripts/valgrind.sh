#!/usr/bin/env bash
# The small tests under valgrind memcheck (the house rule: valgrind-clean), apart from the
# suite (minutes; not in scripts/test.sh). valgrind does not run AVX-512 code, so this is a
# portable build (-DLMA_NATIVE=OFF) into build-vg; the kernels chosen at run time by the CPU's
# features (quant/qdot.c, the bf16 GEMM) see valgrind's CPU, which has no AVX-512, and take
# their AVX2 or scalar paths. Fails on any memcheck error or definite leak ("possibly lost"
# blocks are OpenMP's thread stacks).
# Usage: scripts/valgrind.sh [TEST...]   (default: the list below; needs Debian's valgrind)
set -uo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_core test_config test_schedule test_safetensors test_nf4 test_tok test_quant_ggml
                                 test_train test_lora test_json_constraint)
cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLMA_NATIVE=OFF -DLMA_CUDA=OFF >/dev/null || exit 1
cmake --build build-vg -j"${LMA_JOBS:-$(nproc)}" $(printf -- '--target %s ' "${tests[@]}") >/dev/null || exit 1
mkdir -p build-vg/valgrind
bad=0
for t in "${tests[@]}"; do
    s=$(date +%s)
    log=build-vg/valgrind/$t.log
    (cd build-vg && LMA_THREADS=1 valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        "./tests/$t" > "valgrind/$t.log" 2>&1)
    rc=$?
    echo "$t: rc $rc, $(( $(date +%s) - s )) s, $(grep -E 'passed, [0-9]+ failed' "$log" | tail -1)"
    [ $rc -eq 0 ] || { bad=1; grep -m 5 -E "==[0-9]+== (Invalid|Conditional|Use of|.*definitely lost)" "$log"; }
done
[ $bad -eq 0 ] && echo "valgrind: all clean" || { echo "valgrind: errors (logs in build-vg/valgrind/)"; exit 1; }
