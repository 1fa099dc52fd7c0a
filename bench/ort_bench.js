// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ONNX Runtime's latency for one model, for `tinyq bench --ort` and bench/bench.sh: the same
// measurement tinyq bench makes (warm-up, then the median and spread of per-run times), so the
// two can sit side by side in one table.
//
// usage: node ort_bench.js MODEL.onnx --input NAME:SHAPE [--input ...] [--threads N]
//                          [--warmup W] [--runs R] [--min-seconds S]
//   SHAPE is comma-separated dims, e.g. frame:1,1,224,224. Inputs are float32, filled with
//   deterministic values in [0, 1) (the seed gate feeds uniform [0, 1) too).
// Prints one JSON object: {"median_us", "p10_us", "p90_us", "min_us", "runs", "threads"}.
// Exit 3 with ORT's message when ORT refuses the model.
'use strict';
const path = require('path');

function loadOrt() {
  const candidates = [
    path.join(__dirname, '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node'),
    'onnxruntime-node',
  ];
  for (const c of candidates) {
    try {
      return require(c);
    } catch (e) {
      // try the next place
    }
  }
  process.stderr.write('onnxruntime-node is not installed (tests/ort/node_modules)\n');
  process.exit(3);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], threads: 1, warmup: 10, runs: 0, minSeconds: 1.0 };
  for (let i = 0; i < argv.length; ++i) {
    const v = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(v + ' needs a value');
      return argv[++i];
    };
    if (v === '--input') {
      const spec = next();
      const colon = spec.lastIndexOf(':');
      if (colon < 1) throw new Error('--input wants NAME:d0,d1,...');
      const dims = spec.slice(colon + 1).split(',').map(Number);
      if (dims.some(d => !Number.isInteger(d) || d < 0)) throw new Error('bad shape in ' + spec);
      a.inputs.push({ name: spec.slice(0, colon), dims });
    } else if (v === '--threads') a.threads = Number(next());
    else if (v === '--warmup') a.warmup = Number(next());
    else if (v === '--runs') a.runs = Number(next());
    else if (v === '--min-seconds') a.minSeconds = Number(next());
    else if (!a.model) a.model = v;
    else throw new Error('unexpected argument ' + v);
  }
  if (!a.model) throw new Error('usage: node ort_bench.js MODEL.onnx --input NAME:SHAPE ...');
  return a;
}

// A small linear congruential generator: the same feeds on every run and machine.
function fill(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 8) / 16777216;
  }
  return out;
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

(async () => {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(String(e.message) + '\n');
    process.exit(2);
  }
  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(args.model, {
      intraOpNumThreads: args.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
  } catch (e) {
    process.stderr.write(String(e.message || e) + '\n');
    process.exit(3);
  }
  const feeds = {};
  args.inputs.forEach((inp, k) => {
    const n = inp.dims.reduce((x, y) => x * y, 1);
    feeds[inp.name] = new ort.Tensor('float32', fill(n, 12345 + k), inp.dims);
  });
  try {
    for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
    const times = [];
    const start = process.hrtime.bigint();
    for (;;) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
      const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
      if (args.runs > 0 ? times.length >= args.runs : (elapsed >= args.minSeconds && times.length >= 5)) break;
    }
    times.sort((x, y) => x - y);
    process.stdout.write(JSON.stringify({
      median_us: quantile(times, 0.5), p10_us: quantile(times, 0.1), p90_us: quantile(times, 0.9),
      min_us: times[0], runs: times.length, threads: args.threads,
    }) + '\n');
  } catch (e) {
    process.stderr.write(String(e.message || e) + '\n');
    process.exit(3);
  }
})();
