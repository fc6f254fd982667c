/**
 * The wasm BatchMatMul replacement (wasm_matmul_kernel.ts) gives tf.js's products for stacked,
 * broadcast and transposed operands of ranks 2 to 4 (checked against float64 sums), its gradients
 * equal the cpu backend's, and it leaks no tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random } from '../index';
import { SMALL_ENTRY_MACS } from '../wasm_matmul_kernel';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

function values(seed: number, shape: number[]): tf.Tensor {
  return tf.tensor(random.normalArray(random.PRNGKey(seed), shape.reduce((a, b) => a * b, 1)), shape);
}

/** `a @ b` by the definition, in float64, for rank-2+ arrays with broadcast batch axes. */
function naive(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): { shape: number[]; data: Float64Array } {
  const A = a.arraySync() as any;
  const B = b.arraySync() as any;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const rank = Math.max(outerA.length, outerB.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(outerA), pad(outerB)];
  const outer = pa.map((d, i) => Math.max(d, pb[i]));
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const [m, k] = tA ? [ca, ra] : [ra, ca];
  const n = tB ? rb : cb;
  const count = outer.reduce((x, y) => x * y, 1);
  const data = new Float64Array(count * m * n);
  // the matrix of `x` (batch axes `dims`, right-aligned, size-1 axes broadcast) at output batch index `idx`
  const pick = (x: any, dims: number[], idx: number[]) => dims.reduce((v: any, d: number, j: number) => v[d === 1 ? 0 : idx[rank - dims.length + j]], x);
  for (let c = 0; c < count; c++) {
    const idx: number[] = [];
    let r = c;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = r % outer[d];
      r = Math.floor(r / outer[d]);
    }
    const subA = pick(A, outerA, idx);
    const subB = pick(B, outerB, idx);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += (tA ? subA[q][i] : subA[i][q]) * (tB ? subB[j][q] : subB[q][j]);
        data[(c * m + i) * n + j] = s;
      }
  }
  return { shape: [...outer, m, n], data };
}

const CASES: Array<{ a: number[]; b: number[]; tA?: boolean; tB?: boolean }> = [
  { a: [2, 5, 3], b: [2, 3, 4] },
  { a: [3, 5, 3], b: [1, 3, 4] },
  { a: [1, 5, 3], b: [3, 3, 4] },
  { a: [5, 3], b: [3, 3, 4] },
  { a: [2, 3, 5, 3], b: [2, 3, 3, 4] },
  { a: [3, 5], b: [3, 4], tA: true },
  { a: [5, 3], b: [4, 3], tB: true },
  { a: [2, 3, 5], b: [2, 4, 3], tA: true, tB: true },
  { a: [2, 5, 3], b: [3, 4] },
  // products of at least SMALL_ENTRY_MACS multiply-adds each: split into XNNPACK products
  { a: [2, 24, 20], b: [2, 20, 16] },
  { a: [3, 24, 20], b: [1, 20, 16] },
  { a: [24, 20], b: [3, 20, 16] },
  { a: [20, 24], b: [20, 16], tA: true },
  { a: [2, 20, 24], b: [2, 16, 20], tA: true, tB: true },
  { a: [2, 3, 24, 20], b: [2, 3, 20, 16] },
];

/** m·k·n of one batch entry of a case. */
const entryMacs = (c: (typeof CASES)[number]) => {
  const [ra, ca] = c.a.slice(-2);
  return ra * ca * (c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1]);
};

test('the cases cover both the stock loop and the split products', () => {
  expect(CASES.filter((c) => entryMacs(c) < SMALL_ENTRY_MACS).length).toBeGreaterThanOrEqual(5);
  expect(CASES.filter((c) => entryMacs(c) >= SMALL_ENTRY_MACS).length).toBeGreaterThanOrEqual(5);
});

test.each(CASES)('products equal the definition: %j', (c) => {
  const before = tf.memory().numTensors;
  const a = values(1, c.a);
  const b = values(2, c.b);
  const got = tf.matMul(a, b, c.tA ?? false, c.tB ?? false);
  const want = naive(a, b, c.tA ?? false, c.tB ?? false);
  expect(got.shape).toEqual(want.shape);
  const g = got.dataSync();
  want.data.forEach((v, i) => expect(Math.abs(g[i] - v)).toBeLessThan(1e-5 * (1 + Math.abs(v))));
  tf.dispose([a, b, got]);
  expect(tf.memory().numTensors).toBe(before);
});

test('gradients through stacked products equal the cpu backend', async () => {
  const grads = () =>
    tf.tidy(() => {
      const a = values(3, [2, 6, 4]);
      const b = values(4, [2, 4, 5]);
      const p = values(5, [2, 24, 20]);
      const q = values(6, [2, 20, 16]);
      const big = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y))))([p, q]).map((t) => Array.from(t.dataSync()));
      return [...big, ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y))))([a, b]).map((t) => Array.from(t.dataSync()))];
    });
  const onWasm = grads();
  await tf.setBackend('cpu');
  try {
    const onCpu = grads();
    for (let k = 0; k < 4; k++) onCpu[k].forEach((v, i) => expect(Math.abs(onWasm[k][i] - v)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
  } finally {
    await tf.setBackend('wasm');
  }
});
