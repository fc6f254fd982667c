// Times MLPLOpt.updateBatch for N stacked tasks of an FMNIST-8 MLP (P = 2,410 params:
// 64x32 + 32 + 32x10 + 10), shared vs per-task theta, on the cpu and wasm backends.
// Usage (after `npx tsc -b libs/optimizers`): node libs/optimizers/bench/mlp_lopt.bench.js [N] [reps]
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
const { random, treeMap, treeDispose } = require('@lopt/core');
const { MLPLOpt } = require('../dist');

const N = Number(process.argv[2] || 8);
const reps = Number(process.argv[3] || 20);
const shapes = { w0: [64, 32], b0: [32], w1: [32, 10], b1: [10] };

function bench(label, opt, params, grad) {
  let s = opt.initBatch(params);
  for (let i = 0; i < 3; i++) { const n = opt.updateBatch(s, grad); treeDispose(s); s = n; }
  tf.tidy(() => s.params.w0.dataSync());
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) { const n = opt.updateBatch(s, grad); treeDispose(s); s = n; }
  s.params.w0.dataSync();
  const ms = (performance.now() - t0) / reps;
  treeDispose(s);
  return { label, ms: Number(ms.toFixed(2)) };
}

async function main() {
  const out = [];
  for (const backend of ['cpu', 'wasm']) {
    await tf.setBackend(backend);
    await tf.ready();
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0));
    const thetaV = treeMap((x) => tf.stack(new Array(N).fill(x)), theta);
    const mk = (k) => Object.fromEntries(Object.entries(shapes).map(([n, s], i) => [n, random.normal(random.PRNGKey(k + i), [N, ...s])]));
    const params = mk(1), grad = mk(10);
    const before = tf.memory().numTensors;
    out.push({ backend, ...bench('shared theta', lopt.optFn(theta), params, grad) });
    out.push({ backend, ...bench('per-task theta', lopt.optFn(thetaV, false, true), params, grad) });
    if (tf.memory().numTensors !== before) throw new Error('leak');
  }
  const P = Object.values(shapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  console.log(`MLPLOpt.updateBatch N=${N} P=${P} (${reps} reps, ms per update)`);
  for (const r of out) console.log(`${r.backend.padEnd(5)} ${r.label.padEnd(15)} ${r.ms} ms`);
}
main();
