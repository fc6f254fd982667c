/**
 * The wasm depthwise-convolution backprops (wasm_depthwise_kernels.ts) give the input and filter
 * gradients a direct float64 loop gives, for strides 1 and 2, SAME / VALID padding, dilation 2,
 * channel multipliers 1 and 3 and odd sizes; and `tf.grads` through `tf.depthwiseConv2d` runs on
 * wasm (it threw "not registered" before).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random } from '../index';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

type Case = { x: number[]; f: number[]; stride: number; dilation: number; pad: 'same' | 'valid' };
const CASES: Case[] = [
  { x: [2, 7, 5, 3], f: [3, 3, 3, 1], stride: 1, dilation: 1, pad: 'same' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 2], stride: 2, dilation: 1, pad: 'same' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 1], stride: 1, dilation: 1, pad: 'valid' },
  { x: [1, 9, 6, 4], f: [2, 4, 4, 3], stride: 2, dilation: 1, pad: 'valid' },
  { x: [1, 9, 8, 2], f: [3, 3, 2, 2], stride: 1, dilation: 2, pad: 'same' },
  { x: [3, 8, 8, 16], f: [5, 5, 16, 1], stride: 2, dilation: 1, pad: 'same' },
];

function values(seed: number, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(random.normalArray(random.PRNGKey(seed), n), shape);
}

/** dx and df of Σ y·w for y = depthwiseConv2d(x, f), by the defining sums in float64. */
function naiveGrads(c: Case, xv: Float32Array, fv: Float32Array, wv: Float32Array) {
  const info = tf.backend_util.computeConv2DInfo(c.x as any, c.f as any, c.stride, c.dilation, c.pad, undefined, true);
  const [B, H, W, C] = c.x;
  const [kh, kw, , M] = c.f;
  const dx = new Float64Array(xv.length);
  const df = new Float64Array(fv.length);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < info.outHeight; oy++)
      for (let ox = 0; ox < info.outWidth; ox++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const iy = oy * c.stride + i * c.dilation - info.padInfo.top;
            const ix = ox * c.stride + j * c.dilation - info.padInfo.left;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (let ch = 0; ch < C; ch++)
              for (let q = 0; q < M; q++) {
                const w = wv[((b * info.outHeight + oy) * info.outWidth + ox) * C * M + ch * M + q];
                const xi = ((b * H + iy) * W + ix) * C + ch;
                const fi = ((i * kw + j) * C + ch) * M + q;
                dx[xi] += fv[fi] * w;
                df[fi] += xv[xi] * w;
              }
          }
  return { dx, df };
}

function expectClose(got: Float32Array, want: Float64Array): void {
  let worst = 0;
  for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]) / (1 + Math.abs(want[k])));
  expect(worst).toBeLessThan(1e-5);
}

test.each(CASES)('the two kernels equal the defining sums: %j', (c) => {
  expect(tf.getBackend()).toBe('wasm');
  const before = tf.memory().numTensors;
  const x = values(1, c.x);
  const f = values(2, c.f);
  const y = tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation);
  const w = values(3, y.shape);
  // (called directly: tf.js's own gradient of depthwiseConv2d refuses dilations > 1)
  const attrs = { strides: c.stride, dilations: c.dilation, pad: c.pad };
  const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: w, filter: f }, { ...attrs, inputShape: c.x } as any) as tf.Tensor;
  const df = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: w }, { ...attrs, filterShape: c.f } as any) as tf.Tensor;
  const want = naiveGrads(c, x.dataSync() as Float32Array, f.dataSync() as Float32Array, w.dataSync() as Float32Array);
  expectClose(dx.dataSync() as Float32Array, want.dx);
  expectClose(df.dataSync() as Float32Array, want.df);
  // the gradients are not all zeros (the test could fail)
  expect(Math.max(...Array.from(df.dataSync()).map(Math.abs))).toBeGreaterThan(0.1);
  tf.dispose([x, f, y, w, dx, df]);
  expect(tf.memory().numTensors).toBe(before);
});

test('tf.grads through tf.depthwiseConv2d runs on wasm and equals the cpu backend', async () => {
  const grads = () =>
    tf.tidy(() => {
      const x = values(1, [2, 6, 6, 4]);
      const f = values(2, [3, 3, 4, 2]);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, f]);
      return g.map((t) => Array.from(t.dataSync()));
    });
  const onWasm = grads();
  await tf.setBackend('cpu');
  try {
    const onCpu = grads();
    for (let k = 0; k < 2; k++) onCpu[k].forEach((v, i) => expect(Math.abs(onWasm[k][i] - v)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
  } finally {
    await tf.setBackend('wasm');
  }
});
