import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeLeaves, treeShapes, treeSize, treeStack, treeMap } from '@lopt/core';
import { MLPLOpt, MLPLOptOptimizer, MLPLOptState, mlpLoptUpdateOps, treeExpand } from '../index';
import { expectClose, flat, randTensor, rng, useTestBackend, named } from './helpers';
import { refMLPLOptLeafUpdate, RefLayer } from './mlp_lopt_ref';

beforeAll(useTestBackend);

const LAYERS = ['mlp/~/linear_0', 'mlp/~/linear_1', 'mlp/~/linear_2'];

function thetaWithBiases(lopt: MLPLOpt, seed: number): any {
  const theta: any = lopt.init(random.PRNGKey(seed));
  const r = rng(seed + 100);
  for (const k of LAYERS) {
    const b = theta[k].b;
    theta[k].b = randTensor(r, b.shape, 0.3);
    b.dispose();
  }
  return theta;
}

function refLayers(theta: any): RefLayer[] {
  return LAYERS.map((k) => ({ w: theta[k].w.arraySync() as number[][], b: flat(theta[k].b) }));
}

const SHAPES: Record<string, number[]> = { a: [3, 4], b: [5], c: [] };

function makeState(r: () => number, iteration: number): { state: MLPLOptState; grad: any } {
  const params: any = {};
  const grad: any = {};
  const m: any = {};
  for (const [k, s] of Object.entries(SHAPES)) {
    params[k] = randTensor(r, s, 1);
    grad[k] = randTensor(r, s, 0.5);
    m[k] = randTensor(r, [...s, 6], 0.2);
  }
  return {
    state: { params, rollingFeatures: { m, t: tf.fill([6], iteration, 'int32') }, iteration: tf.scalar(iteration, 'int32'), state: null },
    grad,
  };
}

// The optimizer runs the MLPLOptUpdate kernel registered for the backend where there is one (the
// native kernel where it is built; mlp_lopt_kernels.test.ts compares every implementation with
// the readable tf.js ops) and the readable ops otherwise; LOPT_NATIVE=off runs these tests without it.
describe('MLPLOpt', () => {
  test('theta shapes, 1762 values, Haiku init scale, name null, plugin', () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0));
    expect(treeShapes(theta)).toEqual({
      'mlp/~/linear_0': { w: [19, 32], b: [32] },
      'mlp/~/linear_1': { w: [32, 32], b: [32] },
      'mlp/~/linear_2': { w: [32, 2], b: [2] },
    });
    expect(treeSize(theta)).toBe(1762);
    expect(lopt.name).toBeNull();
    const w0 = flat((theta as any)['mlp/~/linear_0'].w);
    expect(Math.max(...w0.map(Math.abs))).toBeLessThanOrEqual(2 / Math.sqrt(19) + 1e-6);
    const std = Math.sqrt(w0.reduce((a, x) => a + x * x, 0) / w0.length) * Math.sqrt(19);
    expect(std).toBeGreaterThan(0.8);
    expect(std).toBeLessThan(0.96); // ≈ 0.88 (truncated, not variance-corrected)
    expect(flat((theta as any)['mlp/~/linear_2'].b)).toEqual([0, 0]);
    treeDispose(theta);
    expect(registry.create('learned_optimizer', 'MLPLOpt', { hiddenSize: 8 })).toBeInstanceOf(MLPLOpt);
  });

  test('state shapes: single and batched', () => {
    const opt = new MLPLOpt().optFn(new MLPLOpt().init(random.PRNGKey(1)));
    const s = opt.init({ a: tf.zeros([3, 4]), c: tf.scalar(1) }, { numSteps: 10 });
    expect(treeShapes(s)).toEqual({
      params: { a: [3, 4], c: [] },
      rollingFeatures: { m: { a: [3, 4, 6], c: [6] }, t: [6] },
      iteration: [],
      state: null,
    });
    expect(s.rollingFeatures.t.dtype).toBe('int32');
    const sb = opt.initBatch({ a: tf.zeros([5, 3, 4]), c: tf.zeros([5]) });
    expect(treeShapes(sb)).toEqual({
      params: { a: [5, 3, 4], c: [5] },
      rollingFeatures: { m: { a: [5, 3, 4, 6], c: [5, 6] }, t: [5, 6] },
      iteration: [5],
      state: null,
    });
    const nb = opt.updateBatch(sb, { a: tf.ones([5, 3, 4]), c: tf.ones([5]) });
    expect(treeShapes(nb)).toEqual(treeShapes(sb));
    expect(flat(nb.iteration)).toEqual([1, 1, 1, 1, 1]);
    expect(flat(nb.rollingFeatures.t)).toEqual(new Array(30).fill(1));
  });

  test.each([
    [0.001, 0.001],
    [0.1, 0.01],
  ])('one update equals a float64 hand forward pass (expMult %p, stepMult %p, iteration 37)', (expMult, stepMult) => {
    const lopt = new MLPLOpt({ expMult, stepMult });
    const theta = thetaWithBiases(lopt, 3);
    const { state, grad } = makeState(rng(7), 37);
    const opt = lopt.optFn(theta) as MLPLOptOptimizer;
    const out = opt.update(state, grad, { loss: 1 });
    // the readable tf.js ops themselves, on the same update as one stacked task
    const batched = { ...state, params: treeExpand(state.params), rollingFeatures: { m: treeExpand(state.rollingFeatures.m), t: state.rollingFeatures.t }, iteration: tf.reshape(state.iteration, [1]) };
    const { inputs, attrs } = opt.kernelArgs(batched, treeExpand(grad));
    const ops = mlpLoptUpdateOps(inputs, attrs);
    Object.keys(SHAPES).forEach((k, i) => {
      const ref = refMLPLOptLeafUpdate(flat(named(state.params)[k]), flat(grad[k]), flat(named(state.rollingFeatures.m)[k]), 37, refLayers(theta), expMult, stepMult);
      const p = flat(named(state.params)[k]);
      const scale = Math.max(...ref.step.map(Math.abs));
      for (const [newP, newM] of [
        [named(out.params)[k], named(out.rollingFeatures.m)[k]],
        [ops[i], ops[attrs.numLeaves + i]],
      ]) {
        expectClose(
          flat(newP).map((x, e) => p[e] - x),
          ref.step,
          2e-4 * scale + 2e-7,
          1e-4,
        );
        expectClose(flat(newM), ref.m, 1e-7, 1e-6);
      }
      expect(named(out.params)[k].shape).toEqual(SHAPES[k]);
    });
    expect(flat(out.iteration)).toEqual([38]);
    expect(flat(out.rollingFeatures.t)).toEqual(new Array(6).fill(38));
  });

  function stackStates(states: MLPLOptState[]): MLPLOptState {
    return {
      params: treeStack(states.map((s) => s.params)),
      rollingFeatures: { m: treeStack(states.map((s) => s.rollingFeatures.m)), t: tf.stack(states.map((s) => s.rollingFeatures.t)) },
      iteration: tf.stack(states.map((s) => s.iteration)),
      state: null,
    };
  }

  test.each([false, true])('stacked application equals per-task applications (per-task theta: %p)', (perTask) => {
    const lopt = new MLPLOpt({ expMult: 0.1, stepMult: 0.01 });
    const N = 3;
    const r = rng(11);
    const thetas = [0, 1, 2].map((i) => thetaWithBiases(lopt, perTask ? 20 + i : 20));
    const made = [0, 1, 2].map((i) => makeState(r, [0, 5, 1234][i]));
    const singles = made.map((x, i) => lopt.optFn(thetas[i]).update(x.state, x.grad));
    const batchedState = stackStates(made.map((x) => x.state));
    const batchedGrad = treeStack(made.map((x) => x.grad));
    const theta = perTask ? treeStack(thetas) : thetas[0];
    const out = lopt.optFn(theta, false, perTask).updateBatch(batchedState, batchedGrad);
    for (let n = 0; n < N; n++) {
      for (const k of Object.keys(SHAPES)) {
        const got = flat(named(out.params)[k]).slice(n * Math.max(1, named(singles[n].params)[k].size), (n + 1) * Math.max(1, named(singles[n].params)[k].size));
        expectClose(got, flat(named(singles[n].params)[k]), 1e-6, 1e-6);
      }
      expectClose(flat(named(out.rollingFeatures.m).a).slice(n * 72, (n + 1) * 72), flat(singles[n].rollingFeatures.m.a), 1e-7);
    }
    expect(flat(out.iteration)).toEqual([1, 6, 1235]);
    if (perTask) expect(() => lopt.optFn(theta, false, true).update(made[0].state, made[0].grad)).toThrow(/updateBatch/);
  });

  test('no tensor leak across 100 updates (single and batched, per-task theta)', () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0));
    const opt = lopt.optFn(theta);
    let s = opt.init({ a: tf.ones([4, 3]), c: tf.scalar(0.5) });
    const g = { a: tf.ones([4, 3]), c: tf.scalar(0.1) };
    const thetaV = treeMap((x: tf.Tensor) => tf.stack([x, x]), theta);
    const optV = lopt.optFn(thetaV, false, true);
    let sb = optV.initBatch({ a: tf.ones([2, 4, 3]), c: tf.ones([2]) });
    const gb = { a: tf.ones([2, 4, 3]), c: tf.ones([2]) };
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const ns = opt.update(s, g);
      treeDispose(s);
      s = ns;
      const nsb = optV.updateBatch(sb, gb);
      treeDispose(sb);
      sb = nsb;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(treeLeaves<tf.Tensor>(s.params).every((x) => Number.isFinite(x.dataSync()[0]))).toBe(true);
  });
});
