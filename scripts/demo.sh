#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds Release into build/,
# then inspects, quantises and gates the example models in a scratch copy (build/demo/), and
# prints a short table. The checked-in examples/ are never modified.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh >/dev/null 2>&1 || scripts/build.sh
tinyq=build/tinyq
demo=build/demo
rm -rf "$demo"
mkdir -p "$demo"
cp examples/*.onnx examples/*.npz examples/registry.json examples/registry.schema.json "$demo"/

echo "== tinyq $("$tinyq" --version | cut -d' ' -f2) on the bundled example"
for m in "$demo"/mlp_regressor.onnx "$demo"/residual_filter.onnx; do
  "$tinyq" inspect "$m" | sed -n '1,4p'
done

echo
echo "== dynamic PTQ, registry update, accuracy gate"
"$tinyq" ptq-dynamic "$demo"/mlp_regressor.onnx --report-out "$demo"/mlp_regressor.ptq.json >/dev/null
"$tinyq" ptq-dynamic "$demo"/residual_filter.onnx --per-channel --report-out "$demo"/residual_filter.ptq.json >/dev/null
"$tinyq" registry set example_mlp --registry "$demo"/registry.json --quant-mode dynamic \
  --int8 "$demo"/mlp_regressor.int8.onnx >/dev/null
"$tinyq" registry set example_filter --registry "$demo"/registry.json --quant-mode dynamic \
  --int8 "$demo"/residual_filter.int8.onnx >/dev/null
"$tinyq" registry validate --registry "$demo"/registry.json --check-files
echo
# The seed's synthetic gate, plus real content (gate_data.npz) for a second row per model.
"$tinyq" measure-quant-drop --all --registry "$demo"/registry.json --data "$demo"/gate_data.npz \
  --out-json "$demo"/gate.json --html "$demo"/gate.html
echo
printf '%-16s %10s %10s %7s\n' model fp32_bytes int8_bytes ratio
for m in mlp_regressor residual_filter; do
  a=$(stat -c %s "$demo/$m.onnx"); b=$(stat -c %s "$demo/$m.int8.onnx")
  awk -v m="$m" -v a="$a" -v b="$b" 'BEGIN { printf "%-16s %10d %10d %6.2fx\n", m, a, b, a / b }'
done
echo "(reports: $demo/*.ptq.json, $demo/gate.json, $demo/gate.html)"
