// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ONNX Runtime as an independent oracle for tinyq's tests.
// usage: node run_ort.js MODEL.onnx IN_DIR OUT_DIR
// IN_DIR holds one <input name>.npy per feed (names hex-encoded: <hex>.npy); every output is
// written to OUT_DIR/<hex of output name>.npy. Exit 3 with ORT's message when ORT refuses.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const types = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array],
  '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array],
  '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Ctor] = types[descr];
  const start = 10 + headerLen;
  const bytes = buf.subarray(start);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const data = new Ctor(copy.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
  return new ort.Tensor(type, type === 'bool' ? Uint8Array.from(data) : data, shape);
}

function writeNpy(file, tensor) {
  const descr = Object.keys(types).find(k => types[k][0] === tensor.type);
  if (!descr) throw new Error('unsupported output type ' + tensor.type);
  const dims = tensor.dims.length === 1 ? `${tensor.dims[0]},` : tensor.dims.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = (64 - ((10 + header.length + 1) % 64)) % 64;
  header = header + ' '.repeat(pad) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

const hexToName = h => Buffer.from(h, 'hex').toString('utf8');
const nameToHex = n => Buffer.from(n, 'utf8').toString('hex');

(async () => {
  const [model, inDir, outDir] = process.argv.slice(2);
  let session;
  try {
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } catch (e) {
    process.stderr.write(String(e.message || e) + '\n');
    process.exit(3);
  }
  const feeds = {};
  for (const f of fs.readdirSync(inDir)) {
    if (f.endsWith('.npy')) feeds[hexToName(f.slice(0, -4))] = readNpy(path.join(inDir, f));
  }
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    process.stderr.write(String(e.message || e) + '\n');
    process.exit(3);
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, t] of Object.entries(results)) writeNpy(path.join(outDir, nameToHex(name) + '.npy'), t);
})();
