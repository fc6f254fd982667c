import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as tf from '@tensorflow/tfjs';
import { registry } from '@lopt/core';
import { validateMetaTrainingConfig, MetaTrainer } from '../index';
import { ConfigError } from '../config';

describe('experiments', () => {
  test('the three built-in experiments are registered and validate', () => {
    const names = registry.list('experiment').map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['seed-single-machine', 'seed-learner-worker', 'quadratic-pes']));
    const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-single-machine', {}), registry);
    expect(cfg.tasks.map((t) => t.numTasks)).toEqual([4, 4]);
    expect(cfg.gradientEstimator).toEqual({ name: 'TruncatedPES', config: expect.objectContaining({ truncLength: 50, std: 0.01 }) });
    expect(cfg.reuseKey).toBe(true);
  });

  test('bad nested values and unknown names are rejected with the field named', () => {
    const base = registry.parseConfig('experiment', 'quadratic-pes', {});
    expect(() => validateMetaTrainingConfig({ ...base, gradientEstimator: { name: 'TruncatedPES', config: { truncLength: -1 } } }, registry)).toThrow(
      /gradientEstimator\.config\.truncLength/,
    );
    expect(() => validateMetaTrainingConfig({ ...base, learnedOptimizer: { name: 'NoSuchLOpt', config: {} } }, registry)).toThrow(/learnedOptimizer\.name.*allowed:.*MLPLOpt/);
    expect(() => validateMetaTrainingConfig({ ...base, learnedOptimizer: { name: 'NoSuchLOpt', config: {} } }, registry)).toThrow(ConfigError);
    expect(() => registry.parseConfig('experiment', 'quadratic-pes', { mode: 'cluster' })).toThrow(/mode/);
    expect(() => registry.parseConfig('experiment', 'quadratic-pes', { bogus: 1 })).toThrow(/bogus/);
  });

  test('the memory check: a lower bound from the families\' sizes alone, at most the measured estimate', async () => {
    const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'quadratic-pes', {}), registry);
    const trainer = new MetaTrainer(cfg, registry);
    // PES holds both antithetic branches; each branch of each task holds 10 params and a 10-d target
    expect(trainer.stateBytesLowerBound()).toBe(cfg.tasks[0].numTasks * 2 * (10 + 10) * 4);
    expect(trainer.estimateStateBytes()).toBeGreaterThanOrEqual(trainer.stateBytesLowerBound()!);
    await trainer.dispose(null);
    // an image MLP is only known by building one: no bound, the run measures it instead
    const seed = new MetaTrainer(validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-single-machine', {}), registry), registry);
    expect(seed.stateBytesLowerBound()).toBeUndefined();
    await seed.dispose(null);
    // (families may have fields of their own called `sizes`, as ParametricImageMLP's layer sizes)
    const family = new MetaTrainer(validateMetaTrainingConfig(registry.parseConfig('experiment', 'image-family-pes', {}), registry), registry);
    expect(family.stateBytesLowerBound()).toBeUndefined();
    await family.dispose(null);
  });

  test('image-family-pes: three families sampled by sample_image_mlp, each its own sizes; an outer step is finite', async () => {
    const cfg = validateMetaTrainingConfig(
      registry.parseConfig('experiment', 'image-family-pes', {
        gradientEstimator: { name: 'TruncatedPES', config: { truncLength: 5, stepsPerJit: 5 } },
        truncationSchedule: { name: 'ConstantTruncationSchedule', config: { totalLength: 10 } },
      }),
      registry,
    );
    expect(cfg.tasks.map((t) => [t.name, t.config.seed])).toEqual([['SampledImageMLP', 7], ['SampledImageMLP', 8], ['SampledImageMLP', 13]]);
    const trainer = new MetaTrainer(cfg, registry);
    // reference sample_image_mlp(PRNGKey(7|8|13)) in jax's legacy mode (test/golden/legacy/parametric_image_mlp.json)
    expect(trainer.families.map((f: any) => [f.name, f.sizes])).toEqual([
      ['SampledImageMLP_7', [16, 64, 10]],
      ['SampledImageMLP_8', [36, 52, 52, 52, 52, 10]],
      ['SampledImageMLP_13', [25, 48, 48, 48, 48, 10]],
    ]);
    const [, r] = await trainer.step(await trainer.init(), 0);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.nonFiniteGradElements).toBe(0);
  });

  test('conv-fmnist-pes validates: a ParametricImageConv family, PES trunc 25', () => {
    const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'conv-fmnist-pes', {}), registry);
    expect(cfg.tasks).toEqual([expect.objectContaining({ name: 'ParametricImageConv', numTasks: 2 })]);
    expect(cfg.gradientEstimator).toEqual({ name: 'TruncatedPES', config: expect.objectContaining({ truncLength: 25 }) });
    expect(cfg.steps).toBe(200);
  });

  test('quadratic-pes trains a few steps with a flat tensor count and deterministic losses', async () => {
    const run = async () => {
      const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'quadratic-pes', { steps: 4 }), registry);
      const trainer = new MetaTrainer(cfg, registry);
      let state = await trainer.init();
      const losses: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) {
        const [next, r] = await trainer.step(state, i, { withMetrics: i === 3 });
        state = next;
        losses.push(r.loss);
        counts.push(tf.memory().numTensors);
      }
      return { losses, counts };
    };
    const a = await run();
    const b = await run();
    expect(a.losses).toEqual(b.losses);
    a.losses.forEach((l) => expect(Number.isFinite(l)).toBe(true));
    expect(a.counts[2]).toBe(a.counts[1]);
  });

  test('the pipeline asks the registry, not names: task entries resolve to families or tasks, estimators by their traits, truncated steps by kind', () => {
    const base = registry.parseConfig('experiment', 'quadratic-pes', {});
    expect(() => validateMetaTrainingConfig({ ...base, tasks: [{ name: 'NoSuchTask', config: {}, numTasks: 1 }] }, registry)).toThrow(
      /tasks\.0\.name: unknown task or task family 'NoSuchTask' \(allowed: .*FixedDimQuadraticFamily.*QuadraticTask/,
    );
    expect(() => validateMetaTrainingConfig({ ...base, truncatedStep: { name: 'Nope', config: {} } }, registry)).toThrow(/truncatedStep\.name: unknown truncated_step 'Nope'/);
    expect(() => validateMetaTrainingConfig({ ...base, truncatedStep: { name: 'VectorizedLOptTruncatedStep', config: { metaLossSplit: 'validation' } } }, registry)).toThrow(
      /truncatedStep\.config\.metaLossSplit/,
    );
    // a single task (QuadraticTask) is wrapped as a family of one; a family is used as it is
    const cfg = validateMetaTrainingConfig({ ...base, tasks: [{ name: 'QuadraticTask', config: { dim: 3 }, numTasks: 2 }, ...base.tasks] }, registry);
    // an estimator registered in a child registry under another name, with the antithetic trait:
    // the trainer counts two branches per task from the trait
    const child = registry.child();
    const pes = registry.get('gradient_estimator', 'TruncatedPES');
    child.register({ ...pes, name: 'MyPES', cls: undefined });
    const trainer = new MetaTrainer({ ...cfg, gradientEstimator: { name: 'MyPES', config: cfg.gradientEstimator.config } }, child);
    expect(trainer.families.map((f) => f.name)).toEqual(['QuadraticTask', 'FixedDimQuadraticFamily']); // the family of one takes the task's name
    expect(trainer.innerStepsPerOuterStep()).toBe((2 + 4) * 10 * 2);
  });
});
