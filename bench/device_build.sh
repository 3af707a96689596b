#!/usr/bin/env bash
# Builds lmadapt with CUDA on the device machine (no package registry there):
# the Debian packages carried in .deps/ (apt-get download of libcjson-dev,
# libutf8proc-dev, libpcre2-dev, libopenblas-dev, libsqlite3-dev, libmicrohttpd-dev and their libraries) are
# unpacked into /tmp/deps, never into /, and found through pkg-config.
# Usage (on the device): bash bench/device_build.sh BUILD_DIR [SOURCE_DIR] [TARGET...]
# (SOURCE_DIR: another tree, e.g. an older revision that bench/ab_trees.sh exported; TARGETs:
# only those, e.g. bench_train_step; the default builds everything)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-gpu}"
SRC="${2:-.}"
shift $(( $# < 2 ? $# : 2 ))
TARGETS=()
for t in "$@"; do TARGETS+=(--target "$t"); done
D=/tmp/deps
if [ -d .deps ]; then
  mkdir -p "$D"
  for f in .deps/*.deb; do dpkg -x "$f" "$D"; done
  find "$D" -name '*.pc' -exec sed -i "s|=/usr|=$D/usr|" {} +
  # libmicrohttpd.pc names gnutls for static links only; without gnutls.pc there, pkg-config
  # would refuse the package and `lmadapt serve` would be built without its HTTP side
  find "$D" -name 'libmicrohttpd.pc' -exec sed -i 's/^Requires.private:.*/Requires.private:/' {} +
  export PKG_CONFIG_PATH="$D/usr/lib/x86_64-linux-gnu/pkgconfig:$D/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig:${PKG_CONFIG_PATH:-}"
  export LD_LIBRARY_PATH="$D/usr/lib/x86_64-linux-gnu:$D/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
fi
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLMA_CUDA=ON -DLMA_CUDA_ARCH=90 >/dev/null
cmake --build "$BUILD" -j"$(nproc)" "${TARGETS[@]}"
