import { registry } from '@lopt/core';
import { validateMetaTrainingConfig } from '@lopt/training';
import { flopsPerOuterStep } from '../bench';

describe('bench', () => {
  test('the FLOP model gives the hand-computed A ≈ 4.0, B ≈ 16.0 GFLOP per outer step', () => {
    const a = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-single-machine', {}), registry);
    const b = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-learner-worker', {}), registry);
    expect(flopsPerOuterStep(a).total / 1e9).toBeCloseTo(3.99, 1);
    expect(flopsPerOuterStep(b).total / 1e9).toBeCloseTo(15.9, 0);
    expect(flopsPerOuterStep(a).taskSteps).toBe(800);
  });
});
