/**
 * NNAdam under every estimator on a small quadratic family: finite gradient estimates. Its θ has
 * leaves that a truncation starting mid-trajectory never reaches (the LSTM's initial state, and
 * the initial hyper-parameters when decayStrength is 0): TruncatedGrad gives them a zero
 * gradient, as jax.grad does, where tf.valueAndGrads would throw.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, treeDispose, treeLeavesWithPath } from '@lopt/core';
import { FixedDimQuadraticFamily } from '@lopt/tasks';
import { NNAdam } from '@lopt/optimizers';
import { ConstantTruncationSchedule, FullES, FullGrad, NeverEndingTruncationSchedule, TruncatedES, TruncatedGrad, TruncatedPES, VectorizedLOptTruncatedStep } from '../index';

const cases: [string, (s: VectorizedLOptTruncatedStep) => any, boolean][] = [
  ['TruncatedPES', (s) => new TruncatedPES(s, { truncLength: 3, stepsPerJit: 1 }), false],
  ['TruncatedES', (s) => new TruncatedES(s, { unrollLength: 3, stepsPerJit: 1 }), false],
  ['TruncatedGrad', (s) => new TruncatedGrad(s, { unrollLength: 3, stepsPerJit: 1 }), false],
  ['FullGrad', (s) => new FullGrad(s, new ConstantTruncationSchedule(3)), true],
  ['FullES', (s) => new FullES(s, new ConstantTruncationSchedule(3), { stepsPerJit: 1 }), true],
];

test.each(cases)('%s estimates a finite gradient for NNAdam', async (name, make, neverEnding) => {
  const lopt = new NNAdam();
  const sched = neverEnding ? new NeverEndingTruncationSchedule() : new ConstantTruncationSchedule(6);
  const est = make(new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily(5), lopt, sched, { numTasks: 2 }));
  const theta = lopt.init(random.PRNGKey(0));
  const ww = { theta, thetaModelState: null, outerState: { outerIteration: 0 } };
  const state = await est.initWorkerState(ww, random.PRNGKey(1));
  const [out] = await est.computeGradientEstimate(ww, random.PRNGKey(2), state, {});
  const grads = Object.fromEntries(treeLeavesWithPath<tf.Tensor>(out.grad).map(([p, g]) => [p, Array.from(g.dataSync())]));
  expect(Object.keys(grads).length).toBe(10);
  for (const g of Object.values(grads)) expect(g.every(Number.isFinite)).toBe(true);
  // the (zero-initialised) output layer always reaches the loss
  expect(grads['rnn_to_controls_params/rnn_to_controls/w'].some((x) => x !== 0)).toBe(true);
  if (name === 'TruncatedGrad') expect(grads['lstm_init_state/hidden'].every((x) => x === 0)).toBe(true);
  treeDispose([out.grad, theta]);
  out.meanLoss.dispose();
  disposeReplaced(out.unrollState, {});
});
