import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeShapes, treeStack } from '@lopt/core';
import { AdafacMLPLOpt, factoredDims } from '../index';
import { expectClose, flat, randTensor, rng, useTestBackend, expectNoLeakOverUpdates, named } from './helpers';

beforeAll(useTestBackend);

const shapes: Record<string, number[]> = { w: [3, 5], b: [5], s: [], k: [2, 3, 4] };
function params(r: () => number, lead: number[] = []): any {
  return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randTensor(r, [...lead, ...s])]));
}

describe('AdafacMLPLOpt', () => {
  test('factoredDims: the two largest axes, stable on ties', () => {
    expect(factoredDims([5])).toBeNull();
    expect(factoredDims([3, 5])).toEqual([0, 1]);
    expect(factoredDims([5, 3])).toEqual([1, 0]);
    expect(factoredDims([4, 4])).toEqual([0, 1]);
    expect(factoredDims([2, 3, 4])).toEqual([1, 2]);
  });

  test('theta and state shapes', () => {
    const lopt = new AdafacMLPLOpt();
    expect(lopt.numFeatures()).toBe(28);
    const theta = lopt.init(random.PRNGKey(0));
    expect(treeShapes(theta)).toEqual({
      momentum_decays: [3],
      rms_decays: [1],
      adafactor_decays: [3],
      nn: { '~': { w0: [39, 4], b0: [4], w1: [4, 4], b1: [4], w2: [4, 2], b2: [2] } },
    });
    const opt = lopt.optFn(theta);
    const p = params(rng(1));
    expect(() => opt.init(p)).toThrow(/numSteps/);
    const s = opt.init(p, { numSteps: 100 });
    expect(treeShapes(s)).toEqual({
      params: { w: [3, 5], b: [5], s: [], k: [2, 3, 4] },
      state: null,
      momRolling: { m: { w: [3, 5, 3], b: [5, 3], s: [3], k: [2, 3, 4, 3] }, t: [3] },
      rmsRolling: { rms: { w: [3, 5, 1], b: [5, 1], s: [1], k: [2, 3, 4, 1] }, t: [1] },
      facRollingFeatures: {
        vRow: { w: [3, 3], b: [0, 3], s: [0, 3], k: [2, 3, 3] },
        vCol: { w: [5, 3], b: [0, 3], s: [0, 3], k: [2, 4, 3] },
        vDiag: { w: [0, 3], b: [5, 3], s: [3], k: [0, 3] },
      },
      numSteps: [],
      iteration: [],
    });
    const sb = opt.initBatch(params(rng(1), [4]), { numSteps: 100 });
    expect((sb.iteration as tf.Tensor).shape).toEqual([4]);
    expect(sb.facRollingFeatures.vRow.w.shape).toEqual([4, 3, 3]);
    expect(sb.momRolling.t.shape).toEqual([4, 3]);
    expect(registry.create('learned_optimizer', 'AdafacMLPLOpt', {})).toBeInstanceOf(AdafacMLPLOpt);
  });

  test('updates are finite, small and change every parameter; state advances', () => {
    const lopt = new AdafacMLPLOpt();
    const theta: any = lopt.init(random.PRNGKey(2));
    theta.nn['~'].b2 = tf.tensor1d([0.5, 0.1]); // a nonzero output bias: a scalar leaf's 4 relus may all be dead
    const opt = lopt.optFn(theta);
    const r = rng(3);
    let s = opt.init(params(r), { numSteps: 100 });
    for (let i = 0; i < 3; i++) s = opt.update(s, params(r));
    const p0 = params(rng(1));
    expect(flat(s.iteration)).toEqual([3]);
    expect(flat(s.momRolling.t)).toEqual([3, 3, 3]);
    expect(flat(s.numSteps)).toEqual([100]);
    for (const leaf of treeLeaves<tf.Tensor>(s)) expect(flat(leaf).every(Number.isFinite)).toBe(true);
    const before = opt.init(p0, { numSteps: 10 });
    const after = opt.update(before, params(r));
    for (const k of Object.keys(shapes)) {
      const d = flat(tf.sub(named(after.params)[k], named(before.params)[k])).map(Math.abs);
      expect(Math.max(...d)).toBeLessThan(0.1);
      if (!(Math.max(...d) > 0)) throw new Error(`leaf ${k} unchanged: ${d}`);
    }
  });

  test.each([false, true])('stacked application equals per-task applications (per-task theta: %p)', (perTask) => {
    const lopt = new AdafacMLPLOpt();
    const thetas = [0, 1].map((i) => {
      const t: any = lopt.init(random.PRNGKey(perTask ? 10 + i : 10));
      if (perTask) t.momentum_decays = tf.tensor1d([0.1 * i, -0.05, 0.02]);
      return t;
    });
    const r = rng(5);
    const ps = [params(r), params(r)];
    const gs = [0, 1].map(() => [params(r), params(r)]);
    const singles = [0, 1].map((n) => {
      const opt = lopt.optFn(thetas[n]);
      let s = opt.init(ps[n], { numSteps: 50 });
      for (const g of gs) s = opt.update(s, g[n]);
      return s;
    });
    const opt = lopt.optFn(perTask ? treeStack(thetas) : thetas[0], false, perTask);
    let s = opt.initBatch(treeStack(ps), { numSteps: 50 });
    for (const g of gs) s = opt.updateBatch(s, treeStack(g));
    for (const k of Object.keys(shapes)) {
      expectClose(flat(named(s.params)[k]), [...flat(named(singles[0].params)[k]), ...flat(named(singles[1].params)[k])], 1e-6, 1e-6);
      expectClose(flat(s.facRollingFeatures.vRow[k]), [...flat(singles[0].facRollingFeatures.vRow[k]), ...flat(singles[1].facRollingFeatures.vRow[k])], 1e-7, 1e-5);
    }
  });

  test('no tensor leak across 100 updates', () => {
    const lopt = new AdafacMLPLOpt();
    const opt = lopt.optFn(lopt.init(random.PRNGKey(0)));
    const s = opt.init(params(rng(1)), { numSteps: 100 });
    const g = params(rng(2));
    expectNoLeakOverUpdates(opt, s, g);
  });
});
