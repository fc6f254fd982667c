import * as tf from '@tensorflow/tfjs';
import {
  initBackend,
  treeAdd,
  treeDispose,
  treeFlatten,
  treeKeep,
  treeLeaves,
  treeLeavesWithPath,
  treeMap,
  treeMapN,
  treeScale,
  treeShapes,
  treeSize,
  treeStack,
  treeStructureEqual,
  treeSub,
  treeUnflatten,
  treeUnstack,
  treeZerosLike,
} from '../index';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

const vals = (t: tf.Tensor) => Array.from(t.dataSync());

describe('tree', () => {
  test('flatten visits object keys in sorted order, arrays in index order, skips null', () => {
    const tree = { w: 1, b: 2, nested: { z: 3, a: [4, null, 5] }, empty: null };
    const [leaves, def] = treeFlatten(tree);
    expect(leaves).toEqual([2, 4, 5, 3, 1]);
    expect(treeLeaves(tree)).toEqual([2, 4, 5, 3, 1]);
    expect(treeLeavesWithPath(tree).map(([p]) => p)).toEqual(['b', 'nested/a/0', 'nested/a/2', 'nested/z', 'w']);
    expect(def.kind).toBe('object');
  });

  test('unflatten round trip keeps nulls, undefined and nesting', () => {
    const tree = { b: [1, { c: 'x', d: null }], a: undefined, e: true };
    const [leaves, def] = treeFlatten(tree);
    const back = treeUnflatten(def, leaves) as any;
    expect(back).toEqual({ a: undefined, b: [1, { c: 'x', d: null }], e: true });
    expect('a' in back).toBe(true);
    expect(() => treeUnflatten(def, leaves.slice(1))).toThrow(/too few leaves/);
    expect(() => treeUnflatten(def, [...leaves, 9])).toThrow(/leaves given/);
    const doubled = treeUnflatten(def, leaves.map((l: any) => (typeof l === 'number' ? l * 2 : l))) as any;
    expect(doubled.b[0]).toBe(2);
  });

  test('treeMap passes paths and keeps structure', () => {
    const out = treeMap((x: number, p: string) => `${p}=${x}`, { b: 1, a: [2, 3] });
    expect(out).toEqual({ b: 'b=1', a: ['a/0=2', 'a/1=3'] });
  });

  test('treeMapN combines trees and reports structure mismatches', () => {
    expect(treeMapN((x: number, y: number) => x + y, { a: 1, b: [2] }, { a: 10, b: [20] })).toEqual({ a: 11, b: [22] });
    expect(() => treeMapN((x: number, y: number) => x + y, { a: 1, b: [2] }, { a: 1, c: [2] })).toThrow(/tree 1 differs at ''/);
    expect(() => treeMapN((x: number, y: number) => x + y, { a: [1, 2] }, { a: [1] })).toThrow(/tree 1 differs at 'a'/);
    expect(() => treeMapN(() => 0)).toThrow(/at least one tree/);
    expect(treeStructureEqual({ a: 1, b: 2 }, { b: 3, a: 4 })).toBe(true);
    expect(treeStructureEqual({ a: 1 }, { a: [1] })).toBe(false);
  });

  test('treeStack / treeUnstack round trip', () => {
    const trees = [0, 1, 2].map((i) => ({ w: tf.fill([2, 3], i), b: [tf.scalar(10 + i)] }));
    const stacked = treeStack(trees);
    expect(stacked.w.shape).toEqual([3, 2, 3]);
    expect(stacked.b[0].shape).toEqual([3]);
    expect(vals(stacked.b[0])).toEqual([10, 11, 12]);
    const back = treeUnstack(stacked);
    expect(back).toHaveLength(3);
    back.forEach((t, i) => {
      expect(t.w.shape).toEqual([2, 3]);
      expect(vals(t.w)).toEqual(vals(trees[i].w));
      expect(vals(t.b[0])).toEqual([10 + i]);
    });
    const onAxis1 = treeStack(trees.map((t) => ({ w: t.w })), 1);
    expect(onAxis1.w.shape).toEqual([2, 3, 3]);
    expect(treeUnstack(onAxis1, 1)).toHaveLength(3);
    expect(() => treeStack([])).toThrow(/at least one/);
    treeDispose([trees, stacked, back, onAxis1]);
  });

  test('treeShapes and treeSize', () => {
    const tree = { w: tf.zeros([2, 3]), k: new Uint32Array(2), lr: 0.1, name: 'x', none: null };
    expect(treeShapes(tree)).toEqual({ w: [2, 3], k: [2], lr: [], name: 'string', none: null });
    expect(treeSize({ w: tree.w, s: tf.scalar(1) })).toBe(7);
    treeDispose(tree);
  });

  test('arithmetic helpers', () => {
    const a = { x: tf.tensor([1, 2]), y: [tf.scalar(3)] };
    const b = { x: tf.tensor([10, 20]), y: [tf.scalar(30)] };
    const s = treeAdd(a, b);
    const d = treeSub(b, a);
    const sc = treeScale(a, 2);
    const z = treeZerosLike(a);
    expect(vals(s.x)).toEqual([11, 22]);
    expect(vals(d.y[0])).toEqual([27]);
    expect(vals(sc.x)).toEqual([2, 4]);
    expect(vals(z.x)).toEqual([0, 0]);
    treeDispose([a, b, s, d, sc, z]);
  });

  test('tree ops inside tf.tidy do not leak', () => {
    const params = { w: tf.ones([4, 4]), b: [tf.zeros([4]), null] };
    const grads = { w: tf.ones([4, 4]), b: [tf.ones([4]), null] };
    const start = tf.memory().numTensors;
    let p = params as any;
    for (let i = 0; i < 5; i++) {
      const next = tf.tidy(() => {
        const upd = treeScale(treeAdd(grads, treeZerosLike(grads)), -0.1);
        const out = treeMap((x: tf.Tensor) => x.mul(1), treeAdd(p, upd));
        return treeKeep(treeStack(treeUnstack(treeStack([out, out])))) as any;
      });
      const first = tf.tidy(() => treeKeep(treeMap((x: tf.Tensor) => x.gather(0), next)));
      treeDispose(next);
      if (p !== params) treeDispose(p);
      p = first;
      expect(tf.memory().numTensors).toBe(start + 2);
    }
    expect(vals(p.w)[0]).toBeCloseTo(0.5, 5);
    treeDispose([p, params, grads]);
    expect(tf.memory().numTensors).toBe(start - 4);
  });
});
