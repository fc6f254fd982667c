/**
 * The differentiating estimators with RNNMLPLOpt, whose θ holds parameters of the initial
 * optimizer state (initial_from_lstm, initial_from_mlp, lstm_init_state): TruncatedGrad
 * differentiates a truncation whose state was made before it, so those leaves do not reach its
 * loss and get zero gradients (as under jax.grad); FullGrad unrolls from init and reaches them.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, registry, treeDispose, treeFlatten, treeLeaves, type PyTree } from '@lopt/core';
import { FixedDimQuadraticFamily } from '@lopt/tasks';
import '@lopt/optimizers';
import type { LearnedOptimizer } from '@lopt/optimizers';
import { ConstantTruncationSchedule, FullGrad, NeverEndingTruncationSchedule, TruncatedGrad, VectorizedLOptTruncatedStep } from '../index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const INITIAL_STATE_LEAVES = ['initial_from_lstm', 'initial_from_mlp', 'lstm_init_state'];

test.each(['TruncatedGrad', 'FullGrad'])('%s with RNNMLPLOpt: finite gradients, nonzero except (TruncatedGrad) the initial-state θ, which are exactly 0', async (which) => {
  const lopt = registry.create('learned_optimizer', 'RNNMLPLOpt', { hiddenSize: 8, lstmHiddenSize: 8 }) as LearnedOptimizer;
  const theta = lopt.init(random.PRNGKey(0));
  const truncated = which === 'TruncatedGrad';
  const step = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily(4), lopt, truncated ? new ConstantTruncationSchedule(100) : new NeverEndingTruncationSchedule(), { numTasks: 2 });
  const est = truncated ? new TruncatedGrad(step, { unrollLength: 4, stepsPerJit: 2 }) : new FullGrad(step, new ConstantTruncationSchedule(4));
  const ww = { theta, thetaModelState: null, outerState: { outerIteration: 0 } };
  let state: any = await est.initWorkerState(ww, random.PRNGKey(1));
  for (let r = 0; r < 2; r++) {
    const [out] = await est.computeGradientEstimate(ww, random.PRNGKey(100 + r), state, {});
    const grads = treeFlatten<tf.Tensor>(out.grad)[0];
    const g = out.grad as Record<string, unknown>;
    for (const [name, sub] of Object.entries(g)) {
      const vals = treeLeaves<tf.Tensor>(sub as PyTree).flatMap((t) => Array.from(t.dataSync()));
      expect(vals.every(Number.isFinite)).toBe(true);
      const anyNonzero = vals.some((v) => v !== 0);
      // under FullGrad every leaf reaches the loss (lstm_init_state too: the LSTM's first step reads it)
      if (truncated && INITIAL_STATE_LEAVES.includes(name)) expect({ name, anyNonzero }).toEqual({ name, anyNonzero: false });
      else expect({ name, anyNonzero }).toEqual({ name, anyNonzero: true });
    }
    treeDispose(grads);
    out.meanLoss.dispose();
    disposeReplaced(state, out.unrollState);
    state = out.unrollState;
    if (out.unrollInfo) {
      out.unrollInfo.loss.dispose();
      out.unrollInfo.taskParam.forEach((t: any) => treeDispose(t));
    }
  }
  disposeReplaced(state, {});
  treeDispose(theta);
});
