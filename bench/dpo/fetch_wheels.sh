#!/usr/bin/env bash
# Run HERE (the machine with a package registry), before bench/dpo/device_check.sh: downloads
# TRL and what it needs beyond torch/transformers/peft into .whl/ (git-ignored), to be carried
# to the device machine (run's carry: [".whl"]), which has no internet.
# Usage: bash bench/dpo/fetch_wheels.sh [PYTHON_VERSION]   (the device's python3, default 3.12)
# pyarrow and pandas (datasets needs them, ~55 MB) are fetched only with FULL=1: the
# device's torch image usually has them, and device_check.sh says if not.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${1:-3.12}"
PIP="${PIP:-pip}"
mkdir -p .whl
# pure-Python wheels, any interpreter
$PIP download --no-deps -d .whl trl==1.16.0 accelerate==1.16.0 datasets==5.2.0 dill fsspec
# compiled or per-version wheels for the device's interpreter
$PIP download --no-deps --only-binary=:all: --python-version "$PY" --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --implementation cp -d .whl multiprocess xxhash
if [ "${FULL:-0}" = 1 ]; then
  $PIP download --no-deps --only-binary=:all: --python-version "$PY" --platform manylinux2014_x86_64 \
      --platform manylinux_2_28_x86_64 --implementation cp -d .whl pyarrow pandas
fi
ls -la .whl
du -sh .whl
