// Times ImageMLP_FashionMnist8_Relu32 value-and-grad for N stacked tasks on cpu and wasm.
// Build first (npx tsc -b libs/tasks), then: node libs/tasks/bench/bench_mlp.js
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
const { random, treeDispose } = require('@lopt/core');
const { ImageMLP_FashionMnist8_Relu32 } = require('../dist/index.js');

async function bench(backend, N, mode, reps) {
  await tf.setBackend(backend);
  const task = ImageMLP_FashionMnist8_Relu32();
  const params = task.initBatch(random.split(random.PRNGKey(0), N));
  const data = task.datasets.split('train').next([N]);
  const run = () => {
    const out = mode === 'autodiff'
      ? task.valueAndGradBatchAutodiff(params, null, null, data)
      : (task.matmulMode = mode, task.valueAndGradBatch(params, null, null, data));
    out.loss.dataSync();
    treeDispose([out.loss, out.grad]);
  };
  for (let i = 0; i < 5; i++) run();
  const t = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) run();
  const ms = Number(process.hrtime.bigint() - t) / 1e6 / reps;
  treeDispose([params, data]);
  return ms;
}

(async () => {
  for (const backend of ['cpu', 'wasm']) {
    for (const N of [1, 8, 16]) {
      const row = [];
      for (const mode of ['autodiff', 'batched', 'unstacked']) {
        if (N === 1 && mode === 'unstacked') continue;
        row.push(`${mode} ${(await bench(backend, N, mode, backend === 'cpu' ? 10 : 40)).toFixed(2)} ms`);
      }
      console.log(`${backend} N=${N}: ${row.join(' | ')}`);
    }
  }
})();
