import * as tf from '@tensorflow/tfjs';
import { haikuInit, random, registry, treeDispose, treeLeaves, treeMap, treeMapN, type PyTree } from '@lopt/core';
import { MomentumMLPLOpt, NORM_EPS, type MomentumMLPState } from '../index';

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}

beforeAll(async () => {
  await useTestBackend();
});

const keysOf = (seed: number, n: number) => random.split(random.PRNGKey(seed), n);

/** Largest |a − b| over two trees with the same structure. */
function maxDiff(a: PyTree, b: PyTree): number {
  const la = treeLeaves<tf.Tensor>(a);
  const lb = treeLeaves<tf.Tensor>(b);
  expect(la.length).toBe(lb.length);
  return Math.max(0, ...la.map((x, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, lb[i]))).dataSync()[0])));
}

test('registered under its name, config validated with defaults', () => {
  expect(registry.list('learned_optimizer').map((e) => e.name)).toContain('MomentumMLPLOpt');
  const lopt = registry.create<MomentumMLPLOpt>('learned_optimizer', 'MomentumMLPLOpt', {});
  expect(lopt.config).toEqual({ hiddenSize: 8, stepMult: 0.01, momentumDecay: 0.9 });
  expect(registry.create<MomentumMLPLOpt>('learned_optimizer', 'MomentumMLPLOpt', { hiddenSize: 4 }).config.hiddenSize).toBe(4);
  expect(() => registry.create('learned_optimizer', 'MomentumMLPLOpt', { momentumDecay: 1 })).toThrow(/momentumDecay/);
  expect(() => registry.create('learned_optimizer', 'MomentumMLPLOpt', { hidden: 4 })).toThrow(/hidden/);
});

test('init is hk.nets.MLP([8, 1]) on 2 features, haiku-named and haiku-initialised', () => {
  const lopt = new MomentumMLPLOpt();
  const theta = lopt.init(random.PRNGKey(0)) as any;
  expect(Object.keys(theta).sort()).toEqual(['mlp/~/linear_0', 'mlp/~/linear_1']);
  expect(theta['mlp/~/linear_0'].w.shape).toEqual([2, 8]);
  expect(theta['mlp/~/linear_0'].b.shape).toEqual([8]);
  expect(theta['mlp/~/linear_1'].w.shape).toEqual([8, 1]);
  expect(theta['mlp/~/linear_1'].b.shape).toEqual([1]);
  expect(Array.from(theta['mlp/~/linear_0'].b.dataSync())).toEqual(new Array(8).fill(0));
  const ref = haikuInit(random.PRNGKey(0), (hk) => hk.mlp(2, [8, 1]));
  expect(maxDiff(theta, ref)).toBe(0);
  const other = lopt.init(random.PRNGKey(1));
  expect(maxDiff(theta, other)).toBeGreaterThan(0.01);
  [theta, ref, other].forEach(treeDispose);
});

describe('the update equals a hand computation', () => {
  // hiddenSize 2, so θ can be written out: rows of w0 are the g and m features.
  const cfg = { hiddenSize: 2, stepMult: 0.1, momentumDecay: 0.9 };
  const W0 = [
    [0.5, -1],
    [0.25, 2],
  ];
  const B0 = [0.1, -0.2];
  const W1 = [1.5, -0.5];
  const B1 = 0.05;
  const makeTheta = () => ({
    'mlp/~/linear_0': { w: tf.tensor2d(W0), b: tf.tensor1d(B0) },
    'mlp/~/linear_1': { w: tf.tensor2d(W1.map((x) => [x])), b: tf.tensor1d([B1]) },
  });

  /** One leaf of one task in float64: returns [p', m']. */
  function reference(p: number[], m: number[], g: number[]): [number[], number[]] {
    const m2 = m.map((mi, i) => cfg.momentumDecay * mi + (1 - cfg.momentumDecay) * g[i]);
    const rms = (x: number[]) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + NORM_EPS);
    const gs = rms(g);
    const ms = rms(m2);
    const p2 = p.map((pi, i) => {
      const gh = g[i] / gs;
      const mh = m2[i] / ms;
      let out = B1;
      for (let j = 0; j < 2; j++) out += Math.max(0, gh * W0[0][j] + mh * W0[1][j] + B0[j]) * W1[j];
      return pi - cfg.stepMult * out;
    });
    return [p2, m2];
  }

  test('two single-task updates of a tree with a matrix and a scalar leaf', () => {
    const lopt = new MomentumMLPLOpt(cfg);
    const theta = makeTheta();
    const opt = lopt.optFn(theta);
    const p0 = { a: [1, -2, 0.5, 3], b: [0.7] };
    const grads = [
      { a: [0.3, -0.1, 2, -1.5], b: [-0.4] },
      { a: [-0.2, 0.6, 1, 0.25], b: [0.9] },
    ];
    let s = opt.init({ a: tf.tensor2d(p0.a, [2, 2]), b: tf.scalar(p0.b[0]) }) as MomentumMLPState;
    let want = { p: p0, m: { a: [0, 0, 0, 0], b: [0] } };
    for (const g of grads) {
      const next = opt.update(s, { a: tf.tensor2d(g.a, [2, 2]), b: tf.scalar(g.b[0]) }) as MomentumMLPState;
      treeDispose(s);
      s = next;
      const [pa, ma] = reference(want.p.a, want.m.a, g.a);
      const [pb, mb] = reference(want.p.b, want.m.b, g.b);
      want = { p: { a: pa, b: pb }, m: { a: ma, b: mb } };
      const st = s as any;
      expect(st.params.a.shape).toEqual([2, 2]);
      expect(st.params.b.shape).toEqual([]);
      Array.from(st.params.a.dataSync() as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(pa[i], 5));
      expect(st.params.b.dataSync()[0]).toBeCloseTo(pb[0], 5);
      Array.from(st.momentum.a.dataSync() as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(ma[i], 6));
      expect(st.momentum.b.dataSync()[0]).toBeCloseTo(mb[0], 6);
    }
    expect(s.iteration.dtype).toBe('int32');
    expect(s.iteration.shape).toEqual([]);
    expect(s.iteration.dataSync()[0]).toBe(2);
    // not vacuous: the two updates moved every parameter
    want.p.a.forEach((v, i) => expect(Math.abs(v - p0.a[i])).toBeGreaterThan(0.01));
    treeDispose(s);
    treeDispose(theta);
  });
});

describe('batched: initBatch/updateBatch equal N single-task calls', () => {
  const N = 3;
  const lopt = new MomentumMLPLOpt({ stepMult: 0.05 });
  const shapes = { w: [3, 2], b: [2], s: [] as number[] };

  function stackedTree(seed: number): PyTree {
    const ks = keysOf(seed, 3);
    return { w: random.normal(ks[0], [N, ...shapes.w]), b: random.normal(ks[1], [N, ...shapes.b]), s: random.normal(ks[2], [N]) };
  }
  const row = (t: PyTree, i: number) => treeMap((x: tf.Tensor) => tf.tidy(() => tf.squeeze(tf.slice(x, [i], [1]), [0])), t);

  function compare(thetaBatched: PyTree, thetaOf: (i: number) => PyTree, thetaIsVector: boolean): void {
    const params = stackedTree(1);
    const grads = [stackedTree(2), stackedTree(3), stackedTree(4)];
    const opt = lopt.optFn(thetaBatched, true, thetaIsVector);
    let s = opt.initBatch(params);
    expect((s.iteration as tf.Tensor).shape).toEqual([N]);
    expect((s.iteration as tf.Tensor).dtype).toBe('int32');
    for (const g of grads) {
      const next = opt.updateBatch(s, g);
      treeDispose(s);
      s = next;
    }
    expect(Array.from((s.iteration as tf.Tensor).dataSync())).toEqual([3, 3, 3]);
    for (let i = 0; i < N; i++) {
      const th = thetaOf(i);
      const single = lopt.optFn(th);
      const pi = row(params, i);
      let si = single.init(pi);
      for (const g of grads) {
        const gi = row(g, i);
        const next = single.update(si, gi);
        treeDispose(si);
        treeDispose(gi);
        si = next;
      }
      const ps = row(s.params, i);
      const ms = row((s as MomentumMLPState).momentum, i);
      expect(maxDiff(ps, si.params)).toBeLessThan(1e-5);
      expect(maxDiff(ms, (si as MomentumMLPState).momentum)).toBeLessThan(1e-6);
      // and the update did something
      expect(maxDiff(pi, si.params)).toBeGreaterThan(1e-3);
      [th, pi, si, ps, ms].forEach(treeDispose);
    }
    [params, s, ...grads].forEach(treeDispose);
  }

  test('one θ per task (thetaIsVector): θ leaves [N, ...]', () => {
    const thetas = keysOf(10, N).map((k) => lopt.init(k));
    const stacked = treeMapN((...ls: tf.Tensor[]) => tf.stack(ls), ...thetas);
    compare(stacked, (i) => treeMap((x: tf.Tensor) => tf.clone(x), thetas[i]), true);
    [stacked, ...thetas].forEach(treeDispose);
  });

  test('one shared θ', () => {
    const theta = lopt.init(random.PRNGKey(11));
    compare(theta, () => treeMap((x: tf.Tensor) => tf.clone(x), theta), false);
    treeDispose(theta);
  });

  test('per-task θ and state must agree on N; a per-task θ needs the batched form', () => {
    const thetas = keysOf(12, 2).map((k) => lopt.init(k));
    const stacked = treeMapN((...ls: tf.Tensor[]) => tf.stack(ls), ...thetas);
    const params = stackedTree(5); // N = 3 tasks
    const opt = lopt.optFn(stacked, true, true);
    const s = opt.initBatch(params);
    expect(() => opt.updateBatch(s, params)).toThrow(/θ has 2 tasks .* state has 3/);
    const one = opt.init(treeMap((x: tf.Tensor) => x, row(params, 0)));
    expect(() => opt.update(one, one.params)).toThrow(/thetaIsVector/);
    expect(() => lopt.optFn(thetas[0], true, true)).toThrow(/linear_0'\.w: shape \[2,8\], expected \[N, 2,8\]/);
    expect(() => lopt.optFn({ 'mlp/~/linear_0': (thetas[0] as any)['mlp/~/linear_0'] })).toThrow(/linear_1'\.w: missing/);
    [stacked, params, s, one, ...thetas].forEach(treeDispose);
  });
});

test('no tensor leaks: optFn makes none, init/update/updateBatch keep only their new state', () => {
  const lopt = new MomentumMLPLOpt();
  const theta = lopt.init(random.PRNGKey(0));
  const params = { w: tf.ones([4, 3]), b: tf.zeros([3]) };
  const before = tf.memory().numTensors;
  const opt = lopt.optFn(theta);
  expect(tf.memory().numTensors).toBe(before);
  let s = opt.init(params);
  const perState = tf.memory().numTensors - before;
  for (let i = 0; i < 3; i++) {
    const next = opt.update(s, params);
    treeDispose(s);
    s = next;
    expect(tf.memory().numTensors - before).toBe(perState);
  }
  treeDispose(s);
  const stacked = treeMap((x: tf.Tensor) => tf.stack([x, x]), params);
  const before2 = tf.memory().numTensors;
  let b = opt.initBatch(stacked);
  const perBatchState = tf.memory().numTensors - before2;
  for (let i = 0; i < 3; i++) {
    const next = opt.updateBatch(b, stacked);
    treeDispose(b);
    b = next;
    expect(tf.memory().numTensors - before2).toBe(perBatchState);
  }
  treeDispose(b);
  expect(tf.memory().numTensors).toBe(before2);
  [theta, params, stacked].forEach(treeDispose);
});
