import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeStack } from '@lopt/core';
import { Adam, MLPLOpt, RMSProp } from '../index';
import { expectClose, flat, randTensor, rng, named } from './helpers';
import { refMLPLOptLeafUpdate } from './mlp_lopt_ref';

beforeAll(async () => {
  require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('optimizers on the wasm backend', () => {
  test('backend is wasm', () => {
    expect(tf.getBackend()).toBe('wasm');
  });

  test('Adam and RMSProp steps match hand-computed values', () => {
    const p0 = [0.5, -1, 2];
    const g = [0.1, -0.2, 0.3];
    const adam = new Adam(0.1, { epsilonRoot: 0.01 });
    let s = adam.init({ w: tf.tensor1d(p0) });
    s = adam.update(s, { w: tf.tensor1d(g) });
    s = adam.update(s, { w: tf.tensor1d(g) });
    // with a constant gradient, m̂ = g and v̂ = g² at every step
    expectClose(flat(named(s.params).w), p0.map((p, i) => p - 2 * (0.1 * g[i]) / (Math.sqrt(g[i] * g[i] + 0.01) + 1e-8)), 1e-6);
    const rms = new RMSProp(0.01, { decay: 0.5 });
    let r = rms.init({ w: tf.tensor1d(p0) });
    r = rms.update(r, { w: tf.tensor1d(g) });
    expectClose(flat(named(r.params).w), p0.map((p, i) => p - (0.01 * g[i]) / Math.sqrt(0.5 * g[i] * g[i] + 1e-8)), 1e-6);
  });

  test('MLPLOpt update equals the float64 forward pass; stacked per-task theta equals per-task updates', () => {
    const lopt = new MLPLOpt({ expMult: 0.1, stepMult: 0.01 });
    const mkTheta = (seed: number) => {
      const t: any = lopt.init(random.PRNGKey(seed));
      for (const k of Object.keys(t)) t[k].b = randTensor(rng(seed + 50), t[k].b.shape, 0.3);
      return t;
    };
    const thetas = [mkTheta(1), mkTheta(2)];
    const r = rng(9);
    const mk = () => ({
      state: { params: { a: randTensor(r, [4, 6]) }, rollingFeatures: { m: { a: randTensor(r, [4, 6, 6], 0.2) }, t: tf.fill([6], 12, 'int32') }, iteration: tf.scalar(12, 'int32'), state: null },
      grad: { a: randTensor(r, [4, 6], 0.5) },
    });
    const cases = [mk(), mk()];
    const singles = cases.map((c, n) => lopt.optFn(thetas[n]).update(c.state, c.grad));
    const layers = thetas[0];
    const ref = refMLPLOptLeafUpdate(
      flat(cases[0].state.params.a),
      flat(cases[0].grad.a),
      flat(cases[0].state.rollingFeatures.m.a),
      12,
      ['mlp/~/linear_0', 'mlp/~/linear_1', 'mlp/~/linear_2'].map((k) => ({ w: layers[k].w.arraySync(), b: flat(layers[k].b) })),
      0.1,
      0.01,
    );
    const p = flat(cases[0].state.params.a);
    const step = flat(named(singles[0].params).a).map((x, i) => p[i] - x);
    expectClose(step, ref.step, 2e-4 * Math.max(...ref.step.map(Math.abs)) + 2e-7, 1e-4);
    const stacked = {
      params: treeStack(cases.map((c) => c.state.params)),
      rollingFeatures: { m: treeStack(cases.map((c) => c.state.rollingFeatures.m)), t: tf.stack(cases.map((c) => c.state.rollingFeatures.t)) },
      iteration: tf.stack(cases.map((c) => c.state.iteration)),
      state: null,
    };
    const out = lopt.optFn(treeStack(thetas), false, true).updateBatch(stacked, treeStack(cases.map((c) => c.grad)));
    expectClose(flat(named(out.params).a), [...flat(named(singles[0].params).a), ...flat(named(singles[1].params).a)], 1e-6, 1e-6);
  });
  // The wasm implementations of the MLPLOptUpdate kernel (native, host, blocks) are compared with
  // the readable tf.js ops in mlp_lopt_kernels.test.ts.
  test('asTfjsOptimizer(MLPLOpt) steps a Dense model: the variables get buffers of their own shape (fused matMul bias)', async () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(1));
    const opt = lopt.asTfjsOptimizer(theta);
    const model = tf.sequential({ name: 'wasm_adapter_model' });
    model.add(tf.layers.dense({ units: 3, inputShape: [2] }));
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const xs = tf.ones([4, 2]);
    const ys = tf.zeros([4, 3]);
    // before the fix the second step threw '_FusedMatMul only supports rank-1 bias but got rank 2'
    const h = await model.fit(xs, ys, { epochs: 3, batchSize: 4, verbose: 0 });
    expect(h.history.loss).toHaveLength(3);
    tf.dispose([xs, ys]);
    model.dispose();
    opt.dispose();
    treeDispose(theta);
  });
});
