#!/usr/bin/env bash
# Builds llama.cpp's CPU command-line tools (llama-completion, llama-bench) from the
# llama.cpp tree vendored in the llama-cpp-python source package on PyPI, pinned by
# version and sha256. pip is only the downloader; nothing here needs Python afterwards.
#
# Usage: bench/llamacpp/build.sh [--sdist FILE] [--force] [--help]
#   --sdist FILE  use an already downloaded llama_cpp_python-VERSION.tar.gz (still sha256-checked)
#   --force       rebuild even when the installed tools are of this version
# Installs into ${LMA_HOME:-$HOME/.cache/lmadapt}/llama.cpp/{bin,VERSION}; a second run with
# the same version installed does nothing. Progress on stderr. About 15 CPU-minutes
# (24 min wall on 2 shared, busy cores); run it in the background.
set -euo pipefail

LCP_VERSION=0.3.36
LCP_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
TARGETS="llama-completion llama-bench"
JOBS=${LMA_JOBS:-2}

PREFIX="${LMA_HOME:-$HOME/.cache/lmadapt}/llama.cpp"
STAMP="llama-cpp-python $LCP_VERSION sha256:$LCP_SHA256 targets: $TARGETS"

say() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: $*" >&2; exit 1; }

sdist=""; force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sdist) [ $# -ge 2 ] || die "--sdist needs a file"; sdist="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

installed_ok() {
  [ -f "$PREFIX/VERSION" ] && [ "$(cat "$PREFIX/VERSION")" = "$STAMP" ] || return 1
  for t in $TARGETS; do [ -x "$PREFIX/bin/$t" ] || return 1; done
  "$PREFIX/bin/llama-completion" --version >/dev/null 2>&1
}
if [ $force -eq 0 ] && installed_ok; then
  say "llama.cpp from llama-cpp-python $LCP_VERSION already built in $PREFIX/bin; nothing to do (--force rebuilds)"
  exit 0
fi

for tool in cmake c++ cc tar sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
done

mkdir -p "$PREFIX"
work=$(mktemp -d "$PREFIX/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

if [ -z "$sdist" ]; then
  say "downloading llama-cpp-python==$LCP_VERSION (source package) with pip"
  python3 -m pip download --quiet --no-deps --no-binary=:all: \
      "llama-cpp-python==$LCP_VERSION" -d "$work/dl" >"$work/pip.log" 2>&1 \
    || die "pip download of llama-cpp-python==$LCP_VERSION failed (network or PyPI?): $(tail -n 1 "$work/pip.log")"
  sdist="$work/dl/llama_cpp_python-$LCP_VERSION.tar.gz"
  [ -f "$sdist" ] || die "pip did not leave $sdist"
fi
got=$(sha256sum "$sdist" | cut -d' ' -f1)
[ "$got" = "$LCP_SHA256" ] || die "sha256 mismatch for $(basename "$sdist"): got $got, want $LCP_SHA256; refusing"
say "sha256 ok; unpacking vendor/llama.cpp"
tar -xzf "$sdist" -C "$work" "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp"
src="$work/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp"

# CPU only, static binaries (no rpath into the build tree), nothing that downloads:
# LLAMA_CURL is deprecated in this llama.cpp (its HTTP client is cpp-httplib + OpenSSL),
# so LLAMA_OPENSSL=OFF turns off the model-download support instead; no server, no web UI.
say "configuring (cmake, Release, GGML_NATIVE=ON, CPU only)"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON >"$work/cmake.log" 2>&1 \
  || { tail -n 20 "$work/cmake.log" >&2; die "cmake configure failed"; }
say "building $TARGETS with -j$JOBS (several minutes)"
# shellcheck disable=SC2086
cmake --build "$work/build" -j"$JOBS" --target $TARGETS >"$work/make.log" 2>&1 \
  || { tail -n 30 "$work/make.log" >&2; die "build failed"; }

# install atomically: new bin/ beside the old one, then swap
rm -rf "$PREFIX/bin.new"; mkdir -p "$PREFIX/bin.new"
for t in $TARGETS; do cp "$work/build/bin/$t" "$PREFIX/bin.new/"; done
cp "$src/LICENSE" "$PREFIX/bin.new/LICENSE.llama.cpp"
rm -rf "$PREFIX/bin.old"; [ -d "$PREFIX/bin" ] && mv "$PREFIX/bin" "$PREFIX/bin.old"
mv "$PREFIX/bin.new" "$PREFIX/bin"; rm -rf "$PREFIX/bin.old"
echo "$STAMP" > "$PREFIX/VERSION"
say "built in $(( $(date +%s) - t0 )) s: $PREFIX/bin/{${TARGETS// /,}}"
"$PREFIX/bin/llama-completion" --version 2>&1 | sed 's/^/build.sh: /' >&2 || true
