#!/usr/bin/env bash
# The main job (README, docs/demo.md): build lmadapt, then `lmadapt demo`: the adaptation
# ladder (zero-shot, in-context examples, retrieval over lmadapt's docs, a LoRA run, both)
# on SmolLM2-135M-Instruct with all-MiniLM-L6-v2 (fetched by scripts/install-deps.sh),
# scored on held-out questions, with what the LoRA model forgot; writes summary.json and
# report.html in build/demo. Extra arguments go to `lmadapt demo` (`lmadapt demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target lmadapt >/dev/null
build/lmadapt demo --out "${LMA_DEMO_OUT:-build/demo}" "$@"
