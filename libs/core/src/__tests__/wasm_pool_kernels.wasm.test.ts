/**
 * The wasm MaxPoolGrad and MaxPoolWithArgmax of wasm_pool_kernels.ts against the cpu backend's
 * (maxPoolPositions): the same dx, maxima and indices for SAME padding before the map (odd sizes,
 * windows wider than the stride), VALID padding, ties (after a relu) and several channels. The
 * stock wasm kernels failed this (dx 0.17 off on a 5x5 map with a 3x3 stride-2 SAME pool).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../index';

type Case = [number[], number, number, 'same' | 'valid', boolean];
const CASES: Case[] = [
  [[1, 5, 5, 1], 3, 2, 'same', false],
  [[2, 7, 5, 3], 2, 2, 'same', false],
  [[2, 7, 5, 3], 3, 1, 'same', false],
  [[2, 8, 8, 4], 3, 2, 'same', false],
  [[2, 7, 5, 3], 3, 2, 'valid', false],
  [[2, 5, 6, 3], 3, 2, 'same', true],
  [[1, 6, 9, 2], 2, 2, 'same', true],
];

/** dx of MaxPoolGrad, and MaxPoolWithArgmax's maxima and indices (with and without the batch), on the active backend. */
function run([shape, filterSize, strides, pad, ties]: Case): number[][] {
  return tf.tidy(() => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor4d(Array.from({ length: n }, (_, i) => (ties ? Math.max(Math.round(Math.sin(i * 1.37) * 2), 0) : Math.sin(i * 1.37))), shape as [number, number, number, number]);
    const y = tf.maxPool(x, filterSize, strides, pad);
    const dy = tf.tensor(Array.from({ length: y.size }, (_, i) => Math.cos(i * 0.7)), y.shape);
    const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize, strides, pad }) as tf.Tensor;
    const withBatch = tf.maxPoolWithArgmax(x, filterSize, strides, pad, true);
    const without = tf.maxPoolWithArgmax(x, filterSize, strides, pad, false);
    return [dx, withBatch.result, withBatch.indexes, without.indexes, y].map((t) => Array.from(t.dataSync()));
  });
}

test.each(CASES)('x %j, pool %i/%i %s (ties %s): wasm = cpu', async (...c) => {
  expect(await initBackend('cpu', { quiet: true })).toBe('cpu');
  const want = run(c);
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
  const before = tf.memory().numTensors;
  const got = run(c);
  expect(tf.memory().numTensors).toBe(before);
  const [dx, result, idxB, idx, y] = got;
  for (let i = 0; i < dx.length; i++) expect(Math.abs(dx[i] - want[0][i])).toBeLessThan(1e-6);
  expect(result).toEqual(want[1]);
  expect(result).toEqual(y); // the maxima are tf.maxPool's
  expect(idxB).toEqual(want[2]);
  expect(idx).toEqual(want[3]);
  expect(dx.some((v) => v !== 0)).toBe(true);
});
