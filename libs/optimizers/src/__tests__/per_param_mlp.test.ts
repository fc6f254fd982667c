/**
 * The per-parameter MLP helpers with no hidden layer (a learned optimizer with hiddenLayers: 0):
 * one linear layer, no ReLU, as hk.nets.MLP applies activations between layers only. Every layout
 * (row-major shared and per-task θ, channels-first shared and per-task θ) equals concat(x, time)·w + b.
 */
import * as tf from '@tensorflow/tfjs';
import { applyPerParamMLP, applyPerTaskMLPChannelsFirst, applySharedMLPChannelsFirst } from '../index';

const N = 2;
const P = 5;
const F = 3;
const T = 2;
const OUT = 2;
const x = () => tf.randomNormal([N, P, F], 0, 1, 'float32', 1);
const time = () => tf.randomNormal([N, T], 0, 1, 'float32', 2);

/** concat(x, time broadcast over P) @ w + b, per task. */
function expected(xs: tf.Tensor, t: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const inp = tf.concat([xs, tf.tile(tf.expandDims(t, 1), [1, P, 1])], 2); // [N, P, F+T]
  const ws = w.rank === 2 ? tf.stack([w, w]) : w;
  const bs = b.rank === 1 ? tf.stack([b, b]) : b;
  return tf.add(tf.matMul(inp, ws), tf.expandDims(bs, 1)); // [N, P, OUT]
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

test('one shared layer: row-major and channels-first equal x·w + b, negative outputs kept', () => {
  tf.tidy(() => {
    const w = tf.randomNormal([F + T, OUT], 0, 1, 'float32', 3);
    const b = tf.tensor1d([-3, 0.5]);
    const want = expected(x(), time(), w, b);
    expect(want.min().dataSync()[0]).toBeLessThan(0);
    expect(maxDiff(applyPerParamMLP(x(), time(), [{ w, b }], false), want)).toBeLessThan(1e-5);
    const cf = applySharedMLPChannelsFirst(tf.transpose(x(), [0, 2, 1]), time(), [{ w, b }]); // [OUT, N, P]
    expect(maxDiff(tf.transpose(cf, [1, 2, 0]), want)).toBeLessThan(1e-5);
    // one task takes the fused-kernel path
    const one = applySharedMLPChannelsFirst(tf.transpose(x().slice([0], [1]), [0, 2, 1]), time().slice([0], [1]), [{ w, b }]);
    expect(maxDiff(tf.transpose(one, [1, 2, 0]), want.slice([0], [1]))).toBeLessThan(1e-5);
  });
});

test('one per-task layer (thetaIsVector): row-major and channels-first equal x·w + b', () => {
  tf.tidy(() => {
    const w = tf.randomNormal([N, F + T, OUT], 0, 1, 'float32', 4);
    const b = tf.tensor2d([[-3, 0.5], [1, -2]]);
    const want = expected(x(), time(), w, b);
    expect(maxDiff(applyPerParamMLP(x(), time(), [{ w, b }], true), want)).toBeLessThan(1e-5);
    const cf = applyPerTaskMLPChannelsFirst(tf.transpose(x(), [0, 2, 1]), time(), [{ w, b }]);
    expect(maxDiff(tf.transpose(cf, [1, 2, 0]), want)).toBeLessThan(1e-5);
  });
});
