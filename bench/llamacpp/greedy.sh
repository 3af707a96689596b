#!/usr/bin/env bash
# Greedy generation with llama.cpp (the llama-completion tool that build.sh makes):
# prints only the generated continuation of PROMPT on stdout, byte for byte, with no
# trailing newline added. llama.cpp's logs go to a file; on failure its tail goes to stderr.
#
# Usage: bench/llamacpp/greedy.sh MODEL.gguf PROMPT N [--lora A.gguf]
#   PROMPT is raw text: no chat template is applied (-no-cnv) and no escapes are processed
#   (--no-escape), so pass real newlines, e.g. $'<|im_start|>user\nHi<|im_end|>\n'.
#   Special-token text in PROMPT (<|im_start|>) is parsed as the special token.
#   N tokens at most; generation stops early at an end-of-generation token.
# Settings: --temp 0 --top-k 1 (greedy), --seed 42, 2 threads, repeat penalty off (1.0).
# BOS: llama.cpp prepends BOS exactly when the GGUF says so (tokenizer.ggml.add_bos_token);
#   this script prints on stderr whether it did and how many prompt tokens there were.
# Environment: LMA_LLAMACPP_BIN (default ${LMA_HOME:-$HOME/.cache/lmadapt}/llama.cpp/bin),
#   LMA_GREEDY_LOG=FILE keeps llama.cpp's full log.
set -euo pipefail

die() { echo "greedy.sh: $*" >&2; exit 1; }
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
[ $# -eq 3 ] || [ $# -eq 5 ] || die "usage: greedy.sh MODEL.gguf PROMPT N [--lora A.gguf]"
model=$1; prompt=$2; n=$3
[ -f "$model" ] || die "no such model file: $model"
[[ "$n" =~ ^[0-9]+$ ]] || die "N must be a number of tokens: $n"
lora=()
if [ $# -eq 5 ]; then
  [ "$4" = "--lora" ] || die "unknown option: $4"
  [ -f "$5" ] || die "no such adapter file: $5"
  lora=(--lora "$5")
fi

bin="${LMA_LLAMACPP_BIN:-${LMA_HOME:-$HOME/.cache/lmadapt}/llama.cpp/bin}"
[ -x "$bin/llama-completion" ] || die "$bin/llama-completion not found: run bench/llamacpp/build.sh"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
log="${LMA_GREEDY_LOG:-$tmp/log}"
if ! "$bin/llama-completion" -m "$model" -p "$prompt" -n "$n" "${lora[@]}" \
      -no-cnv --no-escape --no-display-prompt --simple-io --no-warmup \
      --verbose-prompt -lv 4 --no-log-timestamps --no-log-prefix \
      --temp 0 --top-k 1 --repeat-penalty 1.0 --seed 42 -t 2 -tb 2 \
      </dev/null >"$tmp/out" 2>"$log"; then
  tail -n 15 "$log" >&2
  die "llama-completion failed (log above)"
fi

# what went in: --verbose-prompt logs "number of tokens in prompt = K" and "ID -> 'piece'"
# lines; the model's info logs "BOS token = ID 'TEXT'". BOS was prepended when the first
# token is BOS, unless the prompt text itself starts with the BOS text (then it takes two).
ntok=$(sed -n 's/.*number of tokens in prompt = \([0-9]*\).*/\1/p' "$log" | head -n 1)
mapfile -t ids < <(grep -E "^ *[0-9]+ -> '" "$log" | head -n 2 | awk '{print $1}')
bos_id=$(sed -n "s/.*BOS token *= *\([0-9]*\) '.*/\1/p" "$log" | head -n 1)
bos_txt=$(sed -n "s/.*BOS token *= *[0-9]* '\(.*\)'\$/\1/p" "$log" | head -n 1)
kv=$(sed -n 's/.*tokenizer\.ggml\.add_bos_token *bool *= *\([a-z]*\).*/\1/p' "$log" | head -n 1)
bos="no"
if [ -n "$bos_id" ] && [ "${ids[0]:-}" = "$bos_id" ]; then
  if [ -n "$bos_txt" ] && [ "${prompt#"$bos_txt"}" != "$prompt" ]; then
    [ "${ids[1]:-}" = "$bos_id" ] && bos="yes"
  else
    bos="yes"
  fi
fi
echo "greedy.sh: prompt ${ntok:-?} tokens; BOS added: $bos (BOS id ${bos_id:-none}, GGUF add_bos_token: ${kv:-absent})" >&2

# stdout is: the generated text, then " [end of text]\n" if it stopped at an EOG token,
# then "\n\n" always. Take exactly those off.
out=$(cat "$tmp/out"; printf x); out=${out%x}
out=${out%$'\n\n'}
out=${out%" [end of text]"$'\n'}
printf '%s' "$out"
