/**
 * Every learned optimizer's `init(key)` against the real learned_optimization's θ for the same key,
 * in both of jax's random modes (test/golden/<mode>/inits.json, tools/reference/make_golden.py).
 * Shared by inits.golden.test.ts (cpu) and inits.golden.wasm.test.ts (wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, MODES, treeDiff } from '../../../../test/golden';
import { AdafacMLPLOpt, LearnableAdam, LearnableSGD, LearnableSGDM, MLPLOpt } from '../index';
import type { LearnedOptimizer } from '../base';

const CASES: [string, () => LearnedOptimizer, number][] = [
  ['MLPLOpt().init(PRNGKey(0))', () => new MLPLOpt(), 0],
  ['MLPLOpt(hidden_size=8,hidden_layers=1).init(PRNGKey(3))', () => new MLPLOpt({ hiddenSize: 8, hiddenLayers: 1 }), 3],
  ['AdafacMLPLOpt().init(PRNGKey(0))', () => new AdafacMLPLOpt(), 0],
  ['LearnableSGD().init(PRNGKey(0))', () => new LearnableSGD(), 0],
  ['LearnableSGDM().init(PRNGKey(0))', () => new LearnableSGDM(), 0],
  ['LearnableAdam().init(PRNGKey(0))', () => new LearnableAdam(), 0],
];

export function describeLearnedOptimizerInits(backend: string): void {
  describe.each(MODES)(`learned optimizer init(key) = reference, %s mode, ${backend}`, (mode) => {
    test.each(CASES)('%s', (name, make, seed) => {
      const want = golden(mode, 'inits.json')[name];
      const theta = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => make().init(random.PRNGKey(seed)));
      const d = treeDiff(theta, want);
      expect(d.leaves).toBe(Object.keys(want).length);
      expect(d.maxAbs).toBeLessThanOrEqual(1e-6);
      tf.dispose(theta as any);
    });
  });
}
