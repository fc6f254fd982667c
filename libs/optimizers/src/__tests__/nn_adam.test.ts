import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeLeaves, treeShapes, treeStack, treeFlatten, treeUnflatten } from '@lopt/core';
import { NNAdam, type NNAdamState } from '../index';
import { expectClose, flat, named, randTensor, rng, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const shapes: Record<string, number[]> = { w: [3, 5], b: [5], s: [], k: [2, 3, 4] };
function params(r: () => number, lead: number[] = [], scale = 1): any {
  return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randTensor(r, [...lead, ...s], scale)]));
}

/** θ = init(key) with a nonzero output layer and LSTM initial state (so the hyper-parameters move). */
function perturbed(lopt: NNAdam, seed: number): any {
  const th: any = lopt.init(random.PRNGKey(seed));
  const H = lopt.lstmHiddenSize;
  const r = rng(100 + seed);
  tf.dispose([th.rnn_to_controls_params.rnn_to_controls.w, th.lstm_init_state.hidden]);
  th.rnn_to_controls_params.rnn_to_controls.w = randTensor(r, [H, 4], 0.8);
  th.lstm_init_state.hidden = randTensor(r, [1, H], 0.5);
  return th;
}

const hparams = ['perLayerLr', 'perLayerBeta1', 'perLayerBeta2', 'perLayerEpsilon'] as const;

describe('NNAdam', () => {
  test('defaults, theta and state shapes, registry', () => {
    const lopt = new NNAdam();
    expect([lopt.outputScale, lopt.initialLearningRate, lopt.initialBeta1, lopt.initialBeta2, lopt.initialEpsilon, lopt.decayStrength, lopt.lstmHiddenSize]).toEqual([
      0.01, 1e-4, 0.9, 0.999, 1e-8, 0, 32,
    ]);
    const theta = lopt.init(random.PRNGKey(0));
    expect(treeShapes(theta)).toEqual({
      lstm_init_state: { hidden: [1, 32], cell: [1, 32] },
      rnn_params: { 'rnn/linear': { w: [51, 128], b: [128] } },
      rnn_to_controls_params: { rnn_to_controls: { w: [32, 4], b: [4] } },
      per_layer_lr: [],
      per_layer_beta1: [],
      per_layer_beta2: [],
      per_layer_epsilon: [],
    });
    const opt = lopt.optFn(theta);
    const p = params(rng(1));
    expect(() => opt.init(p)).toThrow(/numSteps/);
    const s = opt.init(p, { numSteps: 100 }) as NNAdamState;
    const leaves = { w: [], b: [], s: [], k: [] };
    expect(treeShapes(s)).toEqual({
      params: shapes,
      state: null,
      iteration: [],
      rollingFeatures: { m: shapes, rms: shapes, t: [] },
      perLayerLr: leaves,
      perLayerBeta1: leaves,
      perLayerBeta2: leaves,
      perLayerEpsilon: leaves,
      lstmHiddenState: { hidden: [4, 32], cell: [4, 32] },
    });
    expect(s.iteration.dtype).toBe('int32');
    expect(s.rollingFeatures.t.dtype).toBe('int32');
    const sb = opt.initBatch(params(rng(1), [3]), { numSteps: 100 }) as NNAdamState;
    expect(sb.iteration.shape).toEqual([3]);
    expect(named(sb.perLayerLr).w.shape).toEqual([3]);
    expect(sb.lstmHiddenState.hidden.shape).toEqual([3, 4, 32]);
    expect(registry.create('learned_optimizer', 'NNAdam', {})).toBeInstanceOf(NNAdam);
    expect(() => registry.create('learned_optimizer', 'NNAdam', { lstm_hidden_size: 8 })).toThrow();
    expect((registry.create('learned_optimizer', 'NNAdam', { lstmHiddenSize: 8 }) as NNAdam).lstmHiddenSize).toBe(8);
    expect(() => lopt.optFn({} as any)).toThrow(/missing 'lstm_init_state'/);
    tf.dispose([theta, s, sb, p] as any);
  });

  test('quirk: the zero output layer of init leaves the hyper-parameters fixed; the step is lr(1+ε)/(ε+√(rms+1e-10))·m', () => {
    const lopt = new NNAdam();
    const theta: any = lopt.init(random.PRNGKey(0));
    const opt = lopt.optFn(theta);
    const r = rng(3);
    const p0 = params(r);
    const g = params(r);
    let s = opt.init(p0, { numSteps: 10 }) as NNAdamState;
    s = opt.update(s, g) as NNAdamState;
    const thetaKey = { perLayerLr: 'per_layer_lr', perLayerBeta1: 'per_layer_beta1', perLayerBeta2: 'per_layer_beta2', perLayerEpsilon: 'per_layer_epsilon' };
    for (const h of hparams) for (const k of Object.keys(shapes)) expectClose(flat(named(s[h])[k]), flat(theta[thetaKey[h]]), 1e-7, 0);
    const [lr, b1, b2, eps] = [1e-4, 0.9, 0.999, 1e-8].map(Math.fround);
    for (const k of Object.keys(shapes)) {
      const gk = flat(named(g)[k]);
      const want = flat(named(p0)[k]).map((p, i) => {
        const m = (1 - b1) * gk[i];
        const v = (1 - b2) * gk[i] * gk[i];
        return p - ((lr * (1 + eps)) / (eps + Math.sqrt(v + 1e-10))) * m;
      });
      expectClose(flat(named(s.params)[k]), want, 1e-6, 1e-5);
    }
  });

  test('quirk: gradients are clipped to ±1000 before anything else', () => {
    const lopt = new NNAdam({ lstmHiddenSize: 8 });
    const opt = lopt.optFn(perturbed(lopt, 1));
    const p0 = params(rng(4));
    const s0 = opt.init(p0, { numSteps: 10 });
    const g1 = { ...params(rng(5)), s: tf.scalar(1000) };
    const g2 = { ...params(rng(5)), s: tf.scalar(2.5e6) };
    const a = opt.update(s0, g1) as NNAdamState;
    const b = opt.update(s0, g2) as NNAdamState;
    const [la] = treeFlatten<tf.Tensor>(a);
    const [lb] = treeFlatten<tf.Tensor>(b);
    la.forEach((x, i) => expect(flat(lb[i])).toEqual(flat(x)));
  });

  test('hyper-parameters move with a nonzero output layer, stay finite, and decay pulls them back', () => {
    const r = rng(6);
    const p0 = params(r);
    const gs = [params(r), params(r), params(r)];
    const run = (decayStrength: number) => {
      const lopt = new NNAdam({ lstmHiddenSize: 8, outputScale: 0.5, decayStrength });
      const theta = perturbed(lopt, 2);
      const opt = lopt.optFn(theta);
      let s = opt.init(p0, { numSteps: 10 }) as NNAdamState;
      for (const g of gs) s = opt.update(s, g) as NNAdamState;
      for (const leaf of treeLeaves<tf.Tensor>(s)) expect(flat(leaf).every(Number.isFinite)).toBe(true);
      return { s, lr0: flat(theta.per_layer_lr)[0] };
    };
    const free = run(0);
    const pulled = run(0.5);
    expect(flat(free.s.iteration)).toEqual([3]);
    const dist = (x: NNAdamState, lr0: number) => Object.keys(shapes).reduce((a, k) => a + Math.abs(flat(named(x.perLayerLr)[k])[0] - lr0), 0);
    expect(dist(free.s, free.lr0)).toBeGreaterThan(1e-3);
    expect(dist(pulled.s, pulled.lr0)).toBeLessThan(dist(free.s, free.lr0));
  });

  test.each([false, true])('initBatch/updateBatch on 3 stacked tasks equal 3 single-task calls (per-task theta: %p)', (perTask) => {
    const lopt = new NNAdam({ lstmHiddenSize: 8, outputScale: 0.5, decayStrength: 0.1 });
    const thetas = [0, 1, 2].map((i) => perturbed(lopt, perTask ? 10 + i : 10));
    const r = rng(7);
    const ps = [params(r), params(r), params(r)];
    const gs = [0, 1].map(() => [params(r, [], 0.5), params(r, [], 0.5), params(r, [], 0.5)]);
    const singles = [0, 1, 2].map((n) => {
      const opt = lopt.optFn(thetas[n]);
      let s = opt.init(ps[n], { numSteps: 50 });
      for (const g of gs) s = opt.update(s, g[n]);
      return s;
    });
    const opt = lopt.optFn(perTask ? treeStack(thetas) : thetas[0], false, perTask);
    if (perTask) {
      expect(() => opt.init(ps[0], { numSteps: 50 })).toThrow(/stacked/);
      expect(() => opt.update(singles[0], gs[0][0])).toThrow(/stacked/);
    }
    let s = opt.initBatch(treeStack(ps), { numSteps: 50 });
    for (const g of gs) s = opt.updateBatch(s, treeStack(g));
    const [got] = treeFlatten<tf.Tensor>(s);
    const want = treeFlatten<tf.Tensor>(treeStack(singles))[0];
    expect(got.length).toBe(want.length);
    got.forEach((x, i) => {
      expect(x.shape).toEqual(want[i].shape);
      expectClose(flat(x), flat(want[i]), 1e-6, 1e-5);
    });
  });

  test('no tensor leaks across optFn / init / initBatch / update / updateBatch', () => {
    const lopt = new NNAdam({ lstmHiddenSize: 8 });
    const theta = perturbed(lopt, 0);
    const p = params(rng(1));
    const g = params(rng(2));
    const pb = params(rng(1), [3]);
    const gb = params(rng(2), [3]);
    const thetaB = treeStack([theta, theta, theta]);
    const before = tf.memory().numTensors;
    for (const [isVec, th] of [[false, theta], [true, thetaB]] as const) {
      const opt = lopt.optFn(th, true, isVec);
      if (!isVec) {
        let s = opt.init(p, { numSteps: 10 });
        for (let i = 0; i < 5; i++) {
          const ns = opt.update(s, g, { loss: 0.5 });
          treeDispose(s);
          s = ns;
        }
        treeDispose(s);
      }
      let sb = opt.initBatch(pb, { numSteps: 10 });
      for (let i = 0; i < 5; i++) {
        const ns = opt.updateBatch(sb, gb);
        treeDispose(sb);
        sb = ns;
      }
      treeDispose(sb);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each([false, true])('tf.grad of a loss after 2 updateBatch calls w.r.t. θ is finite (thetaIsVector: %p)', (isVec) => {
    const lopt = new NNAdam({ lstmHiddenSize: 8, outputScale: 0.5, decayStrength: 0.1 });
    const theta0 = lopt.init(random.PRNGKey(4)); // the real init: zero output layer
    const theta = isVec ? treeStack([theta0, theta0, theta0]) : theta0;
    const [leaves, def] = treeFlatten<tf.Tensor>(theta);
    const pb = params(rng(8), [3]);
    const gb = [params(rng(9), [3]), params(rng(10), [3])];
    const before = tf.memory().numTensors;
    const lossOf = (...th: tf.Tensor[]) => {
      const opt = lopt.optFn(treeUnflatten(def, th), true, isVec);
      let s = opt.initBatch(pb, { numSteps: 10 });
      for (const g of gb) s = opt.updateBatch(s, g);
      return treeLeaves<tf.Tensor>(s.params)
        .map((x) => tf.sum(tf.square(x)))
        .reduce((a, b) => tf.add(a, b)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(lossOf)(leaves);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(grads.length).toBe(leaves.length);
    let nonzero = 0;
    for (const gr of grads) {
      const v = flat(gr);
      expect(v.every(Number.isFinite)).toBe(true);
      if (v.some((x) => x !== 0)) nonzero++;
    }
    // lr, the β's, ε, the LSTM weights and the (zero) output layer all reach the loss after 2 updates
    expect(nonzero).toBeGreaterThanOrEqual(6);
    tf.dispose([value, ...grads]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test("updateWithMetrics: the reference's summary names and values, and the same state as update", () => {
    const lopt = new NNAdam({ lstmHiddenSize: 8, outputScale: 0.5 });
    const opt = lopt.optFn(perturbed(lopt, 3)) as any;
    const r = rng(11);
    const s0 = opt.init(params(r), { numSteps: 10 }) as NNAdamState;
    const g = params(r);
    const plain = opt.update(s0, g) as NNAdamState;
    const before = tf.memory().numTensors;
    const { state, metrics } = opt.updateWithMetrics(s0, g) as { state: NNAdamState; metrics: Record<string, tf.Tensor> };
    const leaves = Object.keys(shapes).sort(); // jax's leaf order: b, k, s, w
    const want: string[] = [];
    for (const n of ['beta1', 'beta2', 'epsilon', 'lr']) for (const w of ['pre', 'post', 'step']) leaves.forEach((_, i) => want.push(`mean||${n}_${w}/${i}`));
    leaves.forEach((_, i) => want.push(`mean||nn_adam_step/${i}_avg_step_size`));
    expect(Object.keys(metrics).sort()).toEqual(want.sort());
    for (const v of Object.values(metrics)) expect(v.shape).toEqual([]);
    const [a] = treeFlatten<tf.Tensor>(state);
    treeFlatten<tf.Tensor>(plain)[0].forEach((x, i) => expect(flat(a[i])).toEqual(flat(x)));
    tf.tidy(() => leaves.forEach((k, i) => {
      const pre = flat(named(s0.perLayerLr)[k])[0];
      expect(flat(metrics[`mean||lr_pre/${i}`])).toEqual([pre]);
      expectClose(flat(metrics[`mean||lr_post/${i}`]), [Math.exp(10 * pre)], 0, 1e-5);
      // no decay and no clip here: the new value is the old one plus the LSTM's step
      expectClose(flat(named(state.perLayerLr)[k]), [pre + flat(metrics[`mean||lr_step/${i}`])[0]], 1e-6, 0);
      const d = flat(tf.abs(tf.sub(named(s0.params)[k], named(state.params)[k])));
      expectClose(flat(metrics[`mean||nn_adam_step/${i}_avg_step_size`]), [d.reduce((x, y) => x + y, 0) / d.length], 1e-9, 1e-4);
    }));
    tf.dispose([state, metrics] as any);
    expect(tf.memory().numTensors).toBe(before);
  });
});
