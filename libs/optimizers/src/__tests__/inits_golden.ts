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

/** [name in the golden file, a fresh learned optimizer, the seed of the PRNGKey its init gets] */
export type InitCase = [string, () => LearnedOptimizer, number];

const CASES: InitCase[] = [
  ['MLPLOpt().init(PRNGKey(0))', () => new MLPLOpt(), 0],
  ['MLPLOpt(hidden_size=8,hidden_layers=1).init(PRNGKey(3))', () => new MLPLOpt({ hiddenSize: 8, hiddenLayers: 1 }), 3],
  ['AdafacMLPLOpt().init(PRNGKey(0))', () => new AdafacMLPLOpt(), 0],
  ['LearnableSGD().init(PRNGKey(0))', () => new LearnableSGD(), 0],
  ['LearnableSGDM().init(PRNGKey(0))', () => new LearnableSGDM(), 0],
  ['LearnableAdam().init(PRNGKey(0))', () => new LearnableAdam(), 0],
];

/** `file` and `cases` default to inits.json and the learned optimizers it holds. */
export function describeLearnedOptimizerInits(
  backend: string,
  { file = 'inits.json', cases = CASES }: { file?: string; cases?: InitCase[] } = {},
): void {
  describe.each(MODES)(`learned optimizer init(key) = reference (${file}), %s mode, ${backend}`, (mode) => {
    test.each(cases)('%s', (name, make, seed) => {
      const want = golden(mode, file)[name];
      const theta = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => make().init(random.PRNGKey(seed)));
      const d = treeDiff(theta, want);
      expect(d.leaves).toBe(Object.keys(want).length);
      expect(d.maxAbs).toBeLessThanOrEqual(1e-6);
      tf.dispose(theta as any);
    });
  });
}
