import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeFlatten, treeLeaves, treeShapes, treeStack, treeUnflatten } from '@lopt/core';
import { AdafacMLPLOpt, AdafacNominal, AdafacNominalSchema, type AdafacNominalOptions } from '../index';
import { expectClose, expectNoLeakOverUpdates, flat, named, randTensor, rng, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const shapes: Record<string, number[]> = { w: [3, 5], b: [5], s: [], k: [2, 3, 4] };
function params(r: () => number, lead: number[] = []): any {
  return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randTensor(r, [...lead, ...s])]));
}

/** Every branch of the update on: the nominal step and decay with both controllers. */
const ACTIVE: AdafacNominalOptions = { nominalStepsize: 0.01, weightDecay: 0.1, expMult: [0.5, 0.3, 0.2], nominalController: true, regularizationController: true };
const CONFIGS: [string, AdafacNominalOptions][] = [
  ['defaults', {}],
  ['nominal + decay + controllers', ACTIVE],
  ['aggregated magnitudes, both black-box normalisations, SGDM', { ...ACTIVE, aggregateMagnitude: true, aggregateNomMagnitude: true, normalizeBlackbox: true, selfnormalizeBlackbox: true, nominalGradEstimator: 'SGDM' }],
  ['per-scalar weights', { ...ACTIVE, concatWeights: false, makeSeparateWeights: true, hiddenSize: 2, hiddenLayers: 1 }],
  ['no hidden layer', { ...ACTIVE, hiddenLayers: 0 }],
];

/** θ of `lopt` from `key` with nonzero decay offsets (so the learned decays matter). */
function thetaOf(lopt: AdafacNominal, seed: number, shift = 0): any {
  const t: any = lopt.init(random.PRNGKey(seed));
  tf.dispose([t.momentum_decays, t.rms_decays]);
  t.momentum_decays = tf.tensor1d([0.1 + 0.05 * shift, -0.05, 0.02]);
  t.rms_decays = tf.tensor1d([-0.1 * shift]);
  return t;
}

describe('AdafacNominal', () => {
  test('defaults are the reference MLPNomLOpt.__init__ defaults', () => {
    expect(AdafacNominalSchema.parse({})).toEqual({
      expMult: [0.001, 0.001, 0.001],
      stepMult: 0.001,
      hiddenSize: 4,
      hiddenLayers: 2,
      initialMomentumDecays: [0.9, 0.99, 0.999],
      initialRmsDecays: [0.999],
      initialAdafactorDecays: [0.9, 0.99, 0.999],
      nominalStepsize: 0,
      weightDecay: 0,
      concatWeights: true,
      makeSeparateWeights: false,
      splitWeights: false,
      nominalController: false,
      regularizationController: false,
      nominalGradEstimator: 'AdamAggMo',
      aggregateMagnitude: false,
      aggregateNomMagnitude: false,
      aggregateRegMagnitude: false,
      normalizeBlackbox: false,
      selfnormalizeBlackbox: false,
    });
    expect(() => new AdafacNominal({ nominalGradEstimator: 'Nesterov' as any })).toThrow(/nominalGradEstimator/);
    expect(() => new AdafacNominal({ expMult: 0.001 as any })).toThrow(/expMult/);
  });

  test('registered; theta and state shapes', () => {
    expect(registry.create('learned_optimizer', 'AdafacNominal', {})).toBeInstanceOf(AdafacNominal);
    const lopt = new AdafacNominal();
    expect(lopt.numFeatures()).toBe(28);
    const theta = lopt.init(random.PRNGKey(0));
    expect(treeShapes(theta)).toEqual({
      momentum_decays: [3],
      rms_decays: [1],
      adafactor_decays: [3],
      nn: { '~': { w0: [39, 4], b0: [4], w1: [4, 4], b1: [4], w2: [4, 4], b2: [4] } },
    });
    const opt = lopt.optFn(theta);
    const p = params(rng(1));
    expect(() => opt.init(p)).toThrow(/numSteps/);
    const s = opt.init(p, { numSteps: 100 });
    // the reference reuses AdafacMLPLOpt's state class (its layout is pinned in adafac_mlp_lopt.test.ts)
    const adafacLOpt = new AdafacMLPLOpt();
    const adafacTheta = adafacLOpt.init(random.PRNGKey(0));
    const adafac = adafacLOpt.optFn(adafacTheta).init(p, { numSteps: 100 });
    expect(treeShapes(s)).toEqual(treeShapes(adafac));
    treeDispose([adafacTheta, adafac] as any);
    treeDispose([theta, p, s] as any);
  });

  test('per-scalar weights (concatWeights false, makeSeparateWeights true): one θ leaf per weight; concat wins', () => {
    const sep = new AdafacNominal({ concatWeights: false, makeSeparateWeights: true, hiddenSize: 2, hiddenLayers: 1 });
    const t: any = sep.init(random.PRNGKey(0));
    const nn = t.nn['~'];
    expect(Object.keys(nn).length).toBe(39 * 2 + 2 + 2 * 4 + 4);
    expect(nn.w0_38_1.shape).toEqual([]);
    expect(nn.b1_3.shape).toEqual([]);
    expect(() => sep.optFn(new AdafacNominal().init(random.PRNGKey(0)))).toThrow(/w0_0_0/);
    const concat: any = new AdafacNominal({ concatWeights: true, makeSeparateWeights: true }).init(random.PRNGKey(0));
    expect(treeShapes(concat.nn)).toEqual(treeShapes((new AdafacNominal().init(random.PRNGKey(0)) as any).nn));
  });

  test('aggregateRegMagnitude (a reference quirk): init throws, and update throws for any leaf of more than one value', () => {
    const lopt = new AdafacNominal({ aggregateRegMagnitude: true, weightDecay: 0.1 });
    expect(() => lopt.init(random.PRNGKey(0))).toThrow(/cannot reshape array of shape \(\) \(size 1\) into shape \(10, 10\) \(size 100\)/);
    const opt = lopt.optFn(new AdafacNominal().init(random.PRNGKey(0)));
    const s = opt.init({ a: tf.ones([3]) }, { numSteps: 10 });
    expect(() => opt.update(s, { a: tf.ones([3]) })).toThrow(/into shape \(3,\) \(size 3\)/);
    // a one-value leaf reshapes fine there, so it works
    const s1 = opt.init({ a: tf.ones([1]), b: tf.scalar(2) }, { numSteps: 10 });
    const s2 = opt.update(s1, { a: tf.ones([1]), b: tf.scalar(1) });
    expect(flat(named(s2.params).b)[0]).toBeLessThan(2);
  });

  test.each(CONFIGS)('updates are finite and change every parameter; state advances (%s)', (_, cfg) => {
    const lopt = new AdafacNominal(cfg);
    const theta: any = thetaOf(lopt, 2);
    const opt = lopt.optFn(theta);
    const r = rng(3);
    const p0 = params(r);
    let s = opt.init(p0, { numSteps: 100 });
    for (let i = 0; i < 3; i++) s = opt.update(s, params(r));
    expect(flat(s.iteration)).toEqual([3]);
    expect(flat(s.momRolling.t)).toEqual([3, 3, 3]);
    expect(flat(s.numSteps)).toEqual([100]);
    for (const leaf of treeLeaves<tf.Tensor>(s)) expect(flat(leaf).every(Number.isFinite)).toBe(true);
    for (const k of Object.keys(shapes)) {
      const d = flat(tf.sub(named(s.params)[k], p0[k])).map(Math.abs);
      expect(Math.max(...d)).toBeLessThan(1);
      if (!(Math.max(...d) > 0)) throw new Error(`leaf ${k} unchanged: ${d}`);
    }
  });

  describe.each(CONFIGS)('batched form (%s)', (_, cfg) => {
    test.each([false, true])('initBatch/updateBatch on 3 stacked tasks = 3 single-task runs (per-task theta: %p)', (perTask) => {
      const lopt = new AdafacNominal(cfg);
      const thetas = [0, 1, 2].map((i) => thetaOf(lopt, perTask ? 10 + i : 10, perTask ? i : 0));
      const r = rng(5);
      const ps = [0, 1, 2].map(() => params(r));
      const gs = [0, 1].map(() => [0, 1, 2].map(() => params(r)));
      const singles = [0, 1, 2].map((n) => {
        const opt = lopt.optFn(thetas[n]);
        let s = opt.init(ps[n], { numSteps: 50 });
        for (const g of gs) s = opt.update(s, g[n]);
        return s;
      });
      const batchedTheta = perTask ? treeStack(thetas) : thetas[0];
      const opt = lopt.optFn(batchedTheta, false, perTask);
      const b0 = opt.initBatch(treeStack(ps), { numSteps: 50 });
      expect(treeShapes(b0)).toEqual(treeShapes(treeStack([0, 1, 2].map((n) => lopt.optFn(thetas[n]).init(ps[n], { numSteps: 50 })))));
      let s = b0;
      for (const g of gs) s = opt.updateBatch(s, treeStack(g));
      const cat = (f: (st: any) => tf.Tensor) => singles.flatMap((st) => flat(f(st)));
      for (const k of Object.keys(shapes)) {
        expectClose(flat(named(s.params)[k]), cat((st) => named(st.params)[k]), 1e-6, 1e-5);
        expectClose(flat(s.momRolling.m[k]), cat((st) => st.momRolling.m[k]), 1e-7, 1e-5);
        expectClose(flat(s.facRollingFeatures.vRow[k]), cat((st) => st.facRollingFeatures.vRow[k]), 1e-7, 1e-5);
        expectClose(flat(s.facRollingFeatures.vDiag[k]), cat((st) => st.facRollingFeatures.vDiag[k]), 1e-7, 1e-5);
      }
      expect(flat(s.iteration)).toEqual([2, 2, 2]);
      if (perTask) expect(() => opt.update(singles[0], gs[0][0])).toThrow(/updateBatch/);
    });
  });

  test.each(CONFIGS)('no tensor leak across optFn/init/update/updateBatch (%s)', (_, cfg) => {
    const lopt = new AdafacNominal(cfg);
    const theta = lopt.init(random.PRNGKey(0));
    const before = tf.memory().numTensors;
    const opt = lopt.optFn(theta);
    expect(tf.memory().numTensors).toBe(before);
    const p = params(rng(1));
    const g = params(rng(2));
    const s = opt.init(p, { numSteps: 100 });
    treeDispose(expectNoLeakOverUpdates(opt, s, g, 5));
    const pb = params(rng(1), [2]);
    const gb = params(rng(2), [2]);
    const vtheta = treeStack([theta, theta]);
    const mid = tf.memory().numTensors;
    for (const [o, th] of [
      [opt, false],
      [lopt.optFn(vtheta, false, true), true],
    ] as const) {
      let sb = o.initBatch(pb, { numSteps: 100 });
      for (let i = 0; i < 3; i++) {
        const n = o.updateBatch(sb, gb);
        treeDispose(sb);
        sb = n;
      }
      treeDispose(sb);
      expect({ thetaIsVector: th, tensors: tf.memory().numTensors }).toEqual({ thetaIsVector: th, tensors: mid });
    }
    treeDispose([theta, vtheta, p, g, pb, gb] as any);
  });

  test.each(CONFIGS)('tf.grad of a loss after 2 updateBatch calls w.r.t. per-task θ is finite and nonzero (%s)', (_, cfg) => {
    const lopt = new AdafacNominal(cfg);
    const thetas = [0, 1, 2].map((i) => thetaOf(lopt, 20 + i, i));
    const vtheta: any = treeStack(thetas);
    const [leaves, def] = treeFlatten<tf.Tensor>(vtheta);
    const r = rng(7);
    const p = params(r, [3]);
    const gs = [params(r, [3]), params(r, [3])];
    const grads = tf.grads((...ls: tf.Tensor[]) => {
      const opt = lopt.optFn(treeUnflatten(def, ls), true, true);
      let s = opt.initBatch(p, { numSteps: 100 });
      for (const g of gs) s = opt.updateBatch(s, g);
      return tf.addN(treeLeaves<tf.Tensor>(s.params).map((x) => tf.sum(tf.square(x))));
    })(leaves);
    const vals = grads.flatMap((g) => flat(g));
    expect(vals.every(Number.isFinite)).toBe(true);
    expect(vals.some((v) => v !== 0)).toBe(true);
    // the decay offsets get a gradient too
    expect(flat(grads[leaves.indexOf(vtheta.momentum_decays)]).some((v) => v !== 0)).toBe(true);
    tf.dispose(grads);
  });
});
