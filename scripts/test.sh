#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh
# ONNX Runtime as an independent oracle: the npm package carries its Linux x64 library.
if [[ ! -d tests/ort/node_modules/onnxruntime-node ]]; then
  (cd tests/ort && npm install --ignore-scripts --no-audit --no-fund --silent) ||
    echo "test.sh: could not install onnxruntime-node; ORT peer tests will skip"
fi
cd build
ctest --output-on-failure -j "${TINYQ_JOBS:-$(nproc)}" --timeout 900
