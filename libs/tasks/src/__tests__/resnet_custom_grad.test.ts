/**
 * The ResNet's hand-written gradients against tf.js autodiff of the plain ops they replace, on cpu
 * and wasm: the max pool (`maxPool3x3Stride2Same` vs `maxPool3x3Stride2SameOps`, ties included) and
 * the training-mode batch norm (`batchNormTrain` vs `batchNormTrainOps`); same forward values, and
 * no tensor leaks with or without a gradient tape.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@lopt/core';
import { batchNormInputs } from './helpers';
import { batchNormTrain, batchNormTrainOps, maxPool3x3Stride2Same, maxPool3x3Stride2SameOps } from '../resnet';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

describe.each(['cpu', 'wasm'])('%s', (backend) => {
  beforeAll(async () => {
    expect(await initBackend(backend, { quiet: true })).toBe(backend);
  });

  test.each([
    [8, 8, 'real'],
    [7, 5, 'real'],
    [1, 1, 'real'],
    [6, 3, 'ties'],
    [8, 8, 'ties'],
    [5, 9, 'ties'],
  ])('max pool 3x3/2 SAME of a %ix%i map (%s): the custom gradient = autodiff of the separable maxima', (h, w, kind) => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const len = 2 * h * w * 3;
      // 'ties': few distinct values (zeros included, as after a relu), so most windows tie
      const vals = Array.from({ length: len }, (_, i) => (kind === 'ties' ? Math.max(Math.round(Math.sin(i * 1.3) * 2), 0) : Math.sin(i * 1.3)));
      const x = tf.tensor4d(vals, [2, h, w, 3]);
      const oh = Math.ceil(h / 2);
      const ow = Math.ceil(w / 2);
      const up = tf.tensor4d(Array.from({ length: 2 * oh * ow * 3 }, (_, i) => Math.cos(i * 0.7)), [2, oh, ow, 3]);
      const a = maxPool3x3Stride2Same(x);
      const b = maxPool3x3Stride2SameOps(x);
      expect(a.shape).toEqual(b.shape);
      expect(maxAbs(a, b)).toBe(0);
      const ga = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(maxPool3x3Stride2Same(v as tf.Tensor4D), up)))(x);
      const gb = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(maxPool3x3Stride2SameOps(v as tf.Tensor4D), up)))(x);
      expect(maxAbs(ga, gb)).toBeLessThan(1e-6);
      expect(tf.sum(tf.abs(ga)).dataSync()[0]).toBeGreaterThan(0);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each([
    [[4, 3, 3, 5], 0],
    [[16, 4, 4, 8], 3],
    [[2, 1, 1, 4], 1],
  ])('batch norm of %j (shift %d): the custom gradient = autodiff of the plain ops; the same values', (shape, shift) => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const { x, scale, offset, up } = batchNormInputs(shape, shift);
      const a = batchNormTrain(x, scale, offset);
      const b = batchNormTrainOps(x, scale, offset);
      expect(maxAbs(a.y, b.y)).toBe(0);
      expect(maxAbs(a.mean, b.mean)).toBe(0);
      expect(maxAbs(a.variance, b.variance)).toBe(0);
      const loss = (fn: typeof batchNormTrain) => (xs: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(fn(xs as tf.Tensor4D, s, o).y, up));
      const ga = tf.grads(loss(batchNormTrain))([x, scale, offset]);
      const gb = tf.grads(loss(batchNormTrainOps))([x, scale, offset]);
      for (let i = 0; i < 3; i++) {
        expect(ga[i].shape).toEqual(gb[i].shape);
        const scaleOf = Math.max(tf.max(tf.abs(gb[i])).dataSync()[0], 1e-3);
        // float32 rounding: autodiff's 2x/M − 2μ/M cancels where xc = x − μ does not (7e-4 on 2 examples)
        expect(maxAbs(ga[i], gb[i]) / scaleOf).toBeLessThan(2e-3);
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
