import * as tf from '@tensorflow/tfjs';
import { random, registry, treeMap, treeMapN } from '@lopt/core';
import { LinearRegressionFamily } from '../index';

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}

beforeAll(async () => {
  await useTestBackend();
});

const keysOf = (seed: number, n: number) => random.split(random.PRNGKey(seed), n);

test('registered under its name, config validated', () => {
  expect(registry.list('task_family').map((e) => e.name)).toContain('LinearRegressionFamily');
  const fam = registry.create<LinearRegressionFamily>('task_family', 'LinearRegressionFamily', { dim: 4 });
  expect(fam.config).toEqual({ dim: 4, batchSize: 32, noise: 0.1 });
  expect(() => registry.create('task_family', 'LinearRegressionFamily', { dim: -1 })).toThrow(/dim/);
});

test('loss at the true weights is about noise², at init about |wTrue|²', () => {
  const fam = new LinearRegressionFamily({ dim: 8, batchSize: 256, noise: 0.1 });
  const wTrue = fam.sampleBatch(keysOf(0, 16)) as tf.Tensor;
  const task = fam.taskFn(wTrue);
  const atTruth = task.lossBatch({ w: wTrue, b: tf.zeros([16]) }, keysOf(1, 16), null);
  expect(tf.mean(atTruth).dataSync()[0]).toBeCloseTo(0.01, 2);
  const p = task.initBatch(keysOf(2, 16));
  const l0 = tf.mean(task.lossBatch(p, keysOf(3, 16), null)).dataSync()[0];
  expect(l0).toBeGreaterThan(4);
});

test('stacked loss and grad equal single-task calls', () => {
  const fam = new LinearRegressionFamily({ dim: 3 });
  const N = 3;
  const wTrue = fam.sampleBatch(keysOf(4, N)) as tf.Tensor;
  const task = fam.taskFn(wTrue);
  const p = task.initBatch(keysOf(5, N));
  const ks = keysOf(6, N);
  const out = task.valueAndGradBatch(p, null, ks, null);
  expect(out.loss.shape).toEqual([N]);
  for (let i = 0; i < N; i++) {
    const single = fam.taskFn(tf.gather(wTrue, i));
    const pi = treeMap((x: tf.Tensor) => tf.gather(x, i), p);
    expect(single.loss(pi, ks[i], null).dataSync()[0]).toBeCloseTo(out.loss.dataSync()[i], 4);
    const g = tf.grads((w: tf.Tensor, b: tf.Tensor) => single.loss({ w, b }, ks[i], null))([(pi as any).w, (pi as any).b]);
    treeMapN((a: tf.Tensor, b: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(tf.gather(a, i), b))).dataSync()[0]).toBeLessThan(1e-4), [(out.grad as any).w, (out.grad as any).b], g);
  }
});

test('gradient descent fits the weights', () => {
  const fam = new LinearRegressionFamily({ dim: 5, noise: 0.1 });
  const wTrue = fam.sampleBatch(keysOf(7, 4)) as tf.Tensor;
  const task = fam.taskFn(wTrue);
  let p = task.initBatch(keysOf(8, 4));
  let key = random.PRNGKey(9);
  const first = tf.mean(task.lossBatch(p, keysOf(10, 4), null)).dataSync()[0];
  for (let i = 0; i < 100; i++) {
    const [k, sub] = random.split(key);
    key = k;
    const { grad } = task.valueAndGradBatch(p, null, random.split(sub, 4), null);
    p = treeMapN((x: tf.Tensor, g: tf.Tensor) => tf.sub(x, tf.mul(g, 0.1)), p, grad);
  }
  const last = tf.mean(task.lossBatch(p, keysOf(11, 4), null)).dataSync()[0];
  expect(last).toBeLessThan(0.05);
  expect(last).toBeLessThan(first / 20);
});
