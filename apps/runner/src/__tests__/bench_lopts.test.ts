/**
 * The learned-optimizer bench suite runs every registered learned optimizer through a single-task
 * and a stacked update without leaking tensors, and reports what it measured. (No timing is
 * asserted: speed is measured with `npm run bench -- --suite lopts`, not in tests.)
 */
import * as tf from '@tensorflow/tfjs';
import '@lopt/optimizers';
import { registry } from '@lopt/core';
import { benchLearnedOptimizers, denseModelShapes, loptBenchMarkdown, selectLoptBench } from '../bench_lopts';

test('a 1M-parameter tfjs-layers model has the weights the bench says', () => {
  const shapes = denseModelShapes([784, 1024, 256, 10]);
  expect(shapes).toEqual([[784, 1024], [1024], [1024, 256], [256], [256, 10], [10]]);
  expect(shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)).toBe(1_068_810);
});

test('every registered learned optimizer: one timed update, single task and stacked, no leak', () => {
  const before = tf.memory().numTensors;
  const problems = [
    { name: 'tiny', shapes: [[3, 2], [2], []], numTasks: 1 },
    { name: 'tiny', shapes: [[3, 2], [2], []], numTasks: 3 },
  ];
  const results = benchLearnedOptimizers({ steps: 1, warmup: 1, problems });
  expect(tf.memory().numTensors).toBe(before);
  const names = registry.list('learned_optimizer').map((e) => e.name);
  expect([...new Set(results.map((r) => r.lopt))]).toEqual([...names, 'HyperV2 (VeLO size)']);
  for (const r of results) {
    expect(r.params).toBe(9);
    expect(r.msPerUpdate).toBeGreaterThan(0);
    expect(Number.isFinite(r.paramsPerSec)).toBe(true);
  }
  expect(loptBenchMarkdown(results, 'test')).toMatch(/\| HyperV2 \(VeLO size\) \| tiny \| 3 \| 9 \|/);
});

test('--lopts / --problems pick subjects and problems by name; an unknown name throws, listing the known ones', () => {
  const all = selectLoptBench([], []);
  expect(all.subjects.map((s) => s.name)).toContain('AdafacNominal');
  expect(all.problems.map((p) => `${p.name}/${p.numTasks}`)).toEqual(['seed-mlp/1', 'seed-mlp/8', 'layers-1m/1']);
  const some = selectLoptBench(['AdafacMLPLOpt', 'AdafacNominal'], ['layers-1m']);
  expect(some.subjects.map((s) => s.name)).toEqual(['AdafacMLPLOpt', 'AdafacNominal']);
  expect(some.problems.map((p) => p.name)).toEqual(['layers-1m']);
  expect(() => selectLoptBench(['Adafac'], [])).toThrow(/--lopts: unknown 'Adafac' \(known: .*AdafacMLPLOpt/);
  expect(() => selectLoptBench([], ['big'])).toThrow(/--problems: unknown 'big' \(known: seed-mlp, layers-1m\)/);
});
