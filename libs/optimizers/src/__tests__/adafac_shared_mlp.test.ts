/**
 * AdafacMLPLOpt and AdafacNominal run their MLP input by input (`adafacMLPOutputs`: no
 * [N, P, features] array, the second-moment normalisation folded into the first layer's weights,
 * the Adafactor row / column features multiplied at their factored size). Checked here against
 * the readable form, the MLP on the concatenated normalised features (`adafacFeatureArray` +
 * `applyPerParamMLP`), in value and gradient, with shared and per-task weights; and, through two
 * whole updates under a gradient tape (as the gradient estimators take them), shared θ against
 * the same θ given per task. The leaves are factored (2-D, 3-D) and not (vector, scalar).
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeFlatten, treeMap, treeStack, treeUnflatten, type PyTree } from '@lopt/core';
import { AdafacMLPLOpt, AdafacNominal, applyPerParamMLP, type LearnedOptimizer, type Linear } from '../index';
import { adafacFeatureArray, adafacFeatures, adafacInitState, adafacMLPOutputs } from '../adafac_features';
import { expectClose, flat, randTensor, rng, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const N = 2;
const shapes: Record<string, number[]> = { w: [6, 4], k: [2, 3, 5], b: [4], s: [] };
const tree = (r: () => number, scale: number): PyTree =>
  Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.mul(randTensor(r, [N, ...s]), scale)]));

const LOPTS: Array<[string, () => LearnedOptimizer]> = [
  ['AdafacMLPLOpt', () => new AdafacMLPLOpt()],
  // every output used: the nominal and regularisation controllers on, a nominal step and weight decay
  ['AdafacNominal (both controllers)', () => new AdafacNominal({ nominalController: true, regularizationController: true, nominalStepsize: 0.01, weightDecay: 0.01 })],
  ['AdafacNominal (one hidden layer of 8)', () => new AdafacNominal({ hiddenSize: 8, hiddenLayers: 1 })],
];

describe.each(LOPTS)('%s: shared θ (input by input) = per-task θ (concatenated features)', (_, make) => {
  test('updated parameters and meta-gradient', () => {
    const lopt = make();
    const theta: any = lopt.init(random.PRNGKey(3));
    // nonzero biases and decay offsets, so every weight matters
    const r = rng(7);
    const [leaves, def] = treeFlatten<tf.Tensor>(theta);
    const thetaLeaves = leaves.map((t) => tf.add(t, tf.mul(randTensor(r, t.shape), 0.1)));
    const params = tree(r, 0.5);
    const grads = [tree(r, 0.1), tree(r, 0.1)];
    const probe = tree(r, 1); // the loss: Σ probe · params after two updates
    const lossOf = (opt: ReturnType<LearnedOptimizer['optFn']>): tf.Scalar => {
      let s = opt.initBatch(params, { numSteps: 20 });
      for (const g of grads) s = opt.updateBatch(s, g, { loss: tf.fill([N], 0.5) });
      const [ps] = treeFlatten<tf.Tensor>(s.params as PyTree);
      const [qs] = treeFlatten<tf.Tensor>(probe);
      return tf.addN(ps.map((p, i) => tf.sum(tf.mul(p, qs[i])))) as tf.Scalar;
    };
    const shared = tf.valueAndGrads((...ts: tf.Tensor[]) => lossOf(lopt.optFn(treeUnflatten(def, ts), false, false)))(thetaLeaves);
    // the same θ for every task, as per-task θ: its gradient summed over the tasks is the shared one
    const perTask = tf.valueAndGrads((...ts: tf.Tensor[]) => lossOf(lopt.optFn(treeUnflatten(def, ts.map((t) => treeStack([t, t]) as tf.Tensor)), false, true)))(thetaLeaves);
    expectClose(flat(shared.value), flat(perTask.value), 1e-6, 1e-5);
    expect(shared.grads.length).toBe(thetaLeaves.length);
    shared.grads.forEach((g, i) => {
      expect(g.shape).toEqual(thetaLeaves[i].shape);
      expectClose(flat(g), flat(perTask.grads[i]), 1e-5, 1e-3);
    });
    // a meta-gradient with some weight: not all zeros
    expect(Math.max(...shared.grads.flatMap((g) => flat(g).map(Math.abs)))).toBeGreaterThan(1e-4);
    tf.dispose([shared.value, perTask.value, ...shared.grads, ...perTask.grads, ...thetaLeaves]);
    treeMap((t: tf.Tensor) => t.dispose(), { params, grads, probe, theta });
  });
});

describe.each([false, true])('adafacMLPOutputs = the MLP on the concatenated features (per-task weights: %p)', (perTask) => {
  test.each([
    ['2 hidden layers, all 4 outputs', 2, [0, 1, 2, 3]],
    ['2 hidden layers, outputs 3 and 1', 2, [3, 1]],
    ['no hidden layer', 0, [1, 0]],
  ] as Array<[string, number, number[]]>)('%s: values and gradients', (_, hiddenLayers, outputs) => {
    const lopt = new AdafacNominal({ hiddenLayers });
    const theta: any = lopt.init(random.PRNGKey(1));
    const r = rng(11);
    let state = adafacInitState(lopt.config, tree(r, 0.5), { numSteps: 30 }, true, 'test');
    state = { ...adafacFeatures(lopt.config, theta, state, tree(r, 0.1)).next, iteration: tf.fill([N], 4, 'int32') };
    const { time, leaves } = adafacFeatures(lopt.config, theta, state, tree(r, 0.1));
    const sizes = lopt.layerSizes();
    const ws = sizes.slice(0, -1).flatMap((fanIn, i) => [randTensor(r, [...(perTask ? [N] : []), fanIn, sizes[i + 1]]), tf.mul(randTensor(r, [...(perTask ? [N] : []), sizes[i + 1]]), 0.3)]);
    const layersOf = (ts: tf.Tensor[]): Linear[] => ts.filter((_, i) => i % 2 === 0).map((w, i) => ({ w, b: ts[2 * i + 1] }));
    const probes = leaves.map((l) => outputs.map(() => randTensor(r, [N, l.S])));
    const loss = (outs: tf.Tensor[][]) => tf.addN(outs.flatMap((o, i) => o.map((t, j) => tf.sum(tf.mul(t, probes[i][j]))))) as tf.Scalar;
    const actual = tf.valueAndGrads((...ts: tf.Tensor[]) => loss(adafacMLPOutputs(leaves, time, layersOf(ts), outputs, perTask)))(ws);
    const readable = (ts: tf.Tensor[]): tf.Tensor[][] => {
      const x = tf.concat(leaves.map(adafacFeatureArray), 1);
      const out = applyPerParamMLP(x, time, layersOf(ts), perTask); // [N, P, 4]
      const perLeaf = tf.split(out, leaves.map((l) => l.S), 1);
      return perLeaf.map((o) => outputs.map((j) => tf.reshape(tf.slice(o, [0, 0, j], [N, o.shape[1] as number, 1]), [N, o.shape[1] as number])));
    };
    const want = tf.valueAndGrads((...ts: tf.Tensor[]) => loss(readable(ts)))(ws);
    // the outputs themselves, leaf by leaf
    const got = adafacMLPOutputs(leaves, time, layersOf(ws), outputs, perTask);
    const exp = readable(ws);
    got.forEach((o, i) => o.forEach((t, j) => expectClose(flat(t), flat(exp[i][j]), 1e-5, 1e-4)));
    expectClose(flat(actual.value), flat(want.value), 1e-4, 1e-5);
    actual.grads.forEach((g, i) => expectClose(flat(g), flat(want.grads[i]), 1e-4, 1e-4));
    expect(Math.max(...actual.grads.flatMap((g) => flat(g).map(Math.abs)))).toBeGreaterThan(1e-3);
  });
});
