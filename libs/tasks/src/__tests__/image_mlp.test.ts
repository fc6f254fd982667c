import { syntheticDatasets, useTestBackend } from './helpers';
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeLeaves, treeMap, treeMapN, treeSize } from '@lopt/core';
import {
  ImageMLPTask,
  ImageMLP_FashionMnist8_Relu32,
  findFashionMnistDir,
} from '../index';

let hasData = true;
try {
  findFashionMnistDir({ download: false });
} catch (e) {
  hasData = false;
  console.warn(`Fashion-MNIST absent, MLP tests use synthetic data: ${(e as Error).message}`);
}

beforeAll(async () => {
  await useTestBackend();
});

const makeTask = () => (hasData ? new ImageMLP_FashionMnist8_Relu32() : new ImageMLPTask({ datasets: syntheticDatasets() }));
const keysOf = (seed: number, n: number) => random.split(random.PRNGKey(seed), n);
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('ImageMLP_FashionMnist8_Relu32', () => {
  test('params: names, shapes, 2,410 in all; Haiku init scale; name', () => {
    const task = makeTask();
    expect(task.name).toBe('_MLPImageTask');
    const p = task.init(random.PRNGKey(0)) as any;
    expect(Object.keys(p).sort()).toEqual(['mlp/~/linear_0', 'mlp/~/linear_1']);
    expect(p['mlp/~/linear_0'].w.shape).toEqual([64, 32]);
    expect(p['mlp/~/linear_0'].b.shape).toEqual([32]);
    expect(p['mlp/~/linear_1'].w.shape).toEqual([32, 10]);
    expect(p['mlp/~/linear_1'].b.shape).toEqual([10]);
    expect(treeSize(p)).toBe(2410);
    const w0 = p['mlp/~/linear_0'].w.dataSync();
    const sd = Math.sqrt(w0.reduce((a: number, v: number) => a + v * v, 0) / w0.length);
    expect(sd).toBeGreaterThan(0.88 / 8 - 0.01); // truncated normal std 0.88, not variance corrected
    expect(sd).toBeLessThan(0.88 / 8 + 0.01);
    expect(Math.max(...w0.map(Math.abs))).toBeLessThanOrEqual(2 / 8);
    expect(Array.from(p['mlp/~/linear_1'].b.dataSync())).toEqual(new Array(10).fill(0));
    // task i's params depend only on keys[i]
    const ks = keysOf(1, 3);
    const a = task.initBatch(ks) as any;
    const b = task.initBatch([random.PRNGKey(99), ks[1]]) as any;
    expect(maxAbsDiff(tf.gather(a['mlp/~/linear_0'].w, 1), tf.gather(b['mlp/~/linear_0'].w, 1))).toBe(0);
    expect(registry.create('task', 'ImageMLP_FashionMnist8_Relu32')).toBeInstanceOf(ImageMLPTask);
  });

  test('initial loss ≈ ln 10 ≈ 2.3', () => {
    const task = makeTask();
    const N = 8;
    const p = task.initBatch(keysOf(2, N));
    const data = task.datasets!.split('train').next([N]);
    const l = Array.from(task.lossBatch(p, null, data).dataSync() as Float32Array);
    const mean = l.reduce((a, b) => a + b, 0) / N;
    expect(mean).toBeGreaterThan(2.1);
    expect(mean).toBeLessThan(2.6);
  });

  test('hand-written backward equals tf.grads (batched, unstacked and single layouts)', () => {
    const task = makeTask();
    const N = 4;
    const p = task.initBatch(keysOf(3, N));
    const data = task.datasets!.split('train').next([N]);
    const ref = task.valueAndGradBatchAutodiff(p, null, null, data);
    // the native kernel (where built; native.test.ts covers it further) and the tf.js layouts
    for (const [path, mode] of [['kernel where built', 'auto'], ['tf.js ops', 'batched'], ['tf.js ops', 'unstacked']] as const) {
      task.matmulMode = mode;
      const out = path === 'tf.js ops' ? { ...task.forwardBackwardOps(p, data, true) } : task.valueAndGradBatch(p, null, null, data);
      expect(maxAbsDiff(out.loss, ref.loss)).toBeLessThan(1e-5);
      treeMapN((g: tf.Tensor, r: tf.Tensor) => {
        expect(g.shape).toEqual(r.shape);
        expect(maxAbsDiff(g, r)).toBeLessThan(1e-5);
      }, out.grad, ref.grad);
    }
    task.matmulMode = 'auto';
    // tanh / two hidden layers too
    const t2 = new ImageMLPTask({ datasets: task.datasets!, hiddenSizes: [16, 8], activation: 'tanh' });
    const p2 = t2.initBatch(keysOf(4, 3));
    const d2 = task.datasets!.split('train').next([3]);
    const r2 = t2.valueAndGradBatchAutodiff(p2, null, null, d2);
    for (const mode of ['batched', 'unstacked'] as const) {
      t2.matmulMode = mode;
      const o2 = t2.valueAndGradBatch(p2, null, null, d2);
      treeMapN((g: tf.Tensor, r: tf.Tensor) => expect(maxAbsDiff(g, r)).toBeLessThan(1e-5), o2.grad, r2.grad);
    }
  });

  test('stacked N-task loss/grad equal N single-task calls', () => {
    const task = makeTask();
    const N = 3;
    const p = task.initBatch(keysOf(5, N)) as any;
    const data = task.datasets!.split('train').next([N]) as any;
    const out = task.valueAndGradBatch(p, null, null, data);
    for (let i = 0; i < N; i++) {
      const pi = treeMap((x: tf.Tensor) => tf.gather(x, i), p);
      const di = treeMap((x: tf.Tensor) => tf.gather(x, i), data);
      const single = (task as ImageMLPTask).valueAndGrad(pi, null, null, di);
      expect(Math.abs(single.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5);
      expect(Math.abs(task.loss(pi, null, di).dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5);
      treeMapN((g: tf.Tensor, gs: tf.Tensor) => expect(maxAbsDiff(tf.gather(g, i), gs)).toBeLessThan(1e-5), out.grad, single.grad);
    }
  });

  test('normalizer: clip to [0, 1.5 ln 10], NaN -> 1.5 ln 10', () => {
    const task = makeTask();
    const m = 1.5 * Math.log(10);
    const v = task.normalizer(tf.tensor1d([-1, 1, 5, NaN, Infinity])).dataSync();
    [0, 1, m, m, m].forEach((w, i) => expect(v[i]).toBeCloseTo(w, 5));
  });

  test('300 SGD steps at lr 0.1 bring the train loss clearly down; no tensor leak over 100 steps', () => {
    const task = makeTask();
    let params = task.init(random.PRNGKey(0));
    const stream = task.datasets!.split('train');
    const losses: number[] = [];
    let before = 0;
    for (let i = 0; i < 300; i++) {
      if (i === 100) before = tf.memory().numTensors;
      const data = stream.next();
      const { loss, grad } = (task as ImageMLPTask).valueAndGrad(params, null, null, data);
      const next = tf.tidy(() => treeMapN((p: tf.Tensor, g: tf.Tensor) => tf.sub(p, tf.mul(g, 0.1)), params, grad));
      losses.push(loss.dataSync()[0]);
      treeDispose([params, grad, loss, data]);
      params = next;
      if (i === 199) expect(tf.memory().numTensors).toBe(before);
    }
    const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
    const last = losses.slice(-20).reduce((a, b) => a + b) / 20;
    expect(first).toBeGreaterThan(2.0);
    expect(last).toBeLessThan(first - 0.5);
    if (hasData) expect(last).toBeLessThan(1.3);
    expect(treeLeaves(params).length).toBe(4);
  });

  test('ImageMLPTask config: 16x16, 28x28 128x128 are one line each', () => {
    if (!hasData) return;
    const t = registry.create<ImageMLPTask>('task', 'ImageMLPTask', { imageSize: [16, 16] });
    expect(t.inputSize).toBe(256);
    const big = registry.create<ImageMLPTask>('task', 'ImageMLP_FashionMnist_Relu128x128');
    expect(treeSize(big.init(random.PRNGKey(0)))).toBe(784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10);
  });
});
