/**
 * AvgPoolGrad (wasm_pool_kernels.ts, registered by initBackend for cpu and wasm) against central
 * finite differences of tf.avgPool itself, SAME and VALID padding, odd maps and windows wider than
 * the stride, on both backends. tf.js 4.22's own kernels divided every dy by the full window and
 * failed the SAME cases (1/9 where 1/4 is right at a corner of a 5x5 map, 3x3 stride-2 pool).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../index';

type Case = [number[], number, number, 'same' | 'valid'];
const CASES: Case[] = [
  [[1, 5, 5, 1], 3, 2, 'same'],
  [[2, 7, 5, 3], 2, 2, 'same'],
  [[2, 7, 5, 3], 3, 1, 'same'],
  [[1, 6, 9, 2], 3, 2, 'same'],
  [[2, 7, 5, 3], 3, 2, 'valid'],
];

/** Σ w·avgPool(x) and its gradient by the backend, and by central differences (in float64 sums of float32 forwards). */
function compare([shape, filterSize, strides, pad]: Case): { analytic: number[]; numeric: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = Array.from({ length: n }, (_, i) => Math.sin(i * 1.37));
  const f = (v: number[]) =>
    tf.tidy(() => {
      const y = tf.avgPool(tf.tensor4d(v, shape as [number, number, number, number]), filterSize, strides, pad);
      const w = tf.tensor(Array.from({ length: y.size }, (_, i) => Math.cos(i * 0.7)), y.shape);
      return Array.from(tf.mul(y, w).dataSync()).reduce((a, b) => a + b, 0);
    });
  const analytic = tf.tidy(() => {
    const x = tf.tensor4d(xs, shape as [number, number, number, number]);
    const g = tf.grad((t: tf.Tensor) => {
      const y = tf.avgPool(t as tf.Tensor4D, filterSize, strides, pad);
      return tf.sum(tf.mul(y, tf.tensor(Array.from({ length: y.size }, (_, i) => Math.cos(i * 0.7)), y.shape)));
    })(x);
    return Array.from(g.dataSync());
  });
  const h = 1e-2; // avgPool is linear: the central difference is exact up to float32 rounding
  const numeric = xs.map((_, i) => {
    const up = xs.slice();
    const down = xs.slice();
    up[i] += h;
    down[i] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
  return { analytic, numeric };
}

describe.each(['cpu', 'wasm'])('AvgPoolGrad on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  test.each(CASES)('%j filter %d stride %d %s: the gradient of the forward', (...c) => {
    const { analytic, numeric } = compare(c as Case);
    const worst = Math.max(...analytic.map((a, i) => Math.abs(a - numeric[i])));
    expect(worst).toBeLessThan(1e-4);
  });

  test('a corner of a 5x5 map under a 3x3 stride-2 SAME pool gets 1/4 (its window holds 4 elements)', () => {
    const g = tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.avgPool(x as tf.Tensor4D, 3, 2, 'same')))(tf.ones([1, 5, 5, 1])).dataSync()));
    expect(g[0]).toBeCloseTo(0.25, 6);
    expect(g[1]).toBeCloseTo(1 / 4 + 1 / 6, 6); // in the windows of outputs (0, 0) (4 elements) and (0, 1) (6)
  });
});
