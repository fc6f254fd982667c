/**
 * Middle-axis Sum and Mean on wasm (wasm_reduce_kernels.ts): the stock tfjs-backend-wasm kernels'
 * values bit for bit, for blocks of axes at the front and in the middle, keepDims and negative
 * axes; the reductions it leaves to the stock kernels still work.
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative, initBackend, random, stockWasmKernel } from '../index';
import { middleBlock } from '../wasm_reduce_kernels';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

test('middleBlock: one contiguous block of axes followed by kept values, else null', () => {
  expect(middleBlock([128, 14, 14, 64], [0, 1, 2])).toEqual({ outer: 1, R: 128 * 14 * 14, inner: 64 });
  expect(middleBlock([2, 3, 4, 5], [2, 1])).toEqual({ outer: 2, R: 12, inner: 5 });
  expect(middleBlock([2, 3, 4, 5], [1])).toEqual({ outer: 2, R: 3, inner: 20 });
  expect(middleBlock([2, 3, 4, 5], [3])).toBeNull(); // the last axis: the stock kernel needs no transpose
  expect(middleBlock([2, 3, 4, 1], [1, 2])).toBeNull(); // kept values after the block: 1
  expect(middleBlock([2, 3, 4, 5], [0, 2])).toBeNull(); // not contiguous
  expect(middleBlock([2, 3], [])).toBeNull();
});

(coreNative() ? describe : describe.skip)('core addon Sum / Mean on wasm', () => {
  const CASES: Array<[number[], number | number[], boolean]> = [
    [[64, 4, 4, 32], [0, 1, 2], false],
    [[64, 4, 4, 32], [1, 2], true],
    [[2, 7, 5, 3], 1, false],
    [[2, 7, 5, 3], [-3, -2], true],
    [[3, 1000, 17], 0, false],
    [[3, 1000, 17], [0, 1], false],
    [[2, 5], [0], true],
  ];
  test.each(CASES)('%p over %p (keepDims %p): the stock kernel bit for bit', (shape, axis, keepDims) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(random.normalArray(random.PRNGKey(n), n), shape);
    for (const [name, op] of [['Sum', tf.sum], ['Mean', tf.mean]] as const) {
      const got = op(x, axis, keepDims);
      const backend = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array; disposeData(id: object): void };
      const ref = (stockWasmKernel(name)!.kernelFunc as (a: unknown) => { dataId: object; shape: number[] })({ inputs: { x }, backend, attrs: { axis, keepDims } });
      expect(got.shape).toEqual(ref.shape);
      expect(got.dataSync()).toEqual(backend.typedArrayFromHeap(ref).slice());
      backend.disposeData(ref.dataId);
      got.dispose();
    }
    x.dispose();
  });

  test('what it leaves to the stock kernels: int32, the last axis, all axes, non-contiguous axes', () => {
    const i = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2], 'int32');
    expect(Array.from(tf.sum(i, [0, 1]).dataSync())).toEqual([16, 20]);
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    expect(Array.from(tf.sum(x, 2).dataSync())).toEqual([3, 7, 11, 15]);
    expect(Array.from(tf.mean(x).dataSync())).toEqual([4.5]);
    expect(Array.from(tf.sum(x, [0, 2]).dataSync())).toEqual([14, 22]);
    expect(Array.from(tf.mean(x, [0, 1]).dataSync())).toEqual([4, 5]);
    tf.dispose([i, x]);
  });

  test('bad arguments are errors', () => {
    const addon = coreNative()!;
    expect(() => addon.reduceMiddle(new Float32Array(6), new Float32Array(2), 1, 3, 2, false)).not.toThrow();
    expect(() => addon.reduceMiddle(new Float32Array(5), new Float32Array(2), 1, 3, 2, false)).toThrow(/reduceMiddle: x must hold/);
    const shared = new Float32Array(8);
    expect(() => addon.reduceMiddle(shared.subarray(0, 6), shared.subarray(5, 7), 1, 3, 2, false)).toThrow(/must not overlap/);
  });
});
