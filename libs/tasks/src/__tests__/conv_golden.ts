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
 * The batch-norm state haiku's init returns holds the batch statistics of a forward pass on an
 * all-ones batch (not random draws). That pass is ill-conditioned: every interior pixel is the
 * same, so each layer's variance `E[x²] − E[x]²` is a small difference of large numbers, which
 * batch norm then divides by (up to 1/sqrt(eps) ≈ 316): float32 summation order moves the third
 * layer's averages by ~1.2e-5 on cpu and ~2.3e-4 on wasm (XNNPACK). Neither the loss, nor the
 * gradient, nor the state after a step reads these averages (each step overwrites them), and
 * those are held to 1e-5 below.
 */
export const INIT_STATE_TOLERANCE: Record<string, number> = { cpu: 2e-5, wasm: 5e-4 };
/**
 * Gradients of the batch-norm tasks on wasm: batch norm over 2 images makes the first conv's
 * filter gradient a difference of near-equal terms; on wasm (XNNPACK sums in another order) its
 * 288 values (stored as head + checksums) drift together, so the checksum `Σ g` is off by 1.8e-3
 * of `Σ|g|` (Conv_FashionMnist_32x64x64_batchnorm, partitionable). Every other leaf, every other
 * task, and cpu throughout are within 1e-5.
 */
export const BATCHNORM_GRAD_TOLERANCE: Record<string, number> = { wasm: 3e-3 };

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
      const b = file.batches[want.batch];
      const batch = { image: toTensor(b.image), label: toTensor(b.label) };
      const out = task.valueAndGrad(params, state, random.PRNGKey(1), batch);
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(LOSS_GRAD_TOLERANCE);
      const g = treeDiff(out.grad, want.grad);
      expect(g.leaves).toBe(Object.keys(want.grad).length);
      expect(g.maxAbs).toBeLessThanOrEqual(name.endsWith('_batchnorm') ? BATCHNORM_GRAD_TOLERANCE[backend] ?? LOSS_GRAD_TOLERANCE : LOSS_GRAD_TOLERANCE);
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
      // Last: the init state's averages (ill-conditioned, see INIT_STATE_TOLERANCE; nothing above reads them).
      if (nState) {
        const s = treeDiff(state, want.init_state);
        expect(s.leaves).toBe(nState);
        expect(s.maxAbs).toBeLessThanOrEqual(INIT_STATE_TOLERANCE[backend] ?? INIT_STATE_TOLERANCE.cpu);
      } else {
        expect(state).toBeNull();
      }
      tf.dispose([params, state, batch, out, l] as any);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
