/**
 * Every task's `init(key)` (and each family's `sample(key)`) against the real learned_optimization
 * for the same key, in both of jax's random modes (test/golden/<mode>/inits.json, made by
 * tools/reference/make_golden.py). Shared by inits.golden.test.ts (cpu) and the wasm twin.
 * Image tasks only need their shapes here: their data is not loaded.
 */
import * as tf from '@tensorflow/tfjs';
import { random, type PyTree } from '@lopt/core';
import { golden, MODES, treeDiff } from '../../../../test/golden';
import {
  BatchQuadraticTask,
  FixedDimQuadraticFamily,
  FixedDimQuadraticFamilyData,
  ImageMLP_FashionMnist16_Relu32,
  ImageMLP_FashionMnist8_Relu32,
  ImageMLP_FashionMnist_Relu128x128,
  LogQuadraticTask,
  NoisyMeanQuadraticTask,
  NoisyQuadraticFamily,
  QuadraticTask,
  SumQuadraticTask,
} from '../index';
import type { TaskFamily } from '../base';

const key = random.PRNGKey;
const TASKS: [string, () => PyTree][] = [
  ['ImageMLP_FashionMnist8_Relu32().init(PRNGKey(0))', () => new ImageMLP_FashionMnist8_Relu32().init(key(0))],
  ['ImageMLP_FashionMnist16_Relu32().init(PRNGKey(0))', () => new ImageMLP_FashionMnist16_Relu32().init(key(0))],
  ['ImageMLP_FashionMnist_Relu128x128().init(PRNGKey(0))', () => new ImageMLP_FashionMnist_Relu128x128().init(key(0))],
  ['QuadraticTask().init(PRNGKey(0))', () => new QuadraticTask().init(key(0))],
  ['NoisyMeanQuadraticTask().init(PRNGKey(0))', () => new NoisyMeanQuadraticTask().init(key(0))],
  ['BatchQuadraticTask().init(PRNGKey(0))', () => new BatchQuadraticTask().init(key(0))],
  ['LogQuadraticTask().init(PRNGKey(0))', () => new LogQuadraticTask().init(key(0))],
  ['SumQuadraticTask().init(PRNGKey(0))', () => new SumQuadraticTask().init(key(0))],
];
const FAMILIES: [string, () => TaskFamily][] = [
  ['FixedDimQuadraticFamily(10)', () => new FixedDimQuadraticFamily(10)],
  ['FixedDimQuadraticFamilyData(10)', () => new FixedDimQuadraticFamilyData(10)],
  ['NoisyQuadraticFamily(10,0.1)', () => new NoisyQuadraticFamily({ dim: 10, cov: 0.1 })],
];
for (const [name, make] of FAMILIES) {
  TASKS.push([`${name}.sample(PRNGKey(1))`, () => make().sample(key(1))]);
  TASKS.push([`${name}.task_fn(sample(PRNGKey(1))).init(PRNGKey(2))`, () => {
    const fam = make();
    return fam.taskFn(fam.sample(key(1))).init(key(2));
  }]);
}

export function describeTaskInits(backend: string): void {
  describe.each(MODES)(`task init(key) = reference, %s mode, ${backend}`, (mode) => {
    test.each(TASKS)('%s', (name, make) => {
      const want = golden(mode, 'inits.json')[name];
      const params = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, make);
      // a bare array is keystr '' in the golden file
      const d = treeDiff(params, want, (k) => k);
      expect(d.leaves).toBe(Object.keys(want).length);
      expect(d.maxAbs).toBeLessThanOrEqual(1e-6);
      tf.dispose(params as any);
    });
  });
}
