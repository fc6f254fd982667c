/**
 * The language-model tasks against the real learned_optimization (test/golden/<mode>/lm_tasks.json,
 * made by tools/reference/golden_lm_tasks.py): `init(PRNGKey(0))` in both random modes, and loss
 * and gradient (key `PRNGKey(1)`, which the dropout transformers draw from) on the file's fixed
 * token batch. Shared by lm_tasks.golden.test.ts (cpu) and the wasm twin. No text is loaded.
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { rnnLmTask, transformerLmTask, type BaseTask } from '../index';

export const INIT_TOLERANCE = 1e-6;
export const LOSS_GRAD_TOLERANCE = 1e-5;

function toTensor(a: GoldenArray): tf.Tensor {
  const flat = (v: unknown): number[] => (Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [Number(v)]);
  return tf.tensor(flat(a.values), a.shape, a.dtype.startsWith('int') ? 'int32' : 'float32');
}

export function lmTask(name: string): BaseTask {
  return name.startsWith('RNNLM_') ? rnnLmTask(name) : transformerLmTask(name);
}

export function describeLmTasksGolden(backend: string): void {
  const names = Object.keys(golden('legacy', 'lm_tasks.json')).filter((k) => k !== 'batches' && k !== '_meta');
  describe.each(MODES)(`language-model tasks = reference, %s mode, ${backend}`, (mode) => {
    const file = golden(mode, 'lm_tasks.json');
    test.each(names)('%s: init(PRNGKey(0)); loss and grad on the fixed batch', (name) => {
      const want = file[name];
      const before = tf.memory().numTensors;
      const task = lmTask(name);
      const params = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.init(random.PRNGKey(0)));
      const init = treeDiff(params, want.init);
      expect(init.leaves).toBe(Object.keys(want.init).length);
      expect(init.maxAbs).toBeLessThanOrEqual(INIT_TOLERANCE);
      const b = file.batches[want.batch];
      const batch = { obs: toTensor(b.obs), target: toTensor(b.target) };
      const out = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.valueAndGrad(params, null, random.PRNGKey(1), batch));
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      const g = treeDiff(out.grad, want.grad);
      expect(g.leaves).toBe(Object.keys(want.grad).length);
      expect({ worst: g.worst, maxAbs: g.maxAbs <= LOSS_GRAD_TOLERANCE ? 'ok' : g.maxAbs }).toEqual({ worst: g.worst, maxAbs: 'ok' });
      const l = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.loss(params, random.PRNGKey(1), batch));
      expect(goldenDiff(l, want.loss).maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      tf.dispose([params, batch, out, l] as any);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
