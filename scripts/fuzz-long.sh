#!/usr/bin/env bash
# Long fuzzing run: builds every tests/fuzz/fuzz_<name>.c with clang + libFuzzer +
# ASan/UBSan and runs each target for HOURS hours (default 1), all targets in
# parallel, one core each. Seeds: tests/fuzz/corpus/<name>/; the growing corpus and
# any crash/leak/timeout inputs go to $BUILD/fuzz-long/<name>/.
#
#   scripts/fuzz-long.sh [HOURS] [TARGET...]     e.g. scripts/fuzz-long.sh 8 safetensors
#   BUILD=build-fuzz (default) JOBS=2 (build parallelism)
#
# Exit status 0 when no target found a failure; 1 otherwise (the inputs are listed).
set -euo pipefail
HOURS=${1:-1}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-fuzz}
JOBS=${JOBS:-2}
case "$HOURS" in (*[!0-9.]*|'') echo "usage: $0 [HOURS] [TARGET...]" >&2; exit 2;; esac
SECONDS_EACH=$(awk -v h="$HOURS" 'BEGIN { printf "%d", h * 3600 }')

CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DLMA_SANITIZE=ON -DLMA_FUZZ=ON >/dev/null
if [ $# -gt 0 ]; then TARGETS=("$@"); else
  TARGETS=(); for f in "$ROOT"/tests/fuzz/fuzz_*.c; do n=$(basename "$f" .c); TARGETS+=("${n#fuzz_}"); done
fi
cmake --build "$BUILD" -j "$JOBS" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")

pids=()
for t in "${TARGETS[@]}"; do
  out="$BUILD/fuzz-long/$t"; mkdir -p "$out/corpus" "$out/artifacts"
  echo "fuzz_$t: ${SECONDS_EACH}s, corpus $out/corpus, log $out/log.txt"
  "$BUILD/tests/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
      "$out/corpus" "$ROOT/tests/fuzz/corpus/$t" >"$out/log.txt" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    status=1; echo "fuzz_${TARGETS[$i]}: FAILED, see $BUILD/fuzz-long/${TARGETS[$i]}/log.txt"
    ls "$BUILD/fuzz-long/${TARGETS[$i]}/artifacts/" || true
  else
    echo "fuzz_${TARGETS[$i]}: ok ($(grep -m1 'stat::number_of_executed_units' "$BUILD/fuzz-long/${TARGETS[$i]}/log.txt" || echo '?'))"
  fi
done
exit $status
