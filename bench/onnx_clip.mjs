// The ONNX Runtime side of bench/run_clip.sh: CLIP image-tower throughput on a model exported by
// bench/onnx_export.py, random float32 input, one warm-up step, then STEPS timed steps. Prints
// one JSON line like bench_clip and bench/torch_clip.py ("prog": "onnxruntime", "mode": "image";
// peak_mib from process.resourceUsage().maxRSS):
//
//   node bench/onnx_clip.mjs MODEL.onnx ARCH BATCH STEPS THREADS
//
// Session: intraOpNumThreads = THREADS, interOpNumThreads = 1, sequential execution, graph
// optimisation "all", CPU execution provider.
// (node bench/onnx_clip.mjs --eval MODEL.onnx ARCH BATCH IN.f32 OUT.f32 runs the model once on
// raw little-endian float32 input and writes the output: onnx_export.py's numeric check.)
//
// Set-up (Node.js 18+; checked with Node 20 and onnxruntime-node 1.30.0). The npm package ships
// its CPU binaries for linux x64 (bin/napi-v6/linux/x64), so its install script, which only
// downloads the CUDA/TensorRT providers from NuGet, is skipped. Install it outside the repo:
//   mkdir -p /tmp/ortnode && (cd /tmp/ortnode && npm install onnxruntime-node@1.30.0 --ignore-scripts)
// and point the script at it with either
//   ORT_NODE_DIR=/tmp/ortnode               (the directory holding node_modules/onnxruntime-node)
//   NODE_PATH=/tmp/ortnode/node_modules
// The model: /usr/bin/python3 bench/onnx_export.py /tmp/clip-vit-b-32.onnx clip-vit-b-32
// (python3-torch and python3-onnx from apt).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SIZES = { 'clip-vit-b-32': 224, 'clip-vit-b-16': 224, 'clip-tiny': 64 };

function loadOrt() {
  // ESM import ignores NODE_PATH; a CommonJS require honours it (and ORT_NODE_DIR's node_modules).
  const base = process.env.ORT_NODE_DIR ? join(process.env.ORT_NODE_DIR, 'x.js') : import.meta.url;
  try {
    return createRequire(base)('onnxruntime-node');
  } catch (e) {
    console.error('onnx_clip: cannot load onnxruntime-node (set ORT_NODE_DIR or NODE_PATH; see this file\'s top): ' +
      e.message.split('\n')[0]);
    process.exit(1);
  }
}

async function session(ort, model, threads) {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

function randn(n, seed) { // xorshift32 + Box-Muller: reproducible N(0, 1) input
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    x[i] = r * Math.cos(t);
    if (i + 1 < n) x[i + 1] = r * Math.sin(t);
  }
  return x;
}

async function main(argv) {
  const evalMode = argv[0] === '--eval';
  const args = evalMode ? argv.slice(1) : argv;
  if (args.length !== 5 || !(args[1] in SIZES)) {
    console.error('usage: node bench/onnx_clip.mjs MODEL.onnx ARCH BATCH STEPS THREADS\n' +
      '       node bench/onnx_clip.mjs --eval MODEL.onnx ARCH BATCH IN.f32 OUT.f32\n' +
      'ARCH: ' + Object.keys(SIZES).join(' | '));
    process.exit(2);
  }
  const [model, arch] = args, batch = parseInt(args[2], 10), size = SIZES[arch];
  const ort = loadOrt();
  const shape = [batch, 3, size, size];
  if (evalMode) {
    const s = await session(ort, model, 1);
    const buf = readFileSync(args[3]);
    const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, shape) });
    const y = out[s.outputNames[0]].data;
    writeFileSync(args[4], Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    return;
  }
  const steps = parseInt(args[3], 10), threads = parseInt(args[4], 10);
  const s = await session(ort, model, threads);
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', randn(batch * 3 * size * size, 3), shape) };
  await s.run(feeds); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) await s.run(feeds);
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  const line = { prog: 'onnxruntime', arch, mode: 'image', batch, threads,
    per_s: Math.round(batch * steps / sec * 100) / 100, peak_mib: Math.round(peak * 10) / 10 };
  // spaced like Python's json.dumps, as the other programs print it
  const fields = Object.entries(line).map(([k, v]) => JSON.stringify(k) + ': ' + JSON.stringify(v));
  console.log('{' + fields.join(', ') + '}');
}

main(process.argv.slice(2)).catch((e) => { console.error('onnx_clip: ' + (e.stack || e)); process.exit(1); });
