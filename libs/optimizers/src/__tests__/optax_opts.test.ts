import * as tf from '@tensorflow/tfjs';
import { registry, treeDispose, treeFlatten, treeShapes, treeUnflatten } from '@lopt/core';
import {
  Adam,
  AdamW,
  cosineSchedule,
  exponentialDecaySchedule,
  GradientClipOptimizer,
  linearWarmupSchedule,
  piecewiseLinearSchedule,
  RMSProp,
  SGD,
  SGDM,
  Optimizer,
} from '../index';
import { expectClose, flat, useTestBackend, expectNoLeakOverUpdates, named } from './helpers';

beforeAll(useTestBackend);

const p0 = [0.5, -1.0, 2.0];
const grads = [
  [0.1, -0.2, 0.3],
  [-0.4, 0.5, 0.05],
  [1.0, 0.0, -2.0],
];

function run(opt: Optimizer, steps = grads.length): number[] {
  let s = opt.init({ w: tf.tensor1d(p0) });
  for (let i = 0; i < steps; i++) {
    const g = { w: tf.tensor1d(grads[i]) };
    const ns = opt.update(s, g, { loss: 0 });
    treeDispose(s);
    treeDispose(g);
    s = ns;
  }
  const out = flat(named(s.params).w);
  treeDispose(s);
  return out;
}

function adamRef(lr: number, b1: number, b2: number, eps: number, epsRoot: number, steps = grads.length): number[] {
  const p = [...p0];
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  for (let t = 1; t <= steps; t++) {
    for (let i = 0; i < 3; i++) {
      const g = grads[t - 1][i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const mh = m[i] / (1 - b1 ** t);
      const vh = v[i] / (1 - b2 ** t);
      p[i] -= (lr * mh) / (Math.sqrt(vh + epsRoot) + eps);
    }
  }
  return p;
}

describe('hand-designed optimizers', () => {
  test('SGD', () => {
    const want = p0.map((p, i) => p - 0.1 * (grads[0][i] + grads[1][i] + grads[2][i]));
    expectClose(run(new SGD(0.1)), want);
  });

  test('SGDM: t = g + mu t, p -= lr t', () => {
    const p = [...p0];
    const tr = [0, 0, 0];
    for (const g of grads) {
      for (let i = 0; i < 3; i++) {
        tr[i] = g[i] + 0.9 * tr[i];
        p[i] -= 0.05 * tr[i];
      }
    }
    expectClose(run(new SGDM(0.05, 0.9)), p);
  });

  test('Adam with bias correction and eps_root', () => {
    expectClose(run(new Adam(0.1)), adamRef(0.1, 0.9, 0.999, 1e-8, 1e-8), 1e-6);
    // a large eps_root makes its place (inside the sqrt) visible
    expectClose(run(new Adam(0.1, { epsilonRoot: 0.01, epsilon: 0.001 })), adamRef(0.1, 0.9, 0.999, 0.001, 0.01), 1e-6);
    expectClose(run(new Adam(1e-3, { beta1: 0.5, beta2: 0.9 })), adamRef(1e-3, 0.5, 0.9, 1e-8, 1e-8), 1e-6);
  });

  test('Adam state mirrors OptaxState{params, state, optax_opt_state=(ScaleByAdamState, EmptyState), iteration}', () => {
    const opt = new Adam(1e-3);
    const s = opt.init({ a: tf.zeros([2, 3]), b: tf.zeros([3]) });
    expect(treeShapes(s)).toEqual({
      params: { a: [2, 3], b: [3] },
      state: null,
      optaxOptState: [{ count: [], mu: { a: [2, 3], b: [3] }, nu: { a: [2, 3], b: [3] } }, {}],
      iteration: [],
    });
    expect((s.iteration as tf.Tensor).dtype).toBe('int32');
    expect(s.optaxOptState[0].count.dtype).toBe('int32');
    expect(opt.name).toBe('Adam_lr0.001_b10.9_b20.999_eps1e-8_epsroot1e-8');
    treeDispose(s);
  });

  test('update keeps every state leaf dtype and shape (int32 counters stay int32), single and batched', () => {
    // the reference's optimizer smoke test: the state after update has the init state's structure
    // and dtypes (jax strict dtype promotion), for every hand-designed optimizer
    const dtypesAndShapes = (s: any) => {
      const [leaves, def] = treeFlatten<tf.Tensor>(s);
      return treeUnflatten(def, leaves.map((x) => [x.dtype, x.shape]));
    };
    const sched = cosineSchedule(0.1);
    for (const opt of [new SGD(0.1), new SGDM(0.1), new Adam(0.1), new RMSProp(0.1, { momentum: 0.5 }), new AdamW(0.1), new Adam(sched), new GradientClipOptimizer(new Adam(0.1), 1)]) {
      for (const batched of [false, true]) {
        const params = { a: tf.ones(batched ? [2, 3] : [3]), b: { c: tf.ones(batched ? [2, 2, 2] : [2, 2]) } };
        let s = batched ? opt.initBatch(params, { numSteps: 10 }) : opt.init(params, { numSteps: 10 });
        const want = dtypesAndShapes(s);
        expect((s.iteration as tf.Tensor).dtype).toBe('int32');
        for (let i = 0; i < 3; i++) {
          const ns = batched ? opt.updateBatch(s, params) : opt.update(s, params);
          treeDispose(s);
          s = ns;
          expect(dtypesAndShapes(s)).toEqual(want);
        }
        expect(flat(s.iteration)).toEqual(batched ? [3, 3] : [3]);
        treeDispose([s, params]);
      }
    }
  });

  test('RMSProp (optax: g * rsqrt(nu + eps)), with and without momentum', () => {
    const ref = (lr: number, d: number, eps: number, mom: number, nesterov: boolean) => {
      const p = [...p0];
      const nu = [0, 0, 0];
      const tr = [0, 0, 0];
      for (const g of grads)
        for (let i = 0; i < 3; i++) {
          nu[i] = d * nu[i] + (1 - d) * g[i] * g[i];
          const u = (-lr * g[i]) / Math.sqrt(nu[i] + eps);
          tr[i] = u + mom * tr[i];
          p[i] += nesterov ? u + mom * tr[i] : tr[i];
        }
      return p;
    };
    expectClose(run(new RMSProp(0.01)), ref(0.01, 0.9, 1e-8, 0, false), 1e-6);
    expectClose(run(new RMSProp(0.01, { decay: 0.5, epsilon: 0.1, momentum: 0.8 })), ref(0.01, 0.5, 0.1, 0.8, false), 1e-6);
    expectClose(run(new RMSProp(0.01, { momentum: 0.8, nesterov: true })), ref(0.01, 0.9, 1e-8, 0.8, true), 1e-6);
  });

  test('AdamW adds wd * p before the learning rate', () => {
    const p = [...p0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    grads.forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < 3; i++) {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        const u = m[i] / (1 - 0.9 ** t) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8);
        p[i] -= 0.01 * (u + 0.1 * p[i]);
      }
    });
    expectClose(run(new AdamW(0.01, { weightDecay: 0.1 })), p, 1e-6);
  });

  test('GradientClipOptimizer clips elementwise then delegates', () => {
    const want = p0.map((p, i) => p - 0.1 * grads.reduce((a, g) => a + Math.max(-0.25, Math.min(0.25, g[i])), 0));
    expectClose(run(new GradientClipOptimizer(new SGD(0.1), 0.25)), want);
  });

  test('schedules as learning rates', () => {
    const cos = cosineSchedule(1.0, { warmupFraction: 0.1, constantFraction: 0.5 });
    const vals = flat(cos(tf.tensor1d([0, 25, 50, 75, 100, 150]), tf.scalar(100)));
    expectClose(vals, [0, 0.5, 1, 0.5, 0, 0], 1e-6);
    expectClose(flat(linearWarmupSchedule(2, 10)(tf.tensor1d([0, 5, 10, 20]), tf.scalar(0))), [0, 1, 2, 2]);
    expectClose(flat(piecewiseLinearSchedule([10, 20], [1, 3])(tf.tensor1d([0, 10, 15, 20, 30]), tf.scalar(0))), [1, 1, 2, 3, 3]);
    expectClose(flat(exponentialDecaySchedule(1, 10, 0.5)(tf.tensor1d([0, 10, 20]), tf.scalar(0))), [1, 0.5, 0.25]);
    // SGD with a schedule uses the pre-increment count: lrs 0, 0.5, 1 for steps 0..2 of 4 with warm-up 50%
    const sched = cosineSchedule(1.0, { warmupFraction: 0.5, constantFraction: 0.5 });
    const opt = new SGD(sched);
    expect(() => opt.init({ w: tf.tensor1d(p0) })).toThrow(/numSteps/);
    let s = opt.init({ w: tf.tensor1d(p0) }, { numSteps: 4 });
    for (const g of grads) {
      const ns = opt.update(s, { w: tf.tensor1d(g) });
      treeDispose(s);
      s = ns;
    }
    const lrs = [0, 0.5, 1];
    expectClose(flat(named(s.params).w), p0.map((p, i) => p - grads.reduce((a, g, k) => a + lrs[k] * g[i], 0)), 1e-6);
    expect(treeShapes(s.optaxOptState)).toEqual([{}, { count: [], numSteps: [] }]);
    treeDispose(s);
  });

  test('batched (stacked) application equals per-task application, also with per-task hyper-parameters', () => {
    const P = [p0, p0.map((x) => x * 2)];
    const G = [grads[0], grads[1]];
    for (const make of [
      (lr: number | tf.Tensor) => new Adam(lr),
      (lr: number | tf.Tensor) => new SGDM(lr, 0.5),
      (lr: number | tf.Tensor) => new RMSProp(lr, { momentum: 0.3 }),
    ]) {
      const lrs = [0.1, 0.02];
      const single = [0, 1].map((k) => {
        const opt = make(lrs[k]);
        let s = opt.init({ w: tf.tensor1d(P[k]) });
        for (let i = 0; i < 2; i++) s = opt.update(s, { w: tf.tensor1d(G[k]) });
        return flat(named(s.params).w);
      });
      const lrT = tf.tensor1d(lrs);
      const opt = make(lrT);
      let s = opt.initBatch({ w: tf.tensor2d(P) });
      expect(s.iteration.shape).toEqual([2]);
      for (let i = 0; i < 2; i++) s = opt.updateBatch(s, { w: tf.tensor2d(G) });
      expectClose(flat(named(s.params).w), [...single[0], ...single[1]], 1e-6);
      expect(() => opt.update(opt.init({ w: tf.tensor1d(p0) }), { w: tf.tensor1d(p0) })).toThrow(/per-task/);
    }
  });

  test('plugins registered with camelCase schemas', () => {
    const adam = registry.create<Adam>('optimizer', 'Adam', { learningRate: 1e-3, epsilonRoot: 0 });
    expect(adam).toBeInstanceOf(Adam);
    expect(adam.name).toContain('epsroot0');
    expect(registry.parseConfig('optimizer', 'Adam', {})).toEqual({ learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, epsilonRoot: 1e-8 });
    for (const n of ['SGD', 'SGDM', 'Adam', 'AdamW', 'RMSProp', 'GradientClipOptimizer']) expect(registry.has('optimizer', n)).toBe(true);
    expect(() => registry.create('optimizer', 'Adam', { lr: 1 })).toThrow(/lr/);
    const clip = registry.create('optimizer', 'GradientClipOptimizer', { opt: 'SGD', optConfig: { learningRate: 0.1 } });
    expect(clip).toBeInstanceOf(GradientClipOptimizer);
  });

  test('no tensor leak across 100 updates', () => {
    const opt = new GradientClipOptimizer(new Adam(1e-2), 1);
    const s0 = opt.init({ w: tf.tensor1d(p0), v: { u: tf.ones([2, 2]) } });
    const g = { w: tf.tensor1d(grads[0]), v: { u: tf.ones([2, 2]) } };
    const s = expectNoLeakOverUpdates(opt, s0, g);
    treeDispose(s);
    treeDispose(g);
  });
});
