#!/usr/bin/env bash
# The main job (README): build lmadapt, then `lmadapt demo`: pretrain a tiny Llama
# model on CPU on lmadapt's own documentation (embedded in the binary, no
# download), save it in Hugging Face format, and sample from it. About a minute
# on 2 cores. Extra arguments go to `lmadapt demo` (see `lmadapt demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target lmadapt >/dev/null
build/lmadapt demo --out "${LMA_DEMO_OUT:-build/demo}" "$@"
