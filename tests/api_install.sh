#!/bin/sh
# The public API from outside the tree: api_install.sh SRC_DIR BUILD_DIR TEST_API
#  1. cmake --install BUILD_DIR into BUILD_DIR/api-install;
#  2. examples/score.c and chat.c compiled with cc $(pkg-config --cflags --libs lmadapt)
#     (shared), score.c also linked statically (liblmadapt.a + pkg-config --static), and
#     score.c built by a CMake project with find_package(lmadapt) (tests/cmake_consumer);
#  3. each score program run on tests/ref/models/llama_gqa with the fixture's ids, its
#     log-probs compared with transformers' (TEST_API --score-output, 1e-5).
set -eu
src=$1 build=$2 test_api=$3
prefix=$build/api-install
out=$build/api-install-examples
rm -rf "$prefix" "$out"
mkdir -p "$out"
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc=${CC:-cc}
for ex in score chat; do
    $cc -Wall -Werror "$src/examples/$ex.c" $(pkg-config --cflags --libs lmadapt) -o "$out/$ex"
done
$cc -Wall -Werror "$src/examples/score.c" $(pkg-config --cflags lmadapt) "$prefix/lib/liblmadapt.a" \
    $(pkg-config --static --libs lmadapt | sed 's/-llmadapt//') -o "$out/score_static"
if nm -D "$out/score_static" 2>/dev/null | grep -q ' U lma_'; then echo "score_static links liblmadapt.so" >&2; exit 1; fi
cmake -S "$src/tests/cmake_consumer" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DLMA_EXAMPLES="$src/examples" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out/cmake" >/dev/null

ids=$("$test_api" --fixture-ids)
model="$src/tests/ref/models/llama_gqa"
export LD_LIBRARY_PATH="$prefix/lib"
for prog in "$out/score" "$out/score_static" "$out/cmake/score"; do
    "$prog" "$model" --ids "$ids" >"$out/score.txt"
    "$test_api" --score-output "$out/score.txt"
    echo "$prog: log-probs = transformers"
done
# a bad path: exit 1 with the library's message
if "$out/score" /nonexistent/model --ids 1,2 2>"$out/err.txt"; then echo "bad path accepted" >&2; exit 1; fi
grep -q "/nonexistent/model" "$out/err.txt"
echo "installed API ok"
