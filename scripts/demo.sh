#!/usr/bin/env bash
# The main job (README): build lmadapt, then score a token sequence with a tiny
# Llama model that the tests ship (tests/ref/models/llama_gqa), as text and JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target lmadapt >/dev/null
echo "== lmadapt score on tests/ref/models/llama_gqa =="
build/lmadapt score --model tests/ref/models/llama_gqa --ids 1,17,42,99,3,250,7,7,120
build/lmadapt score --model tests/ref/models/llama_gqa --ids 1,17,42,99,3,250,7,7,120 --json
