// The ONNX Runtime side of bench/run_nn.sh: inference throughput of a network exported by
// bench/onnx_nn_export.py (eval mode), random float32 input of BATCH x 3 x SIDE x SIDE, one
// warm-up run, then STEPS timed runs. Prints one JSON line in bench_nn's field names:
//   {"arch": ..., "side": ..., "threads": ..., "infer_img_s": ..., "peak_mib": ...}
//
//   node bench/onnx_nn.mjs MODEL.onnx ARCH SIDE BATCH STEPS THREADS
//
// Session: intraOpNumThreads = THREADS, interOpNumThreads = 1, sequential, graph optimisation
// "all" (ONNX Runtime folds the batch norms into the convolutions itself), CPU provider.
// Set-up as bench/onnx_clip.mjs says: onnxruntime-node 1.30.0 installed outside the repository
// with --ignore-scripts, found through ORT_NODE_DIR (the folder holding node_modules) or NODE_PATH.
import { createRequire } from 'node:module';
import { join } from 'node:path';

function loadOrt() {
  const base = process.env.ORT_NODE_DIR ? join(process.env.ORT_NODE_DIR, 'x.js') : import.meta.url;
  try {
    return createRequire(base)('onnxruntime-node');
  } catch (e) {
    console.error('onnx_nn: cannot load onnxruntime-node (set ORT_NODE_DIR or NODE_PATH; see bench/onnx_clip.mjs): ' +
      e.message.split('\n')[0]);
    process.exit(1);
  }
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

async function main(args) {
  const nums = args.slice(2).map((v) => parseInt(v, 10));
  if (args.length !== 6 || nums.some((v) => !(v > 0))) {
    console.error('usage: node bench/onnx_nn.mjs MODEL.onnx ARCH SIDE BATCH STEPS THREADS');
    process.exit(2);
  }
  const [model, arch] = args, [side, batch, steps, threads] = nums;
  const ort = loadOrt();
  const s = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const shape = [batch, 3, side, side];
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', randn(batch * 3 * side * side, 3), shape) };
  await s.run(feeds); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) await s.run(feeds);
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  const line = { arch, side, threads, infer_img_s: Math.round(batch * steps / sec * 100) / 100,
    peak_mib: Math.round(process.resourceUsage().maxRSS / 1024) };
  console.log(JSON.stringify(line));
}

main(process.argv.slice(2)).catch((e) => { console.error('onnx_nn: ' + (e.stack || e)); process.exit(1); });
