// The image-MLP native kernel on the wasm backend: it reads and writes the wasm heap in place.
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeMapN } from '@lopt/core';
import { ImageMLPTask, imageMlpNative } from '../index';
import { syntheticDatasets } from './helpers';

beforeAll(async () => {
  require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
});

const native = imageMlpNative() ? test : test.skip;
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

native('on wasm, loss and gradient equal the tf.js path; the heap can grow between calls', () => {
  expect(tf.getBackend()).toBe('wasm');
  const datasets = syntheticDatasets();
  const task = new ImageMLPTask({ datasets, hiddenSizes: [32] });
  const N = 4;
  const p = task.initBatch(random.split(random.PRNGKey(7), N));
  const data = datasets.split('train').next([N]);
  const viaNative = task.valueAndGradBatch(p, null, null, data);
  const viaTf = task.forwardBackwardOps(p, data, true);
  expect(maxAbsDiff(viaNative.loss, viaTf.loss)).toBeLessThan(1e-5);
  treeMapN((g: tf.Tensor, r: tf.Tensor) => expect(maxAbsDiff(g, r)).toBeLessThan(1e-5), viaNative.grad, viaTf.grad!);
  // grow the heap (a large allocation), then call again: the kernel takes fresh views each call
  const big = tf.zeros([64 * 1024 * 1024 / 4]);
  const again = task.valueAndGradBatch(p, null, null, data);
  expect(maxAbsDiff(again.loss, viaNative.loss)).toBe(0);
  treeDispose([big, p, viaNative, viaTf, again]);
});
