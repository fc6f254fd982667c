// MLP forward alternatives for per-task theta, N tasks x P rows, 19->32->32->2 (wasm and cpu).
// node libs/optimizers/bench/mlp_forward.bench.js [N] [P]
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
const { applyPerParamMLP } = require('../dist');
const N = Number(process.argv[2] || 8), P = Number(process.argv[3] || 2410), reps = 20;
function time(fn) {
  for (let i = 0; i < 3; i++) tf.tidy(() => { fn().dataSync(); });
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) tf.tidy(() => { fn().dataSync(); });
  return ((performance.now() - t0) / reps).toFixed(2);
}
(async () => {
  for (const backend of ['cpu', 'wasm']) {
    await tf.setBackend(backend); await tf.ready();
    const x8 = tf.randomNormal([N, P, 8]), time11 = tf.randomNormal([N, 11]);
    const layers = [[19, 32], [32, 32], [32, 2]].map(([a, b]) => ({ w: tf.randomNormal([N, a, b]), b: tf.randomNormal([N, b]) }));
    const x19 = tf.concat([x8, tf.broadcastTo(tf.expandDims(time11, 1), [N, P, 11])], 2);
    const batched = () => {
      let h = x19;
      layers.forEach((l, i) => { h = tf.add(tf.matMul(h, l.w), tf.expandDims(l.b, 1)); if (i < 2) h = tf.relu(h); });
      return h;
    };
    const ours = () => applyPerParamMLP(x8, time11, layers, true);
    const shared = () => applyPerParamMLP(x8, time11, layers.map((l) => ({ w: l.w.slice([0], [1]).squeeze([0]), b: l.b.slice([0], [1]).squeeze([0]) })), false);
    console.log(`${backend}: N=${N} P=${P}: rank-3 batched matMul ${time(batched)} ms; N 2-D matMuls + time split ${time(ours)} ms; shared theta one 2-D matMul ${time(shared)} ms`);
  }
})();
