/**
 * Runs on the wasm backend (set here, whatever LOPT_TEST_BACKEND says): initialisation, a few core
 * ops, and the re-registered BatchMatMul gradient (explicit transposes + plain matMuls) against
 * the stock gradient computed on the cpu backend and against a hand-computed analytic gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { currentBackend, initBackend, random } from '../index';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

type Case = { name: string; aShape: number[]; bShape: number[]; tA: boolean; tB: boolean };
const CASES: Case[] = [
  { name: 'plain', aShape: [5, 3], bShape: [3, 4], tA: false, tB: false },
  { name: 'transposeB', aShape: [5, 3], bShape: [4, 3], tA: false, tB: true },
  { name: 'transposeA', aShape: [3, 5], bShape: [3, 4], tA: true, tB: false },
  { name: 'both', aShape: [3, 5], bShape: [4, 3], tA: true, tB: true },
  { name: 'batched rank 3', aShape: [2, 5, 3], bShape: [2, 3, 4], tA: false, tB: false },
  { name: 'batched rank 3, both transposed', aShape: [2, 3, 5], bShape: [2, 4, 3], tA: true, tB: true },
];

/** Gradients of sum(matMul(a, b, tA, tB) * w) w.r.t. a and b, as host arrays. */
function matMulGrads(c: Case, seed: number) {
  const [ka, kb, kw] = random.split(random.PRNGKey(seed), 3);
  return tf.tidy(() => {
    const a = random.normal(ka, c.aShape);
    const b = random.normal(kb, c.bShape);
    const y = tf.matMul(a, b, c.tA, c.tB);
    const w = random.normal(kw, y.shape);
    const [ga, gb] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z, c.tA, c.tB), w)))([a, b]);
    return { ga: ga.dataSync().slice(), gb: gb.dataSync().slice(), a: a.dataSync().slice(), b: b.dataSync().slice(), w: w.dataSync().slice() };
  });
}

describe('wasm backend', () => {
  test('initialises with SIMD, idempotently', async () => {
    expect(currentBackend()).toBe('wasm');
    expect(tf.env().getBool('WASM_HAS_SIMD_SUPPORT')).toBe(true);
    const t0 = Date.now();
    expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
    expect(Date.now() - t0).toBeLessThan(50);
  });

  test('core ops work', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.tensor2d([[1, 2], [3, 4]]);
      expect(Array.from(tf.add(x, 1).dataSync())).toEqual([2, 3, 4, 5]);
      expect(Array.from(tf.matMul(x, x).dataSync())).toEqual([7, 10, 15, 22]);
      expect(tf.sum(x).dataSync()[0]).toBe(10);
      expect(Array.from(tf.relu(tf.sub(x, 2.5)).dataSync())).toEqual([0, 0, 0.5, 1.5]);
      expect(tf.exp(tf.scalar(0)).dataSync()[0]).toBe(1);
      expect(Array.from(tf.transpose(x).dataSync())).toEqual([1, 3, 2, 4]);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(x);
      expect(Array.from(g.dataSync())).toEqual([2, 4, 6, 8]);
      expect(Array.from(random.normal(random.PRNGKey(0), [3]).dataSync())).toEqual(Array.from(random.normalArray(random.PRNGKey(0), 3)));
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the wasm gradient calls matMul without transposeA/transposeB', () => {
    const orig = tf.getKernel('BatchMatMul', 'wasm')!;
    const seen: Array<{ transposeA: boolean; transposeB: boolean }> = [];
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({
      ...orig,
      kernelFunc: (args) => {
        seen.push({ transposeA: Boolean(args.attrs?.transposeA), transposeB: Boolean(args.attrs?.transposeB) });
        return orig.kernelFunc(args);
      },
    });
    try {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const a = tf.ones([6, 3]);
        const b = tf.ones([3, 2]);
        tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.matMul(x, z)))([a, b]);
      });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.unregisterKernel('BatchMatMul', 'wasm');
      tf.registerKernel(orig);
    }
    expect(seen).toHaveLength(3); // forward + one per input
    expect(seen.every((s) => !s.transposeA && !s.transposeB)).toBe(true);
  });

  test.each(CASES)('matMul gradient ($name) equals the stock cpu gradient', async (c) => {
    const onWasm = matMulGrads(c, 3);
    await tf.setBackend('cpu');
    let onCpu: ReturnType<typeof matMulGrads>;
    try {
      onCpu = matMulGrads(c, 3);
    } finally {
      await tf.setBackend('wasm');
    }
    expect(maxAbsDiff(onWasm.a, onCpu.a)).toBe(0); // same inputs (host-side sampling)
    expect(maxAbsDiff(onWasm.ga, onCpu.ga)).toBeLessThan(1e-5);
    expect(maxAbsDiff(onWasm.gb, onCpu.gb)).toBeLessThan(1e-5);
  });

  test('matMul gradient equals the analytic one (dA = W B^T, dB = A^T W)', () => {
    const c = CASES[0];
    const { a, b, w, ga, gb } = matMulGrads(c, 8);
    const [m, k] = c.aShape;
    const n = c.bShape[1];
    const dA = new Float64Array(m * k);
    const dB = new Float64Array(k * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < k; j++) for (let l = 0; l < n; l++) dA[i * k + j] += w[i * n + l] * b[j * n + l];
    for (let j = 0; j < k; j++)
      for (let l = 0; l < n; l++) for (let i = 0; i < m; i++) dB[j * n + l] += a[i * k + j] * w[i * n + l];
    expect(maxAbsDiff(ga, dA)).toBeLessThan(1e-5);
    expect(maxAbsDiff(gb, dB)).toBeLessThan(1e-5);
  });

  test('an MLP gradient on wasm matches cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const [k1, k2, k3] = random.split(random.PRNGKey(1), 3);
        const x = random.normal(k1, [64, 19]);
        const w1 = random.normal(k2, [19, 32]);
        const w2 = random.normal(k3, [32, 2]);
        const gs = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.mean(tf.square(tf.matMul(tf.relu(tf.matMul(x, p)), q))))([w1, w2]);
        return gs.map((g) => g.dataSync().slice());
      });
    const wasm = run();
    await tf.setBackend('cpu');
    const cpu = run();
    await tf.setBackend('wasm');
    expect(maxAbsDiff(wasm[0], cpu[0]) / Math.max(...Array.from(cpu[0], Math.abs))).toBeLessThan(1e-5);
    expect(maxAbsDiff(wasm[1], cpu[1]) / Math.max(...Array.from(cpu[1], Math.abs))).toBeLessThan(1e-5);
  });
});
