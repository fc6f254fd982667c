/**
 * Every registered learned optimizer meta-trains with every registered gradient estimator, through
 * the registry and MetaTrainer exactly as `lopt run` assembles them: a plugin added later is covered
 * without an edit here. On 2 quadratic tasks with short unrolls, two outer steps must give a finite
 * loss, a finite meta-gradient with some non-zero element, and a θ that moved (Adam's first steps
 * move every leaf whose gradient is non-zero by about the learning rate).
 */
import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as tf from '@tensorflow/tfjs';
import { registry, treeLeaves, type PyTree } from '@lopt/core';
import { MetaTrainer, validateMetaTrainingConfig } from '../index';

/** Short settings per estimator (unrolls of 4 steps of 8-step truncations). */
const ESTIMATOR_CONFIG: Record<string, Record<string, unknown>> = {
  TruncatedPES: { truncLength: 4, stepsPerJit: 4 },
  TruncatedES: { unrollLength: 4, stepsPerJit: 4 },
  TruncatedGrad: { unrollLength: 4, stepsPerJit: 4 },
  FullES: {},
  FullGrad: {},
};

const lopts = registry.list('learned_optimizer').map((e) => e.name);
const estimators = registry.list('gradient_estimator').map((e) => e.name);

test('the estimators this test knows are the registered ones (add settings for a new estimator above)', () => {
  expect([...estimators].sort()).toEqual(Object.keys(ESTIMATOR_CONFIG).sort());
  expect(lopts).toEqual(expect.arrayContaining(['MLPLOpt', 'AdafacMLPLOpt', 'AdafacNominal', 'NNAdam', 'RNNMLPLOpt', 'LearnableSGD', 'LearnableSGDM', 'LearnableAdam']));
});

const thetaOf = (s: any): PyTree => s.learnerState.thetaOptState.params;
const values = (t: PyTree): number[][] => treeLeaves<tf.Tensor>(t).map((l) => Array.from(l.dataSync()));

describe.each(lopts)('%s', (lopt) => {
  test.each(estimators)('meta-trains with %s', async (estimator) => {
    const base = registry.parseConfig('experiment', 'quadratic-pes', {});
    const cfg = validateMetaTrainingConfig(
      {
        ...base,
        steps: 2,
        learnedOptimizer: { name: lopt, config: {} },
        gradientEstimator: { name: estimator, config: ESTIMATOR_CONFIG[estimator] },
        truncationSchedule: { name: 'ConstantTruncationSchedule', config: { totalLength: 8 } },
        truncatedStep: { name: 'VectorizedLOptTruncatedStep', config: { randomInitialIterationOffset: 0 } },
        tasks: [{ name: 'FixedDimQuadraticFamily', config: { dim: 4 }, numTasks: 2 }],
      },
      registry,
    );
    const trainer = new MetaTrainer(cfg, registry);
    let state = await trainer.init();
    const before = values(thetaOf(state));
    for (let step = 0; step < 2; step++) {
      const [next, r] = await trainer.step(state, step, { keepGrad: true });
      state = next;
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.nonFiniteGradElements).toBe(0);
      const grad = values(r.thetaGrad!).flat();
      expect(grad.every(Number.isFinite)).toBe(true);
      expect(grad.some((g) => g !== 0)).toBe(true);
      tf.dispose(treeLeaves<tf.Tensor>(r.thetaGrad!));
    }
    const after = values(thetaOf(state));
    expect(after.flat().every(Number.isFinite)).toBe(true);
    expect(after.some((leaf, i) => leaf.some((x, j) => x !== before[i][j]))).toBe(true);
  });
});
