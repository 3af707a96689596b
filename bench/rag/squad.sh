#!/usr/bin/env bash
# SQuAD v1.1 dev retrieval: lmadapt rag (index + eval, three modes) beside the Python
# reference of the same algorithms (bench/rag/squad_ref.py: rank_bm25 + sentence-transformers).
# Corpus = paragraphs, queries = one question per paragraph, relevant = its paragraph.
# Usage: bench/rag/squad.sh [CORPUS.jsonl QA.jsonl]   (default: the trimmed copy in
# tests/data/squad/, see its MANIFEST; a full dev-v1.1.json converts with
# bench/rag/squad_convert.py). PY: a Python with rank_bm25 and sentence-transformers.
# LCPY (optional): a Python with LangChain + Chroma (bench/rag/langchain_squad.py says which
# packages): its default setup runs on the same files, after lmadapt and the reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${1:-tests/data/squad/corpus.jsonl} QA=${2:-tests/data/squad/qa.jsonl}
PY=${PY:-/tmp/refenv/bin/python} MODEL=${MODEL:-all-minilm-l6-v2}
MDIR=${MDIR:-$HOME/.cache/lmadapt/models/all-minilm-l6-v2}
DB=$(mktemp -u /tmp/lma_squad.XXXXXX).sqlite
trap 'rm -f "$DB" "$DB-wal" "$DB-shm"' EXIT
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) corpus $(wc -l < "$CORPUS") paragraphs, $(wc -l < "$QA") questions, load $(cut -d' ' -f1 /proc/loadavg)"
/usr/bin/time -f "# index (model load included): %e s wall, %U s user" build/lmadapt rag index -q --db "$DB" --embed "$MODEL" --chunk-tokens 256 --overlap-tokens 32 "$CORPUS"
build/lmadapt rag eval --db "$DB" --qa "$QA" --k 10 --json | sed 's/^{/{"impl": "lmadapt", /'
"$PY" bench/rag/squad_ref.py "$CORPUS" "$QA" "$MDIR" 2>/dev/null
if [ -n "${LCPY:-}" ]; then "$LCPY" bench/rag/langchain_squad.py "$CORPUS" "$QA" "$MDIR" 2>/dev/null; fi
