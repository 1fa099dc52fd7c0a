#!/usr/bin/env bash
# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# Wall time of a whole `tinyq ptq-dynamic` process (start-up, load, rewrite, atomic write) on
# each of the four real models, in ms per run. The bar is under 50 ms per process on a 2-core
# machine (ONNX Runtime's Python quantize_dynamic takes about 0.6 s, mostly start-up).
# Uses hyperfine when installed, else a loop timed with date +%s%N.
#
# usage: bench/ptq_dynamic_speed.sh [RUNS]     (env: TINYQ=path/to/tinyq, TINYQ_SHARED=../shared)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tinyq=${TINYQ:-$root/build/tinyq}
shared=${TINYQ_SHARED:-$root/../shared}
runs=${1:-20}
bar_ms=50
[[ -x "$tinyq" ]] || { echo "error: $tinyq: not built (scripts/build.sh)" >&2; exit 2; }
[[ -d "$shared/models/real" ]] || { echo "error: $shared/models/real: not found (set TINYQ_SHARED)" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "tinyq ptq-dynamic, whole process, $runs runs each ($(nproc) CPUs; bar < $bar_ms ms)"
slow=0
for m in vmaf_tiny_v3 vmaf_tiny_v4 nr_metric_v1 learned_filter_v1; do
  in="$shared/models/real/$m.onnx"
  out="$scratch/$m.int8.onnx"
  cmd=("$tinyq" ptq-dynamic "$in" --output "$out")
  "${cmd[@]}" >/dev/null  # warm the page cache; fails loudly if the tool does
  if command -v hyperfine >/dev/null; then
    hyperfine --runs "$runs" --warmup 2 -N --export-json "$scratch/h.json" "${cmd[*]}" >/dev/null
    ms=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' "$scratch/h.json")
  else
    start=$(date +%s%N)
    for ((i = 0; i < runs; i++)); do "${cmd[@]}" >/dev/null; done
    end=$(date +%s%N)
    ms=$(awk -v ns=$((end - start)) -v n="$runs" 'BEGIN { printf "%.1f", ns / n / 1e6 }')
  fi
  verdict=ok
  if awk -v ms="$ms" -v bar="$bar_ms" 'BEGIN { exit !(ms >= bar) }'; then verdict=SLOW; slow=1; fi
  printf '  %-18s %8s ms/run  %7d -> %7d bytes  %s\n' "$m" "$ms" "$(stat -c %s "$in")" "$(stat -c %s "$out")" "$verdict"
done
exit $slow
