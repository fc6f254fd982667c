/**
 * The one gelu (lm_modules) that the transformer, Mixer, ViT and the parametric families' sampled
 * activation share: values, first and second derivatives against central finite differences of
 * the formula in float64. The second derivative matters for grads of grads (TruncatedGrad /
 * FullGrad through an inner training step); autodiff of the formula composed of tf ops got it
 * wrong (0.32 instead of -0.03 at x = 1.5).
 */
import * as tf from '@tensorflow/tfjs';
import { gelu } from '../lm_modules';
import { SAMPLE_ACTIVATIONS } from '../parametric/parametric_utils';

const C = Math.sqrt(2 / Math.PI);
const f = (x: number) => 0.5 * x * (1 + Math.tanh(C * (x + 0.044715 * x ** 3)));
const XS = [-4, -2.5, -1.2, -0.6, -0.1, 0, 0.3, 0.9, 1.5, 2.2, 3.7];
const H = 1e-4;
const d1 = (x: number) => (f(x + H) - f(x - H)) / (2 * H);
const d2 = (x: number) => (f(x + H) - 2 * f(x) + f(x - H)) / (H * H);

const sampledGelu = SAMPLE_ACTIVATIONS.find((a) => a.name === 'gelu')!.fn;

function values(fn: (x: tf.Tensor) => tf.Tensor): { y: number[]; g1: number[]; g2: number[] } {
  return tf.tidy(() => {
    const x = tf.tensor1d(XS);
    const g = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(fn(u)))(t);
    const gg = tf.grad((u: tf.Tensor) => tf.sum(g(u)));
    return { y: Array.from(fn(x).dataSync()), g1: Array.from(g(x).dataSync()), g2: Array.from(gg(x).dataSync()) };
  });
}

test.each([
  ['lm_modules gelu', gelu],
  ['the parametric families sampled gelu', sampledGelu],
])('%s: value, first and second derivative match finite differences', (_name, fn) => {
  const before = tf.memory().numTensors;
  const { y, g1, g2 } = values(fn);
  XS.forEach((x, i) => {
    expect(y[i]).toBeCloseTo(f(x), 5);
    expect(g1[i]).toBeCloseTo(d1(x), 4);
    // float32 ops against a float64 central difference (error ~ 1e-8/H² + H²): 3 decimals
    expect(g2[i]).toBeCloseTo(d2(x), 3);
  });
  expect(tf.memory().numTensors).toBe(before);
});

test('the sampled activation is the shared gelu (one implementation)', () => {
  expect(sampledGelu).toBe(gelu);
});
