#!/usr/bin/env bash
# A/B of two revisions in one device call, for changes that have no switch: the other revision
# travels as a tree exported here (the device gets the working tree, not the history), both
# are built there, and each training row runs A, B, A, B in turn (the repeat shows the drift).
#   here:   bash bench/ab_trees.sh export REV        (writes .ab/REV/; gitignored, so the call
#                                                   carries it: carry [".deps", ".ab"])
#   device: bash bench/ab_trees.sh run "BENCH ARGS" ["BENCH ARGS"...]
#           e.g. run "--preset 125m --batch 16 --seq 1024 --steps 10" "--preset 1b --batch 4 --seq 2048 --steps 5"
# Rows are bench_train_step's (--device cuda --vocab 32000 --trace 1 added; a dry run without a
# GPU: DEVICE=cpu TARGETS=bench_train_step, which skips the CUDA plugin). Output: stdout and $OUT/ab_trees.log. The tree A is .ab/REV (one
# exported revision), B the working tree.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
export)
    rev=${2:?usage: ab_trees.sh export REV}
    sha=$(git rev-parse --short "$rev") || exit 2
    rm -rf ".ab/$sha" && mkdir -p ".ab/$sha" || exit 1
    git archive "$sha" | tar -x -C ".ab/$sha" || exit 1
    echo "exported $rev ($sha) to .ab/$sha ($(du -sh ".ab/$sha" | cut -f1)); carry [\".deps\", \".ab\"]"
    ;;
run)
    shift
    [ $# -gt 0 ] || { echo "ab_trees.sh run: name at least one row (bench_train_step arguments)" >&2; exit 2; }
    trees=(.ab/*/)
    [ ${#trees[@]} -eq 1 ] && [ -d "${trees[0]}" ] ||
        { echo "ab_trees.sh run: want exactly one exported tree under .ab/ (ab_trees.sh export REV)" >&2; exit 2; }
    A=${trees[0]%/}
    LOG=${OUT:-/tmp}/ab_trees.log
    exec > >(tee -a "$LOG") 2>&1
    for t in "$A" .; do
        blog=${OUT:-/tmp}/build-$([ "$t" = . ] && echo B || basename "$t").log
        # shellcheck disable=SC2086 # TARGETS: a list
        bash bench/device_build.sh "$t/build-ab" "$t" ${TARGETS:-bench_train_step lmadapt_cuda} > "$blog" 2>&1 ||
            { echo "build of $t failed:"; tail -20 "$blog"; exit 1; }
    done
    export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/usr/lib/x86_64-linux-gnu/openblas-pthread
    for row in "$@"; do
        for rep in 1 2; do
            for t in "$A" .; do
                name=$([ "$t" = . ] && echo "B (working tree)" || echo "A ($(basename "$t"))")
                # shellcheck disable=SC2086 # the row is a list of arguments
                res=$(timeout 300 "$t/build-ab/bench_train_step" --device "${DEVICE:-cuda}" --vocab 32000 --trace 1 $row 2>&1 |
                      grep -E "^step 1 |RESULT|bench:" | tr '\n' ' ')
                echo "$name [$row] #$rep: $res"
            done
        done
    done
    ;;
*)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
