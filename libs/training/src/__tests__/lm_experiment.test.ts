/**
 * The `lm-transformer-pes` experiment: it validates, and a few PES outer steps on the transformer
 * LM family over the offline fortunes corpus run with finite losses and gradients (the corpus is
 * Debian's `fortunes`, which .ci/run installs; without it this suite is one test saying why).
 */
import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import { registry } from '@lopt/core';
import { findFortunesDir } from '@lopt/tasks';
import { validateMetaTrainingConfig, MetaTrainer } from '../index';

let why = '';
try {
  findFortunesDir();
} catch (e) {
  why = (e as Error).message;
}

test('lm-transformer-pes validates: a ParametricLMTransformer family on fortunes bytes, PES trunc 20', () => {
  const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'lm-transformer-pes', {}), registry);
  expect(cfg.tasks).toEqual([expect.objectContaining({ name: 'ParametricLMTransformer', numTasks: 4 })]);
  expect(cfg.tasks[0].config).toEqual(expect.objectContaining({ datasetName: 'fortunes_bytes_datasets', numLayers: 1, dModel: 32 }));
  expect(cfg.gradientEstimator).toEqual({ name: 'TruncatedPES', config: expect.objectContaining({ truncLength: 20 }) });
  expect(cfg.steps).toBe(200);
});

if (why) {
  test('fortunes corpus absent: the meta-training steps are skipped', () => {
    console.warn(`SKIPPING lm-transformer-pes steps: ${why}`);
    expect(why).toMatch(/apt-get install fortunes/);
  });
}

(why ? test.skip : test)('lm-transformer-pes: three PES outer steps on the transformer LM family are finite', async () => {
  const cfg = validateMetaTrainingConfig(
    registry.parseConfig('experiment', 'lm-transformer-pes', {
      gradientEstimator: { name: 'TruncatedPES', config: { truncLength: 4, stepsPerJit: 4 } },
      truncationSchedule: { name: 'ConstantTruncationSchedule', config: { totalLength: 8 } },
      tasks: [{ name: 'ParametricLMTransformer', config: { datasetName: 'fortunes_bytes_datasets', batchSize: 4, sequenceLength: 8, numHeads: 2, numLayers: 1, dModel: 16, dropoutRate: 0.1 }, numTasks: 2 }],
    }),
    registry,
  );
  const trainer = new MetaTrainer(cfg, registry);
  let state = await trainer.init();
  for (let i = 0; i < 3; i++) {
    const [next, r] = await trainer.step(state, i);
    state = next;
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.loss).toBeGreaterThan(0);
    expect(r.nonFiniteGradElements).toBe(0);
  }
}, 120000);
