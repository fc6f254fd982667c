/**
 * The conv tasks against the real learned_optimization (test/golden/<mode>/conv.json, made by
 * tools/reference/golden_conv.py): `init_with_state(PRNGKey(0))` (params and batch-norm state) in
 * both random modes, and loss, gradient and new model state on the file's fixed 2-image batch.
 * Shared by conv.golden.test.ts (cpu) and the wasm twin. No dataset is loaded.
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { convTask } from '../index';

function toTensor(a: GoldenArray): tf.Tensor {
  const flat = (v: unknown): number[] => (Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [Number(v)]);
  return tf.tensor(flat(a.values), a.shape, a.dtype.startsWith('int') ? 'int32' : 'float32');
}

export const INIT_TOLERANCE = 1e-6;
export const LOSS_GRAD_TOLERANCE = 1e-5;
/**
 * The batch-norm state haiku's init returns holds the batch statistics of a forward pass (not
 * random draws): through three conv + batch-norm layers, where channels with zero variance
 * amplify rounding by up to 1/sqrt(eps) ≈ 316, float32 summation order moves them by ~1.2e-5.
 */
export const INIT_STATE_TOLERANCE = 2e-5;

export function describeConvGolden(backend: string): void {
  const names = Object.keys(golden('legacy', 'conv.json')).filter((k) => k.startsWith('Conv_'));
  describe.each(MODES)(`conv tasks = reference, %s mode, ${backend}`, (mode) => {
    const file = golden(mode, 'conv.json');
    test.each(names)('%s: init_with_state(PRNGKey(0)); loss, grad and state on the fixed batch', (name) => {
      const want = file[name];
      const before = tf.memory().numTensors;
      const task = convTask(name);
      const [params, state] = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.initWithState(random.PRNGKey(0)));
      const init = treeDiff(params, want.init);
      expect(init.leaves).toBe(Object.keys(want.init).length);
      expect(init.maxAbs).toBeLessThanOrEqual(INIT_TOLERANCE);
      const nState = Object.keys(want.init_state).length;
      if (nState) {
        const s = treeDiff(state, want.init_state);
        expect(s.leaves).toBe(nState);
        expect(s.maxAbs).toBeLessThanOrEqual(INIT_STATE_TOLERANCE);
      } else {
        expect(state).toBeNull();
      }

      const b = file.batches[want.batch];
      const batch = { image: toTensor(b.image), label: toTensor(b.label) };
      const out = task.valueAndGrad(params, state, random.PRNGKey(1), batch);
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      const g = treeDiff(out.grad, want.grad);
      expect(g.leaves).toBe(Object.keys(want.grad).length);
      expect(g.maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      if (nState) {
        const s = treeDiff(out.state, want.state);
        expect(s.leaves).toBe(Object.keys(want.state).length);
        expect(s.maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      } else {
        expect(out.state).toBeNull();
      }
      // the plain loss agrees with valueAndGrad's
      const l = task.loss(params, random.PRNGKey(1), batch);
      expect(goldenDiff(l, want.loss).maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      tf.dispose([params, state, batch, out, l] as any);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
