#!/usr/bin/env bash
# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# Prints issue 8's target table on this machine: tinyq against ONNX Runtime (npm
# onnxruntime-node) measured in the same run, as ratios. Not a test: numbers depend on the
# machine and its load; run it on a quiet machine and read the ratios, not the absolute times.
#
# usage: bench/bench.sh [BUILD_DIR] [--quick]
#   BUILD_DIR (default build) holds tinyq and tinyq_bench_mlp; ../shared must hold the models.
#   --quick measures 0.5 s per model instead of 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=2
for a in "$@"; do
  case $a in
    --quick) seconds=0.5 ;;
    *) build=$a ;;
  esac
done
tinyq=$build/tinyq
mlp=$build/tinyq_bench_mlp
shared=${TINYQ_SHARED:-../shared}
real=$shared/models/real
ref=$shared/reference/ort-1.30
for f in "$tinyq" "$mlp"; do [[ -x $f ]] || { echo "bench: $f not built (cmake --build $build)" >&2; exit 2; }; done
[[ -d $real ]] || { echo "bench: $real not found (set TINYQ_SHARED)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench: python3 is needed to format the table" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

note() { echo "  ... $*" >&2; }

# 1. Image models at 1x1x224x224: fp32, dynamic int8 (the fork's file), static QDQ (ORT's).
for m in learned_filter_v1 nr_metric_v1; do
  note "$m"
  "$tinyq" bench "$real/$m.onnx" --int8 "$real/$m.int8.onnx" --ort --json --seconds "$seconds" >"$out/$m.dyn.json"
  "$tinyq" bench "$real/$m.onnx" --int8 "$ref/$m.ort_qdq.int8.onnx" --ort --json --seconds "$seconds" >"$out/$m.qdq.json"
  # The fallback without int8 dot products: the same files with the ISA capped at AVX2.
  TINYQ_MAX_ISA=avx2 "$tinyq" bench "$real/$m.onnx" --int8 "$real/$m.int8.onnx" --json --seconds "$seconds" >"$out/$m.avx2.json"
done
note "learned_filter_v1 --threads 2"
"$tinyq" bench "$real/learned_filter_v1.onnx" --int8 "$real/learned_filter_v1.int8.onnx" --threads 1 --json --seconds "$seconds" >"$out/lf.t1.json"
"$tinyq" bench "$real/learned_filter_v1.onnx" --int8 "$real/learned_filter_v1.int8.onnx" --threads 2 --json --seconds "$seconds" >"$out/lf.t2.json"

# 2. The MLPs in-process through the C++ API (batch 1 and 1024), ONNX Runtime through node.
for m in vmaf_tiny_v3 vmaf_tiny_v4; do
  note "$m"
  for b in 1 1024; do
    "$mlp" "$real/$m.onnx" --batch $b --seconds "$seconds" --json >"$out/$m.fp32.b$b.json"
    "$mlp" "$real/$m.int8.onnx" --batch $b --seconds "$seconds" --json >"$out/$m.int8.b$b.json"
    node bench/ort_bench.js "$real/$m.onnx" --input "features:$b,6" --min-seconds "$seconds" >"$out/$m.ort.b$b.json"
  done
done

# 3. Peak memory of one `tinyq run` on learned_filter_v1 against one ONNX Runtime run.
note "peak memory"
python3 - "$out/in.npz" <<'EOF'
# An .npz (a zip of .npy members) by hand, so the script needs no numpy.
import random, struct, sys, zipfile
random.seed(0)
n = 224 * 224
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 224, 224), }"
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
npy += struct.pack("<%df" % n, *(random.random() for _ in range(n)))
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("degraded.npy", npy)
EOF
/usr/bin/time -v "$tinyq" run "$real/learned_filter_v1.onnx" --input "$out/in.npz" --output "$out/o.npz" >/dev/null 2>"$out/mem.tinyq" || true
# The processes' own baselines (the tinyq binary links every layer's libraries; node is node).
/usr/bin/time -v "$tinyq" --version >/dev/null 2>"$out/mem.tinyq0" || true
/usr/bin/time -v node -e 0 >/dev/null 2>"$out/mem.ort0" || true
/usr/bin/time -v node bench/ort_bench.js "$real/learned_filter_v1.onnx" --input degraded:1,1,224,224 --warmup 0 --runs 1 \
  >/dev/null 2>"$out/mem.ort" || true

python3 - "$out" <<'EOF'
import json, os, re, sys
d = sys.argv[1]
def j(name): return json.load(open(os.path.join(d, name)))
def res(doc, runtime, model_part):
    for r in doc["results"]:
        if r["runtime"] == runtime and model_part in os.path.basename(r["model"]):
            return r.get("median_us")
    return None
def ok(cond): return "met" if cond else "NOT met"
def ms(us): return "n/a" if us is None else (f"{us/1000:.2f} ms" if us >= 1000 else f"{us:.1f} us")

first = j("learned_filter_v1.dyn.json")
print(f"cpu: {first['cpu']} ({first['features']}); int8 dot product: {first['int8_dot_product']}")
if "warning" in first: print("warning:", first["warning"])
print()
print("Image models, 1x1x224x224, 1 thread (median latency; ratios from the same run)")
print(f"{'model':20} {'ORT fp32':>11} {'tinyq fp32':>11} {'tinyq dyn':>11} {'tinyq qdq':>11}   targets")
for m in ["learned_filter_v1", "nr_metric_v1"]:
    dyn, qdq = j(f"{m}.dyn.json"), j(f"{m}.qdq.json")
    ort = res(dyn, "onnxruntime", f"{m}.onnx")
    t32 = res(dyn, "tinyq", f"{m}.onnx")
    tdy = res(dyn, "tinyq", f"{m}.int8.onnx")
    tqd = res(qdq, "tinyq", "ort_qdq")
    print(f"{m:20} {ms(ort):>11} {ms(t32):>11} {ms(tdy):>11} {ms(tqd):>11}")
    if None in (ort, t32, tdy, tqd):
        print("    (a run failed; see the JSON)"); continue
    print(f"    tinyq fp32 vs ORT fp32: {ort/t32:.2f}x faster (target >= 1.00x: {ok(ort/t32 >= 1.0)})")
    for tag, t in [("dynamic", tdy), ("static QDQ", tqd)]:
        print(f"    int8 {tag}: {ort/t:.2f}x faster than ORT fp32 (>= 2x: {ok(ort/t >= 2)}), "
              f"{t32/t:.2f}x faster than tinyq fp32 (>= 1.5x: {ok(t32/t >= 1.5)})")
    cap = j(f"{m}.avx2.json")
    c32, c8 = res(cap, "tinyq", f"{m}.onnx"), res(cap, "tinyq", f"{m}.int8.onnx")
    print(f"    without VNNI (TINYQ_MAX_ISA=avx2): int8 {ms(c8)} vs fp32 {ms(c32)} = {c8/c32:.2f}x the fp32 time "
          f"(<= 1.2x: {ok(c8/c32 <= 1.2)})")
t1, t2 = j("lf.t1.json"), j("lf.t2.json")
for name, part in [("fp32", "learned_filter_v1.onnx"), ("int8 dynamic", "learned_filter_v1.int8.onnx")]:
    a, b = res(t1, "tinyq", part), res(t2, "tinyq", part)
    print(f"learned_filter_v1 {name} --threads 2: {ms(a)} -> {ms(b)} = {a/b:.2f}x (>= 1.6x: {ok(a/b >= 1.6)})")
print()
print("MLPs through the C++ API (tinyq_bench_mlp), ONNX Runtime through node")
print(f"{'model':14} {'batch':>6} {'tinyq fp32':>12} {'tinyq int8':>12} {'ORT fp32':>12}   targets")
for m in ["vmaf_tiny_v3", "vmaf_tiny_v4"]:
    for b in [1, 1024]:
        f32 = j(f"{m}.fp32.b{b}.json")["median_ns"] / 1000
        i8 = j(f"{m}.int8.b{b}.json")["median_ns"] / 1000
        ort = j(f"{m}.ort.b{b}.json")["median_us"]
        target = (f"batch 1 < 1 us: fp32 {ok(f32 < 1)}, int8 {ok(i8 < 1)}" if b == 1 else
                  f"int8 throughput >= ORT fp32: {ok(i8 <= ort)} ({ort/i8:.2f}x)")
        print(f"{m:14} {b:>6} {ms(f32):>12} {ms(i8):>12} {ms(ort):>12}   {target}")
print()
def peak(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
    return int(m.group(1)) if m else None
pt, po = peak(os.path.join(d, "mem.tinyq")), peak(os.path.join(d, "mem.ort"))
bt, bo = peak(os.path.join(d, "mem.tinyq0")), peak(os.path.join(d, "mem.ort0"))
if pt and po:
    print(f"peak memory, one learned_filter_v1 run: tinyq {pt/1024:.1f} MiB, ONNX Runtime (node) {po/1024:.1f} MiB "
          f"(tinyq <= ORT: {ok(pt <= po)})")
    if bt and bo:
        print(f"    above each process's baseline (tinyq --version {bt/1024:.1f} MiB, node -e 0 {bo/1024:.1f} MiB): "
              f"tinyq +{(pt-bt)/1024:.1f} MiB, ONNX Runtime +{(po-bo)/1024:.1f} MiB")
else:
    print("peak memory: /usr/bin/time -v failed")
EOF
