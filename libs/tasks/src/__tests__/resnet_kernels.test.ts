/**
 * The ResNet's fused batch-norm host kernel (`resnetBatchNorm` on cpu and wasm) against the plain
 * ops it replaces (`batchNormTrainOps`, then tf.relu), values and autodiff gradients; the moving
 * averages' kernel against the ops (bit for bit); and the
 * dispatch to the plain ops while a gradient of a gradient is recorded (the kernels are
 * first-order only).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@lopt/core';
import { batchNormInputs } from './helpers';
import { batchNormTrainOps, emaUpdateAllStacked, maxPool3x3Stride2Same, maxPool3x3Stride2SameOps, resnetBatchNorm } from '../resnet';
import { BATCH_NORM_KERNEL, EMA_KERNEL, hasHostKernel, resnetNative, useResnetJsKernels } from '../resnet_kernels';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
const maxAbsOf = (a: tf.Tensor) => tf.max(tf.abs(a)).dataSync()[0];

/** `batchNormTrainOps`, then tf.relu when `relu`: the reference. */
function opsBn(x: tf.Tensor4D, s: tf.Tensor, o: tf.Tensor, relu: boolean) {
  const r = batchNormTrainOps(x, s, o);
  return relu ? { ...r, y: tf.relu(r.y) as tf.Tensor4D } : r;
}

describe.each(['cpu', 'wasm'])('%s', (backend) => {
  beforeAll(async () => {
    expect(await initBackend(backend, { quiet: true })).toBe(backend);
  });

  const inputs = batchNormInputs;

  test.each([
    [[4, 3, 3, 5], 0, false],
    [[4, 3, 3, 5], 0, true],
    [[16, 4, 4, 8], 3, true],
    [[64, 4, 4, 64], 0.5, true],
    [[3, 1, 2, 4], 1, false],
  ])('fused batch norm of %j (shift %d, relu %s) = the plain ops: values, and gradients of x, scale, offset', (shape, shift, relu) => {
    expect(hasHostKernel(BATCH_NORM_KERNEL)).toBe(true);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const { x, scale, offset, up } = inputs(shape as number[], shift as number);
      const a = resnetBatchNorm(x, scale, offset, relu as boolean);
      const b = opsBn(x, scale, offset, relu as boolean);
      // float32 rounding only: the kernel sums in float64, the ops in float32
      expect(maxAbs(a.mean, b.mean)).toBeLessThan(1e-6 * (1 + maxAbsOf(b.mean)));
      expect(maxAbs(a.variance, b.variance)).toBeLessThan(2e-6 * (1 + maxAbsOf(b.variance) + maxAbsOf(b.mean) ** 2));
      expect(maxAbs(a.y, b.y)).toBeLessThan(1e-5 * (1 + maxAbsOf(b.y)));
      const loss = (fn: typeof opsBn) => (xs: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(fn(xs as tf.Tensor4D, s, o, relu as boolean).y, up));
      const ga = tf.grads(loss(resnetBatchNorm))([x, scale, offset]);
      const gb = tf.grads(loss(opsBn))([x, scale, offset]);
      for (let i = 0; i < 3; i++) {
        expect(ga[i].shape).toEqual(gb[i].shape);
        const scaleOf = Math.max(maxAbsOf(gb[i]), 1e-3);
        // float32 rounding: autodiff's 2x/M − 2μ/M cancels where xc = x − μ does not (as resnet_custom_grad.test.ts)
        expect(maxAbs(ga[i], gb[i]) / scaleOf).toBeLessThan(2e-3);
      }
      expect(maxAbsOf(ga[0])).toBeGreaterThan(0);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('no tensor leaks without a gradient tape; the statistics come back as tensors of [1, 1, 1, C]', () => {
    const before = tf.memory().numTensors;
    const { x, scale, offset, up } = tf.tidy(() => inputs([8, 2, 2, 3], 0));
    const r = resnetBatchNorm(x, scale, offset, true);
    expect(r.mean.shape).toEqual([1, 1, 1, 3]);
    expect(r.variance.shape).toEqual([1, 1, 1, 3]);
    expect(r.y.shape).toEqual([8, 2, 2, 3]);
    tf.dispose([r.y, r.mean, r.variance, x, scale, offset, up]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each([false, true])('moving averages of N = 2 tasks, 3 statistics (previous state: %s): the kernel = the ops, bit for bit', (withPrev) => {
    expect(hasHostKernel(EMA_KERNEL)).toBe(true);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const shapes = [[2, 1, 1, 1, 5], [2, 1, 1, 1, 3], [2, 1, 1, 1, 64]];
      const vals = (seed: number) => shapes.map((s, j) => tf.tensor(Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.77 + seed + j) * 3.1), s));
      const prev = withPrev
        ? vals(1).map((h, j) => ({ counter: tf.tensor1d([j + 1, 7], 'int32'), hidden: h, average: tf.zerosLike(h) }))
        : shapes.map(() => null);
      const a = emaUpdateAllStacked(prev, vals(2));
      const b = emaUpdateAllStacked(prev, vals(2), { kernel: false });
      a.forEach((e, j) => {
        expect(e.hidden.shape).toEqual(shapes[j]);
        expect(Array.from(e.counter.dataSync())).toEqual(Array.from(b[j].counter.dataSync()));
        expect(Array.from(e.hidden.dataSync())).toEqual(Array.from(b[j].hidden.dataSync()));
        expect(Array.from(e.average.dataSync())).toEqual(Array.from(b[j].average.dataSync()));
      });
      expect(maxAbsOf(a[2].average)).toBeGreaterThan(0);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  // where the ResNet's native addon is built (npm run build:native): its C bodies = the JavaScript ones, bit for bit
  (resnetNative() ? test : test.skip)('native bodies (batch norm forward and backward, max-pool gradient) = the JavaScript bodies, bit for bit', () => {
    const run = (js: boolean) => {
      useResnetJsKernels(js);
      try {
        return tf.tidy(() => {
          const outs: number[][] = [];
          for (const [shape, relu] of [[[64, 4, 4, 64], true], [[6, 3, 3, 5], false]] as const) {
            const { x, scale, offset, up } = inputs(shape as unknown as number[], 0.3);
            const loss = (xs: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
              const r = resnetBatchNorm(xs as tf.Tensor4D, s, o, relu);
              outs.push(Array.from(r.y.dataSync()), Array.from(r.mean.dataSync()), Array.from(r.variance.dataSync()));
              return tf.sum(tf.mul(r.y, up));
            };
            tf.grads(loss)([x, scale, offset]).forEach((g) => outs.push(Array.from(g.dataSync())));
          }
          for (const shape of [[2, 8, 8, 16], [1, 7, 5, 3]]) {
            const n = shape.reduce((a, b) => a * b, 1);
            const x = tf.tensor4d(Array.from({ length: n }, (_, i) => Math.max(Math.round(Math.sin(i * 1.3) * 3), 0) + Math.sin(i) * 0.01 * (i % 2)), shape as [number, number, number, number]);
            const g = tf.grad((v: tf.Tensor) => {
              const y = maxPool3x3Stride2Same(v as tf.Tensor4D);
              return tf.sum(tf.mul(y, tf.cos(tf.reshape(tf.range(0, y.size), y.shape))));
            })(x);
            expect(maxAbsOf(g)).toBeGreaterThan(0);
            outs.push(Array.from(g.dataSync()));
          }
          return outs;
        });
      } finally {
        useResnetJsKernels(false);
      }
    };
    const nat = run(false);
    const js = run(true);
    expect(nat.length).toBe(js.length);
    nat.forEach((o, i) => expect(o).toEqual(js[i]));
  });

  test('under a gradient of a gradient the plain ops run: Hessian-vector products through the batch norm and the max pool = those of the ops versions', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const { x, scale, offset } = inputs([4, 6, 6, 3], 0.2);
      const v = tf.tensor4d(Array.from({ length: 4 * 6 * 6 * 3 }, (_, i) => Math.sin(i * 0.53)), [4, 6, 6, 3]);
      const w = tf.tensor4d(Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.cos(i * 0.29)), [4, 3, 3, 3]);
      // a loss whose Hessian is not zero: the squared pooled batch norm, weighted
      const net = (bn: typeof opsBn, pool: (t: tf.Tensor4D) => tf.Tensor4D) => (t: tf.Tensor) => tf.sum(tf.mul(tf.square(pool(bn(t as tf.Tensor4D, scale, offset, true).y)), w));
      const hvp = (f: (t: tf.Tensor) => tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(t), v)))(x);
      const a = hvp(net(resnetBatchNorm, maxPool3x3Stride2Same));
      const b = hvp(net(opsBn, maxPool3x3Stride2SameOps));
      expect(maxAbsOf(b)).toBeGreaterThan(0);
      expect(maxAbs(a, b)).toBe(0);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
