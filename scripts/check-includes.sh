#!/usr/bin/env bash
# Rooms import downward only (docs/architecture.md, "Rooms"). Lists the
# `#include "room/..."` lines of every file under src/ and fails (exit 1), naming the
# file, line and include, on one that runs upward, or into a room this map does not know.
# Order, top to bottom (rooms on one level may include each other's headers):
#   cli > api > advise, serve, report > eval, train, rag, icl > data > infer > model, tok > backend, dist > format > quant > core > include
# (api/ holds the public functions of include/lmadapt.h that are more than an internal one.)
# (cli/ is not under src/; nothing in src/ may include it.)
# Usage: scripts/check-includes.sh [-v]   (-v: print every room include checked)
set -uo pipefail
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
    cli) echo 11 ;;
    api) echo 10 ;;
    advise | serve | report) echo 9 ;;
    eval | train | rag | icl) echo 8 ;;
    data) echo 7 ;;
    infer) echo 6 ;;
    model | tok) echo 5 ;;
    backend | dist) echo 4 ;;
    format) echo 3 ;;
    quant) echo 2 ;;
    core) echo 1 ;;
    *) echo "" ;;
    esac
}

verbose=0
[ "${1:-}" = "-v" ] && verbose=1
bad=0 checked=0
while IFS= read -r -d '' f; do
    from=${f#src/}
    from=${from%%/*}
    rf=$(rank "$from")
    if [ -z "$rf" ]; then
        echo "check-includes: $f: src/$from/ is not a room in the map (scripts/check-includes.sh)"
        bad=1
        continue
    fi
    while IFS=: read -r line inc; do
        to=${inc%%/*}
        rt=$(rank "$to")
        checked=$((checked + 1))
        [ "$verbose" = 1 ] && echo "$f:$line: $from -> $inc"
        if [ -z "$rt" ]; then
            echo "check-includes: $f:$line: #include \"$inc\": unknown room '$to'"
            bad=1
        elif [ "$rt" -gt "$rf" ]; then
            echo "check-includes: $f:$line: #include \"$inc\" runs upward ($from includes $to)"
            bad=1
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]*/' "$f" |
                 sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]*)".*/\1:\2/')
done < <(find src -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)

if [ "$bad" = 0 ]; then
    echo "check-includes: ok ($checked room includes under src/, all downward or within a level)"
fi
exit "$bad"
