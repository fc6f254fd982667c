/**
 * The wasm Slice / Unpack / SplitV / GatherV2 replacements (wasm_kernels.ts) give the cpu backend's values
 * for every axis, partial boxes, int32 and bool.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../index';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

type Op = (x: tf.Tensor) => tf.Tensor[];
function opsFor(sh: number[]): Op[] {
  const last = sh.length - 1;
  return [
    (x) => tf.unstack(x, 0),
    (x) => tf.unstack(x, 1),
    (x) => tf.unstack(x, last),
    (x) => tf.split(x, sh[0], 0),
    (x) => tf.split(x, [1, sh[1] - 1], 1),
    (x) => tf.split(x, [1, sh[last] - 1], -1),
    (x) => [tf.slice(x, sh.map(() => 1), sh.map((s) => s - 1))],
    (x) => [tf.slice(x, [1], [1])],
    (x) => [tf.slice(x, sh.map(() => 0), sh.map((s, i) => (i === 0 ? s : 1)))],
    (x) => [tf.gather(x, tf.tensor1d([sh[0] - 1, 0, 1, 0], 'int32'))],
    (x) => [tf.gather(x, tf.tensor2d([[1, 0], [0, 1]], [2, 2], 'int32'))],
    (x) => [tf.gather(x, tf.tensor1d([1, 0], 'int32'), 1)],
  ];
}

async function run(backend: string, sh: number[], dtype: 'float32' | 'int32' | 'bool'): Promise<string> {
  await tf.setBackend(backend);
  const n = sh.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 ? 1 : 0 : i - 7));
  const x = tf.tensor(vals, sh, dtype);
  const out = opsFor(sh).map((op) => op(x).map((r) => [r.shape, Array.from(r.dataSync())]));
  return JSON.stringify(out);
}

describe('fast wasm slice kernels', () => {
  test.each([
    [[5, 7, 3], 'float32'],
    [[4, 6], 'int32'],
    [[3, 4, 5, 2], 'float32'],
    [[3, 4, 2], 'bool'],
    // rows of 16+ elements: GatherV2 moves them with copyWithin (shorter ones element by element)
    [[3, 20], 'int32'],
    [[3, 4, 8], 'bool'],
  ] as Array<[number[], 'float32' | 'int32' | 'bool']>)('shape %j %s matches the cpu backend', async (sh, dtype) => {
    const cpu = await run('cpu', sh, dtype);
    const wasm = await run('wasm', sh, dtype);
    expect(wasm).toEqual(cpu);
  });
});

describe('wasm Identity shares its input buffer', () => {
  // The engine clones (Identity) every tensor a gradient saves; the stock wasm Identity copied it,
  // doubling the memory of saved activations (part of the MLP-Mixer wasm heap exhaustion).
  test('tf.clone allocates no new wasm buffer and outlives its source', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend();
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const buffers = backend.numDataIds();
    const y = tf.clone(x);
    expect(backend.numDataIds()).toBe(buffers);
    expect(y.dataId).toBe(x.dataId);
    expect(y.shape).toEqual([2, 3]);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(backend.numDataIds()).toBe(buffers);
    y.dispose();
    expect(backend.numDataIds()).toBe(buffers - 1);
  });

  test('a gradient saved through the shared clone is still right', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([0.5, -1, 2]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tanh(v), v)))(x);
    const t = Array.from(tf.tanh(x).dataSync());
    const want = [0.5, -1, 2].map((v, i) => t[i]! + v * (1 - t[i]! ** 2));
    Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    tf.dispose([x, g]);
  });

  test('a clone of a reshaped tensor gets a buffer of its own rank (wasm _FusedMatMul checks the bias buffer is rank 1)', async () => {
    await tf.setBackend('wasm');
    const bias = tf.reshape(tf.tensor2d([[1, 2, 3]]), [3]); // shares the [1, 3] buffer
    const c = tf.clone(bias);
    const a = tf.ones([2, 4]);
    const w = tf.ones([4, 3]);
    const y = tf.fused.matMul({ a, b: w, bias: c });
    expect(y.arraySync()).toEqual([
      [5, 6, 7],
      [5, 6, 7],
    ]);
    tf.dispose([bias, c, a, w, y]);
  });

  test('string tensors fall back to the stock kernel', async () => {
    await tf.setBackend('wasm');
    const s = tf.tensor1d(['a', 'bc']);
    const c = tf.clone(s);
    s.dispose();
    expect(c.arraySync()).toEqual(['a', 'bc']);
    c.dispose();
  });
});
