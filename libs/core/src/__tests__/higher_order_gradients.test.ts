/**
 * Gradients of gradients (higher_order_gradients.ts): Hessian-vector products through kernels whose
 * gradient reuses their saved output, through a customGrad op that saves its output, and through
 * masks, against central finite differences of the first gradient. Before the fix the terms
 * through saved outputs were missing (exp: exp(x) instead of exp(x)(1 + x)) and masks threw.
 */
import * as tf from '@tensorflow/tfjs';
import { fixHigherOrderGradients, initBackend } from '../index';

const X = [0.3, -0.8, 1.2, -0.1];
const W = [0.7, -0.4, 0.25, 1.1];

/** A customGrad square whose gradient uses its saved output: d(x²)/dx written as 2·y/x. */
const squareViaOutput = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const y = tf.square(x);
  save([x, y]);
  return { value: y, gradFunc: (dy: tf.Tensor, [xs, ys]: tf.Tensor[]) => tf.mul(dy, tf.div(tf.mul(2, ys), xs)) };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

const IMAGE = () => tf.tensor4d([0.5, -0.3, 0.8, 0.1, -0.6, 0.4, 0.2, -0.9, 0.7], [1, 3, 3, 1]);
const FILTER = () => tf.tensor4d([0.3, -0.5, 0.9, 0.2], [2, 2, 1, 1]);

/** A [1, 4, 4, 1] map of x_i · c_j (rows i, columns j). */
const outer4x4 = (x: tf.Tensor) => tf.reshape(tf.matMul(tf.reshape(x, [4, 1]), tf.tensor2d([[1, -0.5, -0.9, 0.2]])), [1, 4, 4, 1]) as tf.Tensor4D;

const CASES: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
  ['exp', (x) => tf.sum(tf.exp(x))],
  ['tanh', (x) => tf.sum(tf.tanh(x))],
  ['sigmoid', (x) => tf.sum(tf.sigmoid(x))],
  ['silu (x·sigmoid)', (x) => tf.sum(tf.mul(x, tf.sigmoid(x)))],
  ['softmax', (x) => tf.sum(tf.mul(tf.softmax(x), tf.tensor1d([1, 2, 3, 4])))],
  ['logSoftmax (a cross-entropy)', (x) => tf.neg(tf.sum(tf.mul(tf.logSoftmax(x), tf.tensor1d([0.1, 0.2, 0.3, 0.4]))))],
  ['elu', (x) => tf.sum(tf.elu(tf.mul(x, 2)))],
  ['pow', (x) => tf.sum(tf.pow(tf.add(x, 2), 3))],
  ['customGrad that saves its output', (x) => tf.sum(tf.mul(squareViaOutput(x) as tf.Tensor, tf.exp(x)))],
  ['a mask (where x > 0)', (x) => tf.sum(tf.where(tf.greater(x, 0), tf.exp(x), tf.mul(x, x)))],
  ['logSumExp', (x) => tf.logSumExp(tf.mul(x, 3))],
  // x as a convolution's filter: the inner gradient is Conv2DBackpropFilter, which had no gradient
  ['conv2d (x the filter)', (x) => tf.sum(tf.tanh(tf.conv2d(IMAGE(), tf.reshape(x, [2, 2, 1, 1]), 1, 'same')))],
  ['depthwiseConv2d (x the filter)', (x) => tf.sum(tf.tanh(tf.depthwiseConv2d(IMAGE(), tf.reshape(x, [2, 2, 1, 1]), 1, 'same')))],
  ['depthwiseConv2d (x the image)', (x) => tf.sum(tf.tanh(tf.depthwiseConv2d(tf.reshape(x, [1, 2, 2, 1]) as tf.Tensor4D, FILTER(), 1, 'same')))],
  ['avgPool', (x) => tf.sum(tf.square(tf.tanh(tf.avgPool(tf.reshape(x, [1, 2, 2, 1]) as tf.Tensor4D, 2, 1, 'same'))))],
  // the inner gradient is MaxPoolGrad, which had no gradient; overlapping windows share maxima
  ['maxPool 2x2/1 SAME', (x) => tf.sum(tf.square(tf.tanh(tf.maxPool(tf.reshape(x, [1, 2, 2, 1]) as tf.Tensor4D, 2, 1, 'same'))))],
  // the ResNet's 3x3/2 SAME pool over a 4x4 map of products x_i·c_j (each window's maximum ≥ 0.1 above the rest)
  ['maxPool 3x3/2 SAME', (x) => tf.sum(tf.mul(tf.square(tf.tanh(tf.maxPool(outer4x4(x), 3, 2, 'same'))), tf.tensor4d([1, -0.6, 0.8, 0.5], [1, 2, 2, 1])))],
];

function firstGrad(f: (x: tf.Tensor) => tf.Tensor, x: number[]): number[] {
  return tf.tidy(() => Array.from(tf.grad(f)(tf.tensor1d(x)).dataSync()));
}

/** d/dx Σ_i w_i ∂f/∂x_i: the Hessian times w. */
function hvp(f: (x: tf.Tensor) => tf.Tensor, x: number[], w: number[]): number[] {
  return tf.tidy(() => Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(v), tf.tensor1d(w))))(tf.tensor1d(x)).dataSync()));
}

/** (H w)_j = Σ_i w_i ∂²f/∂x_i∂x_j by central differences of the first gradient along e_j. */
function hvpByDifferences(f: (x: tf.Tensor) => tf.Tensor, x: number[], w: number[], h = 1e-2): number[] {
  return x.map((_, j) => {
    const up = firstGrad(f, x.map((v, k) => (k === j ? v + h : v)));
    const dn = firstGrad(f, x.map((v, k) => (k === j ? v - h : v)));
    return w.reduce((s, wi, i) => s + (wi * (up[i] - dn[i])) / (2 * h), 0);
  });
}

describe.each(['cpu', 'wasm'])('on %s', (backend) => {
  beforeAll(async () => {
    // initBackend: on wasm it also registers lopt-ts's conv backprop kernels (tf.js wasm has none)
    expect(await initBackend(backend as 'cpu' | 'wasm', { quiet: true })).toBe(backend);
  });

  test.each(CASES)('Hessian-vector product through %s equals finite differences', (_name, f) => {
    const got = hvp(f, X, W);
    const want = hvpByDifferences(f, X, W);
    got.forEach((g, j) => expect(Math.abs(g - want[j])).toBeLessThan(2e-3 * Math.max(1, Math.abs(want[j]))));
  });

  test.each([
    [3, 2, 'same'],
    [2, 2, 'valid'],
    [3, 1, 'same'],
    [2, 2, 'same'],
  ] as const)("MaxPoolGrad's gradient in dy (%i/%i %s, a map with many ties) is its adjoint: <A·G, dy> = <G, MaxPoolGrad(dy)>", (filterSize, strides, pad) => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      // few distinct values (zeros as after a relu): most windows tie, where cpu and wasm pick differently
      const x = tf.tensor4d(Array.from({ length: 2 * 5 * 6 * 3 }, (_, i) => Math.max(Math.round(Math.sin(i * 1.37) * 2), 0)), [2, 5, 6, 3]);
      const y = tf.maxPool(x, filterSize, strides, pad);
      const dy = tf.tensor(Array.from({ length: y.size }, (_, i) => Math.cos(i * 0.7)), y.shape);
      const g = tf.tensor(Array.from({ length: x.size }, (_, i) => Math.sin(i * 0.91 + 0.3)), x.shape);
      const maxPoolGrad = (d: tf.Tensor) => tf.engine().runKernel('MaxPoolGrad', { dy: d, input: x, output: y }, { filterSize, strides, pad }) as tf.Tensor;
      // A·G: the registered gradient of <MaxPoolGrad(d), G> in d
      const ag = tf.grad((d: tf.Tensor) => tf.sum(tf.mul(maxPoolGrad(d), g)))(dy);
      expect(ag.shape).toEqual(dy.shape);
      const lhs = tf.sum(tf.mul(ag, dy)).dataSync()[0];
      const rhs = tf.sum(tf.mul(g, maxPoolGrad(dy))).dataSync()[0];
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * (1 + Math.abs(rhs)));
      // and elementwise: each window's dy meets G at the element MaxPoolGrad sends it to
      const agVals = ag.dataSync();
      const dyVals = dy.dataSync();
      for (let o = 0; o < dy.size; o += 7) {
        const onehot = tf.tensor(Array.from({ length: dy.size }, (_, i) => (i === o ? 1 : 0)), dy.shape);
        expect(agVals[o]).toBeCloseTo(tf.sum(tf.mul(g, maxPoolGrad(onehot))).dataSync()[0], 6);
        expect(dyVals[o]).not.toBeNaN();
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('exp by its formula: d/dx [exp(x)·x] = exp(x)·(1 + x) (the term through the saved output was dropped)', () => {
    const got = tf.tidy(() => Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.grad((y: tf.Tensor) => tf.sum(tf.exp(y)))(v), v)))(tf.tensor1d(X)).dataSync()));
    got.forEach((g, j) => expect(g).toBeCloseTo(Math.exp(X[j]) * (1 + X[j]), 4));
  });

  test('first-order gradients and tensor counts are unchanged', () => {
    fixHigherOrderGradients(); // idempotent
    const before = tf.memory().numTensors;
    const g = firstGrad((x) => tf.sum(tf.mul(tf.tanh(x), tf.exp(x))), X);
    g.forEach((v, j) => {
      const t = Math.tanh(X[j]);
      expect(v).toBeCloseTo((1 - t * t) * Math.exp(X[j]) + t * Math.exp(X[j]), 5);
    });
    hvp(CASES[0][1], X, W);
    expect(tf.memory().numTensors).toBe(before);
  });
});
