/**
 * The wasm and cpu Conv2DBackpropFilter kernels (wasm_conv_kernels.ts) give the filter gradient a
 * direct float64 loop gives, for strides 1 and 2, SAME / VALID padding, odd sizes and several
 * channels; and the other conv / pooling gradients tf.grads needs exist on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative, initBackend, random } from '../index';
import { col2im, im2colT, type ConvGeometry } from '../wasm_conv_kernels';

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
  // 1x1 (the ResNet's bottleneck convs): stride 1 needs no scatter, stride 2 does
  { x: [8, 4, 4, 64], f: [1, 1, 64, 8], stride: 1, pad: 'same' },
  { x: [3, 5, 3, 6], f: [1, 1, 6, 4], stride: 1, pad: 'valid' },
  { x: [8, 4, 4, 8], f: [1, 1, 8, 16], stride: 2, pad: 'same' },
];

function values(seed: number, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(random.normalArray(random.PRNGKey(seed), n), shape);
}

/** dW[i, j, c, o] = Σ_{b, y, x} x[b, y·s + i − top, x·s + j − left, c] · dy[b, y, x, o], in float64. */
function naiveFilterGrad(c: Case): Float64Array {
  const [xv, dv] = tf.tidy(() => {
    const x = values(1, c.x);
    const f = values(2, c.f);
    const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad);
    return [x.dataSync(), values(3, y.shape).dataSync()];
  });
  const [, H, W, C] = c.x;
  const [kh, kw, , Co] = c.f;
  const out = new Float64Array(kh * kw * C * Co);
  forEachTap(c, (b, oy, ox, i, j, iy, ix, Ho, Wo) => {
    for (let ch = 0; ch < C; ch++)
      for (let o = 0; o < Co; o++) out[((i * kw + j) * C + ch) * Co + o] += xv[((b * H + iy) * W + ix) * C + ch] * dv[((b * Ho + oy) * Wo + ox) * Co + o];
  });
  return out;
}

/** Calls `visit` for every (batch, output position, filter tap) whose input position is inside the image. */
function forEachTap(c: Case, visit: (b: number, oy: number, ox: number, i: number, j: number, iy: number, ix: number, Ho: number, Wo: number) => void): void {
  const info = tf.backend_util.computeConv2DInfo(c.x as any, c.f as any, c.stride, 1, c.pad);
  const [B, H, W] = c.x;
  const [kh, kw] = c.f;
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < info.outHeight; oy++)
      for (let ox = 0; ox < info.outWidth; ox++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const iy = oy * c.stride + i - info.padInfo.top;
            const ix = ox * c.stride + j - info.padInfo.left;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) visit(b, oy, ox, i, j, iy, ix, info.outHeight, info.outWidth);
          }
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
  test.each(CASES.map((c) => [JSON.stringify(c), c] as [string, Case]))('%s: wasm and cpu = direct loop', async (_name, c) => {
    await tf.setBackend('cpu');
    const want = naiveFilterGrad(c);
    for (const backend of ['wasm', 'cpu']) {
      const got = await filterGrad(backend, c);
      expect(got.shape).toEqual(c.f);
      let maxAbs = 0;
      let scale = 0;
      want.forEach((b, i) => {
        maxAbs = Math.max(maxAbs, Math.abs(got.v[i] - b));
        scale = Math.max(scale, Math.abs(b));
      });
      expect(maxAbs).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
    }
  });
  test.each(['wasm', 'cpu'])('no tensors leak (%s)', async (backend) => {
    await tf.setBackend(backend);
    const c = CASES[1];
    await filterGrad(backend, c);
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    await filterGrad(backend, c);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
  });
});

/** dx[b, y·s + i − top, x·s + j − left, c] += Σ_o dy[b, y, x, o] · W[i, j, c, o], in float64. */
function naiveInputGrad(c: Case): Float64Array {
  const [fv, dv, Ho, Wo] = tf.tidy(() => {
    const x = values(1, c.x);
    const f = values(2, c.f);
    const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad);
    return [f.dataSync(), values(3, y.shape).dataSync(), y.shape[1], y.shape[2]] as const;
  });
  const [B, H, W, C] = c.x;
  const [kw, Co] = [c.f[1], c.f[3]];
  const out = new Float64Array(B * H * W * C);
  forEachTap(c, (b, oy, ox, i, j, iy, ix) => {
    for (let ch = 0; ch < C; ch++)
      for (let o = 0; o < Co; o++) out[((b * H + iy) * W + ix) * C + ch] += dv[((b * Ho + oy) * Wo + ox) * Co + o] * fv[((i * kw + j) * C + ch) * Co + o];
  });
  return out;
}

describe('wasm Conv2DBackpropInput (matMul + scatter)', () => {
  afterAll(async () => {
    await tf.setBackend('wasm');
  });
  test.each(CASES.map((c) => [JSON.stringify(c), c] as [string, Case]))('%s: the input gradient on wasm (and cpu, stock) = direct loop', async (_name, c) => {
    await tf.setBackend('cpu');
    const want = naiveInputGrad(c);
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const got = tf.tidy(() => {
        const x = values(1, c.x);
        const f = values(2, c.f);
        const dy = values(3, tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad).shape);
        return tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(z as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad), dy)))(x).dataSync();
      });
      let maxAbs = 0;
      let scale = 0;
      want.forEach((b, i) => {
        maxAbs = Math.max(maxAbs, Math.abs(got[i] - b));
        scale = Math.max(scale, Math.abs(b));
      });
      expect({ backend, ok: maxAbs <= 1e-5 * Math.max(1, scale) }).toEqual({ backend, ok: true });
    }
  });
  test('no tensors or bytes leak', async () => {
    await tf.setBackend('wasm');
    const run = () =>
      tf.tidy(() => {
        const x = values(1, [2, 7, 5, 3]);
        const f = values(2, [3, 3, 3, 4]);
        return tf.grad((z: tf.Tensor) => tf.sum(tf.conv2d(z as tf.Tensor4D, f as tf.Tensor4D, 2, 'same')))(x);
      }).dispose();
    run();
    const before = tf.memory();
    run();
    expect([tf.memory().numTensors, tf.memory().numBytes]).toEqual([before.numTensors, before.numBytes]);
  });
});

(coreNative() ? describe : describe.skip)('im2col / col2im in C (the core addon)', () => {
  test.each(CASES.map((c) => [JSON.stringify(c), c] as [string, Case]))('%s: the same values as the JavaScript loops, bit for bit', (_name, c) => {
    const info = tf.backend_util.computeConv2DInfo(c.x as any, c.f as any, c.stride, 1, c.pad);
    const [B, H, W, C] = c.x;
    const [kh, kw] = c.f;
    const [Ho, Wo] = [info.outHeight, info.outWidth];
    const g: ConvGeometry = { B, H, W, C, Ho, Wo, Co: c.f[3], kh, kw, sh: c.stride, sw: c.stride, top: info.padInfo.top, left: info.padInfo.left, M: B * Ho * Wo, K: kh * kw * C };
    const x = Float32Array.from(random.normalArray(random.PRNGKey(4), B * H * W * C));
    // garbage in the outputs: both versions must overwrite all of them
    const [colsC, colsJs] = [new Float32Array(g.K * g.M).fill(7), new Float32Array(g.K * g.M).fill(-7)];
    im2colT(g, x, colsC);
    im2colT(g, x, colsJs, false);
    expect(colsC).toEqual(colsJs);
    const cols = Float32Array.from(random.normalArray(random.PRNGKey(5), g.M * g.K));
    const [dxC, dxJs] = [new Float32Array(x.length).fill(7), new Float32Array(x.length).fill(-7)];
    col2im(g, cols, dxC);
    col2im(g, cols, dxJs, false);
    expect(dxC).toEqual(dxJs);
  });
  test('bad arguments are errors, not reads outside the arrays', () => {
    const addon = coreNative()!;
    const g = Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 1, 1, 1, 1]);
    expect(() => addon.im2colT(g, new Float32Array(31), new Float32Array(18 * 16))).toThrow('im2colT: x must hold B·H·W·C values');
    expect(() => addon.im2colT(g, new Float32Array(32), new Float32Array(18 * 16 - 1))).toThrow('im2colT: colsT must hold K·M values');
    expect(() => addon.col2im(g.slice(0, 11), new Float32Array(18 * 16), new Float32Array(32))).toThrow(/col2im: expected/);
    expect(() => addon.col2im(g, new Float32Array(18 * 16), new Float32Array(33))).toThrow('col2im: dx must hold B·H·W·C values');
  });
});
