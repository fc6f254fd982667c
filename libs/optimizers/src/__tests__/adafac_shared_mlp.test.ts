/**
 * AdafacMLPLOpt and AdafacNominal with one shared θ run their MLP input by input
 * (`adafacMLPOutputs`: no [N, P, features] array, the Adafactor row / column features at their
 * factored size); with per-task θ (thetaIsVector) on the concatenated, normalised features
 * (`adafacFeatureArray` + `applyPerParamMLP`). The two must be the same function of θ: the
 * same updated parameters and the same meta-gradient, here through two updates of stacked tasks
 * whose leaves are factored (2-D, 3-D) and not (vector, scalar), taken under a gradient tape as the
 * gradient estimators take it.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeFlatten, treeMap, treeStack, treeUnflatten, type PyTree } from '@lopt/core';
import { AdafacMLPLOpt, AdafacNominal, type LearnedOptimizer } from '../index';
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
