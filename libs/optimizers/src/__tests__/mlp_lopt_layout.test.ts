import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { MLPLOpt, MLPLOptOptimizer } from '../mlp_lopt';
import { expectClose, flat, randTensor, rng, useTestBackend } from './helpers';

beforeAll(() => useTestBackend());

describe('MLPLOpt per-task (thetaIsVector) layouts', () => {
  // These are the tf.js paths; the native kernel is compared with them in native.test.ts.
  beforeAll(() => {
    MLPLOptOptimizer.useNative = false;
  });
  afterAll(() => {
    MLPLOptOptimizer.useNative = true;
  });
  afterEach(() => {
    MLPLOptOptimizer.perTaskLayout = 'channels-first';
  });

  test.each([
    ['few parameters (batched matMul path)', 4],
    ['many parameters (per-task fused matMul path)', 40],
  ])('%s: channels-first and rows give the same update up to float rounding, flat tensor count', (_name, rows) => {
    const N = 3;
    const r = rng(7);
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0));
    // per-task θ: θ + small per-task noise
    const thetaV = Object.fromEntries(
      Object.entries(theta as Record<string, { w: tf.Tensor; b: tf.Tensor }>).map(([k, l]) => [
        k,
        { w: tf.add(tf.stack(new Array(N).fill(l.w)), randTensor(r, [N, ...l.w.shape], 0.05)), b: randTensor(r, [N, ...l.b.shape], 0.05) },
      ]),
    );
    const params = { a: { b: randTensor(r, [N, 5]), w: randTensor(r, [N, rows, 5]) }, c: randTensor(r, [N, 7]) };
    const grad = { a: { b: randTensor(r, [N, 5]), w: randTensor(r, [N, rows, 5]) }, c: randTensor(r, [N, 7]) };
    const opt = lopt.optFn(thetaV, true, true);
    let s = opt.initBatch(params);
    for (let i = 0; i < 3; i++) s = opt.updateBatch(s, grad); // nonzero momenta and iteration
    MLPLOptOptimizer.perTaskLayout = 'rows';
    const a = opt.updateBatch(s, grad);
    MLPLOptOptimizer.perTaskLayout = 'channels-first';
    const before = tf.memory().numTensors;
    const b = opt.updateBatch(s, grad);
    const pa = treeLeaves<tf.Tensor>(a.params);
    const pb = treeLeaves<tf.Tensor>(b.params);
    pa.forEach((x, i) => expectClose(flat(pb[i]), flat(x), 1e-6, 1e-5));
    // on wasm the few-parameter path updates momenta in float64 on the host: equal up to rounding
    treeLeaves<tf.Tensor>(a.rollingFeatures.m).forEach((x, i) => expectClose(flat(treeLeaves<tf.Tensor>(b.rollingFeatures.m)[i]), flat(x), 1e-6, 1e-5));
    expect(flat(b.iteration)).toEqual(flat(a.iteration));
    const leaves = treeLeaves<tf.Tensor>(b).filter((l) => l instanceof tf.Tensor).length;
    expect(tf.memory().numTensors - before).toBe(leaves);
  });
});
