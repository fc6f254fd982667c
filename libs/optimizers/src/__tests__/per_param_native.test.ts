/**
 * The native `PerParamMLP` kernel (per_param_native.ts, native/per_param_mlp.c) equals the readable
 * tf.js form it replaces, on the cpu and wasm backends, in every instruction-set variant built:
 *
 * - AdafacMLPLOpt / AdafacNominal's features (`adafacNativeLeaf`) against `perParamFirstLayer` +
 *   `perParamOutputs` on the same leaf's tf.js inputs, shared and per-task weights, two hidden
 *   layers and none, on factored (2-D, 3-D) and diagonal (vector, scalar) leaves whose sizes are not
 *   multiples of the kernel's 64-element blocks, some over one block; and the update the kernel
 *   applies itself (AdafacMLPLOpt's step) against the same with the tf.js ops;
 * - HyperV2's whole update (its own feature list: the clipped gradient, `v^-1/2` without epsilon,
 *   broadcast decays; and the LSTM's per-tensor statistics, `tensorStatsNative`) with the kernels
 *   against the same update under a gradient tape, where the tf.js forms run.
 *
 * Skipped where the addon is not built (LOPT_NATIVE=off or no compiler): nothing to compare.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { random, treeFlatten, treeStack, useNativeVariant, nativeVariantArg, type PyTree } from '@lopt/core';
import { AdafacMLPLOpt, AdafacNominal, HyperV2, type Linear, type Optimizer } from '../index';
import { adafacFeatures, adafacInitState, adafacNativeLeaf } from '../adafac_features';
import { mlpLoptNative } from '../native';
import { perParamFirstLayer, perParamOutputs } from '../per_param_mlp';
import { perParamMLPNative, perParamNativeUsable } from '../per_param_native';
import { expectClose, flat, randTensor, rng } from './helpers';

const N = 3;
const SHAPES: Record<string, number[]> = { w: [13, 9], k: [3, 5, 7], b: [70], s: [] };
const tree = (r: () => number, scale: number): PyTree =>
  Object.fromEntries(Object.entries(SHAPES).map(([k, s]) => [k, tf.mul(randTensor(r, [N, ...s]), scale)]));

const addon = mlpLoptNative();
const variants = addon?.kernelVariants() ?? [];
const maybe = addon ? describe : describe.skip;

/** Runs `fn` once per instruction-set variant. */
function eachVariant(fn: (v: string) => void): void {
  const before = nativeVariantArg();
  try {
    for (const v of variants) {
      useNativeVariant(v);
      fn(v);
    }
  } finally {
    useNativeVariant(before);
  }
}

let spied: jest.SpyInstance[] = [];
/** Counts the addon's calls of `fn` (until the end of the test). */
function spy(fn: 'perParamMLP' | 'tensorStats'): jest.SpyInstance {
  const s = jest.spyOn(addon!, fn);
  spied.push(s);
  return s;
}
afterEach(() => {
  spied.forEach((s) => s.mockRestore());
  spied = [];
});

maybe.each(['cpu', 'wasm'])('%s backend', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    await tf.ready();
  });

  test.each([
    ['shared θ, 2 hidden layers of 5, outputs 3 and 1', false, 2, [3, 1]],
    ['per-task θ, 2 hidden layers of 5, all outputs', true, 2, [0, 1, 2, 3]],
    ['per-task θ, no hidden layer, outputs 1 and 0', true, 0, [1, 0]],
    ['shared θ, no hidden layer, output 2', false, 0, [2]],
  ] as Array<[string, boolean, number, number[]]>)('Adafac features, %s', (_, perTask, hiddenLayers, outputs) => {
    expect(perParamNativeUsable()).toBe(true);
    // km = 3, kr = 1, kf = 1: the RMS and the Adafactor factors broadcast over the momenta
    const lopt = new AdafacNominal({ hiddenSize: 5, hiddenLayers, initialAdafactorDecays: [0.95] });
    const theta: any = lopt.init(random.PRNGKey(1));
    const r = rng(21);
    let state = adafacInitState(lopt.config, tree(r, 0.5), { numSteps: 30 }, true, 'test');
    for (let i = 0; i < 2; i++) state = { ...adafacFeatures(lopt.config, theta, state, tree(r, 0.1)).next, iteration: tf.fill([N], 4 + i, 'int32') };
    const { leaves } = adafacFeatures(lopt.config, theta, state, tree(r, 0.1));
    const sizes = lopt.layerSizes();
    const F = sizes[0] - 11;
    const lead = perTask ? [N] : [];
    const layers: Linear[] = sizes.slice(0, -1).map((fanIn, i) => ({
      w: randTensor(r, [...lead, i === 0 ? F : fanIn, sizes[i + 1]], 1 / Math.sqrt(fanIn)),
      b: randTensor(r, [...lead, sizes[i + 1]], 0.3),
    }));
    const b0 = randTensor(r, [N, sizes[1]], 0.3); // the bias with the time features' term, per task
    for (const leaf of leaves) {
      const want = perParamOutputs(perParamFirstLayer(leaf.inputs, layers[0].w, b0, leaf.p.shape), layers, outputs, perTask);
      eachVariant((v) => {
        const got = perParamMLPNative(adafacNativeLeaf(leaf), layers[0].w, b0, layers, outputs, perTask);
        expect(got).not.toBeNull();
        got!.forEach((t, j) => {
          expect(t.shape).toEqual([N, leaf.S]);
          const w = flat(want[j]);
          const scale = Math.max(...w.map(Math.abs));
          expect(scale).toBeGreaterThan(1e-2); // not trivially 0
          try {
            expectClose(flat(t), w, 2e-5 * scale, 1e-4);
          } catch (e) {
            throw new Error(`${v}, leaf [${leaf.p.shape}], output ${outputs[j]}: ${(e as Error).message}`);
          }
        });
        tf.dispose(got!);
      });
      tf.dispose(want);
    }
  });

  test.each([
    ['defaults (small LSTM)', {}],
    ['one momentum decay, two RMS decays, 7 hidden, no clipped-gradient feature', { ffHiddenSize: 7, initialMomentumDecays: [0.9], initialRmsDecays: [0.99, 0.999], withGradClipFeat: false }],
    // (preconditionOutput: the kernel returns the MLP's outputs and tf.js applies the step)
    ['no hidden layer, no Adafactor momentum feature, preconditioned output', { ffHiddenLayers: 0, withFacMomMult: false, preconditionOutput: true }],
  ] as Array<[string, object]>)('HyperV2 update, %s: kernels = the tf.js form under a gradient tape', (_, opts) => {
    // steps of ~0.1 (stepMult 0.1, not 0.001): p' − p then holds the step to ~1e-6, not ~1e-3
    const lopt = new HyperV2({ lstmHiddenSize: 8, paramInits: 4, stepMult: 0.1, ...opts });
    expectUpdateAsTaped(lopt.optFn(lopt.init(random.PRNGKey(2)), false, false), true);
  });

  test.each([false, true])('AdafacMLPLOpt update (per-task θ: %p), the step in the kernel: = the tf.js form under a gradient tape', (perTask) => {
    const lopt = new AdafacMLPLOpt({ stepMult: 0.1 });
    const one = lopt.init(random.PRNGKey(3));
    const theta = perTask ? treeStack([one, lopt.init(random.PRNGKey(4)), lopt.init(random.PRNGKey(5))]) : one;
    expectUpdateAsTaped(lopt.optFn(theta, false, perTask), false);
  });
});

/**
 * A batched update of `opt` with the native kernels (every variant) equals the same update under a
 * gradient tape, where the tf.js form runs; the kernels run once per leaf (and HyperV2's per-tensor
 * statistics with `stats`), and not under the tape.
 */
function expectUpdateAsTaped(opt: Optimizer, stats: boolean): void {
  const r = rng(5);
  let state = opt.initBatch(tree(r, 0.5), { numSteps: 50 });
  // a few steps first: nonzero accumulators and LSTM state
  // gradients uniform in ±0.3: HyperV2's clipped-gradient feature (±0.1) clips some
  for (let i = 0; i < 2; i++) state = opt.updateBatch(state, tree(r, 0.3), { loss: tf.fill([N], 0.5 - 0.1 * i) });
  const grad = tree(r, 0.3);
  const loss = tf.fill([N], 0.3);
  // the tf.js form: the same update with a gradient tape recording (the kernels do not run there)
  let taped: tf.Tensor[] = [];
  const x = tf.scalar(1);
  const calls = spy('perParamMLP');
  const statsCalls = spy('tensorStats');
  tf.valueAndGrads(() => {
    const out = opt.updateBatch(state, grad, { loss });
    taped = treeFlatten<tf.Tensor>(out.params as PyTree)[0].map((t) => tf.keep(tf.clone(t)));
    return tf.mul(x, tf.sum(taped[0]));
  })([x]);
  expect(calls).not.toHaveBeenCalled();
  expect(statsCalls).not.toHaveBeenCalled();
  const p0 = treeFlatten<tf.Tensor>(state.params as PyTree)[0];
  eachVariant((v) => {
    calls.mockClear();
    statsCalls.mockClear();
    const got = treeFlatten<tf.Tensor>(opt.updateBatch(state, grad, { loss }).params as PyTree)[0];
    // once per leaf each: the MLP (and its step), HyperV2's per-tensor LSTM statistics
    expect(calls).toHaveBeenCalledTimes(got.length);
    expect(statsCalls).toHaveBeenCalledTimes(stats ? got.length : 0);
    got.forEach((t, i) => {
      const before = flat(p0[i]);
      const step = flat(t).map((y, e) => before[e] - y);
      const stepWant = flat(taped[i]).map((y, e) => before[e] - y);
      const scale = Math.max(...stepWant.map(Math.abs));
      expect(scale).toBeGreaterThan(1e-6);
      try {
        expectClose(step, stepWant, 2e-5 * scale + 2.4e-7 * Math.max(...before.map(Math.abs)), 1e-4);
      } catch (e) {
        throw new Error(`${v}, leaf ${i} [${t.shape}]: ${(e as Error).message}`);
      }
    });
  });
}

