/**
 * The wasm Conv2DBackpropFilter (wasm_conv_kernels.ts) gives the cpu backend's filter gradient for
 * strides 1 and 2, SAME / VALID padding, odd sizes and several channels; and the other
 * conv / pooling gradients tf.grads needs exist on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random } from '../index';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

type Case = { x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' };
const CASES: Case[] = [
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], stride: 2, pad: 'same' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], stride: 1, pad: 'valid' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], stride: 2, pad: 'valid' },
  { x: [3, 8, 8, 1], f: [3, 3, 1, 16], stride: 2, pad: 'same' },
  { x: [1, 9, 6, 5], f: [2, 4, 5, 3], stride: 2, pad: 'same' },
  // (not numeric padding: tfjs-backend-wasm 4.22's own Conv2D gets the output shape wrong for it,
  // e.g. [1, 7, 4, 2] for a [1, 9, 6, 5] input, a 5x1 filter and pad 1, and corrupts its heap)
  { x: [1, 9, 6, 5], f: [5, 1, 5, 2], stride: 1, pad: 'valid' },
  { x: [2, 11, 9, 2], f: [5, 3, 2, 3], stride: 2, pad: 'same' },
  { x: [4, 4, 4, 32], f: [3, 3, 32, 64], stride: 1, pad: 'same' },
];

function values(seed: number, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(random.normalArray(random.PRNGKey(seed), n), shape);
}

async function filterGrad(backend: string, c: Case): Promise<{ shape: number[]; v: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = values(1, c.x);
    const f = values(2, c.f);
    const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad);
    const dy = values(3, y.shape);
    const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad), dy)))(f);
    const direct = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f } as any) as tf.Tensor;
    expect(Array.from(direct.dataSync())).toEqual(Array.from(g.dataSync()));
    return { shape: g.shape, v: g.dataSync() as Float32Array };
  });
}

describe('wasm Conv2DBackpropFilter', () => {
  afterAll(async () => {
    await tf.setBackend('wasm');
  });
  test('the kernels tf.grads needs for convnets are registered on wasm', () => {
    for (const k of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPoolGrad', 'AvgPoolGrad']) {
      expect(tf.getKernel(k, 'wasm')).toBeDefined();
    }
  });
  test.each(CASES.map((c) => [JSON.stringify(c), c] as [string, Case]))('%s = cpu', async (_name, c) => {
    const w = await filterGrad('wasm', c);
    const cpu = await filterGrad('cpu', c);
    expect(w.shape).toEqual(c.f);
    let maxAbs = 0;
    let scale = 0;
    cpu.v.forEach((b, i) => {
      maxAbs = Math.max(maxAbs, Math.abs(w.v[i] - b));
      scale = Math.max(scale, Math.abs(b));
    });
    expect(maxAbs).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
  });
  test('no tensors leak', async () => {
    await tf.setBackend('wasm');
    const c = CASES[1];
    await filterGrad('wasm', c);
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    await filterGrad('wasm', c);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
  });
});
