// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The seed gate's samples through ONNX Runtime in one process (tests/ort/run_ort.js starts node
// once per feed set, and the gate needs one run per sample: dynamic quantisation takes its
// activation ranges per run, so batching samples would change the answer).
// usage: node ort_gate.js MODEL.onnx GATE_INPUTS.npz OUT.npy [LIMIT]
// GATE_INPUTS.npz holds `<input>__<i>` arrays; every sample i = 0, 1, ... (the first LIMIT when
// given) is run on its own and the first output of each, flattened, is concatenated into
// OUT.npy (float32, 1-D).
// Exit 3 with ONNX Runtime's message when it refuses the model or a run.
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, '..', 'ort', 'node_modules');
const ort = require(path.join(modules, 'onnxruntime-node'));
const AdmZip = require(path.join(modules, 'adm-zip'));

const types = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array] };

function parseNpy(buf, name) {
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (!types[descr]) throw new Error(`${name}: unsupported dtype ${descr}`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Ctor] = types[descr];
  const bytes = buf.subarray(10 + headerLen);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new ort.Tensor(type, new Ctor(copy.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT), shape);
}

function writeNpyF32(file, values) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${values.length},), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

(async () => {
  const [model, npz, out, limitArg] = process.argv.slice(2);
  const limit = limitArg === undefined ? Infinity : Number(limitArg);
  const samples = new Map();  // index -> feeds
  for (const entry of new AdmZip(npz).getEntries()) {
    const m = /^(.*)__(\d+)\.npy$/.exec(entry.entryName);
    if (!m) continue;
    const i = Number(m[2]);
    if (!samples.has(i)) samples.set(i, {});
    samples.get(i)[m[1]] = parseNpy(entry.getData(), entry.entryName);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } catch (e) {
    process.stderr.write(String(e.message || e) + '\n');
    process.exit(3);
  }
  const parts = [];
  for (const i of [...samples.keys()].sort((a, b) => a - b).slice(0, limit)) {
    try {
      const results = await session.run(samples.get(i));
      parts.push(Float32Array.from(results[session.outputNames[0]].data));
    } catch (e) {
      process.stderr.write(`sample ${i}: ${String(e.message || e)}\n`);
      process.exit(3);
    }
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  writeNpyF32(out, all);
})();
