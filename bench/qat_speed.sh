#!/usr/bin/env bash
# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# The QAT speed bar: a 20k-row, 6-feature MLP regression, 10 epochs (fp32 warm-start 0, QAT 10),
# timed end to end (issue 9: under 15 s on a 2-core machine). Usage:
#   bench/qat_speed.sh [BUILD_DIR]      (default: build)
# Needs /usr/bin/python3 with numpy to make the data set.
set -euo pipefail
build=${1:-build}
tinyq="$build/tinyq"
[[ -x $tinyq ]] || { echo "qat_speed: $tinyq not found (build first)" >&2; exit 2; }
"$tinyq" --help | grep -q ' qat ' || { echo "qat_speed: this tinyq was built without QAT (libtorch-dev)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/data.npz" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
n = 20000
x = rng.normal(size=(n, 6)).astype(np.float32)
y = (0.6 * x[:, 0] - 0.4 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3] + np.tanh(x[:, 4]) + 0.2 * x[:, 5]).astype(np.float32)
np.savez(sys.argv[1], x=x, y=y)
PY
cat > "$work/config.yaml" <<'YAML'
model: mlp
model_args: {hidden: [32, 32], lr: 0.001}
cache: data.npz
batch_size: 32
val_frac: 0.0
test_frac: 0.0
qat: {epochs_fp32: 0, epochs_qat: 10}
YAML
start=$(date +%s.%N)
"$tinyq" qat --config "$work/config.yaml" --output "$work/m.int8.onnx" --report-out "$work/report.json" >/dev/null
end=$(date +%s.%N)
/usr/bin/python3 - "$work/report.json" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
total = float(sys.argv[3]) - float(sys.argv[2])
print(f"qat_speed: rows {r['data']['train_rows']}, qat epochs {r['phases']['qat']['epochs']}, "
      f"qat phase {r['phases']['qat']['seconds']:.2f} s, whole command {total:.2f} s (bar: < 15 s)")
sys.exit(0 if total < 15 else 1)
PY
