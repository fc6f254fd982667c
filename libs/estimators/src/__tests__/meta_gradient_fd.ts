/**
 * Shared by the TruncatedGrad tests that check a meta-gradient against central finite differences
 * of the meta-loss (grad_estimators_softmax_task, grad_estimators_max_pool_task): small in-memory
 * image data, one 3-step truncation, and the directional comparison.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeFlatten, treeUnflatten, type PyTree } from '@lopt/core';
import { SplitDatasets, TensorBatchStream, singleTaskToFamily, type SplitName, type Task } from '@lopt/tasks';
import type { LearnedOptimizer } from '@lopt/optimizers';
import { ConstantTruncationSchedule, TruncatedGrad, VectorizedLOptTruncatedStep } from '../index';

/** Fresh streams each time, so every evaluation sees the same batches of 24 `size`² images. */
export function syntheticImageDatasets(size: number): SplitDatasets {
  const n = 24;
  const image = () => tf.tidy(() => tf.sin(tf.reshape(tf.range(0, n * size * size, 1, 'float32'), [n, size, size, 1]).mul(0.37)));
  const label = () => tf.tensor1d(Array.from({ length: n }, (_, j) => (j * 7) % 10), 'int32');
  return new SplitDatasets(
    Object.fromEntries(
      (['train', 'inner_valid', 'outer_valid', 'test'] as SplitName[]).map((s, i) => [
        s,
        new TensorBatchStream(() => ({ image: image(), label: label() }), 6, { image: { shape: [size, size, 1], dtype: 'float32' }, label: { shape: [], dtype: 'int32' } }, i),
      ]),
    ) as Record<SplitName, TensorBatchStream>,
    { num_classes: 10 },
  );
}

/** The meta-loss and meta-gradient of one 3-step truncation of a fresh `task()` from the same task state, data and keys. */
export async function metaLossAndGrad(task: () => Task, lopt: LearnedOptimizer, theta: PyTree): Promise<{ loss: number; grad: tf.Tensor[] }> {
  const step = new VectorizedLOptTruncatedStep(singleTaskToFamily(task()), lopt, new ConstantTruncationSchedule(100), { numTasks: 2 });
  const est = new TruncatedGrad(step, { unrollLength: 3, stepsPerJit: 3 });
  const ww = { theta, thetaModelState: null, outerState: { outerIteration: 0 } };
  const state = await est.initWorkerState(ww, random.PRNGKey(1));
  const [out] = await est.computeGradientEstimate(ww, random.PRNGKey(2), state, {});
  const loss = (await out.meanLoss.data())[0];
  const grad = treeFlatten<tf.Tensor>(out.grad)[0];
  treeDispose([out.unrollState as unknown as PyTree, out.unrollInfo?.loss ?? null, out.meanLoss]);
  return { loss, grad };
}

/**
 * For random directions d of θ (one per seed): the meta-gradient · d, and the central finite
 * difference (L(θ + eps·d) − L(θ − eps·d)) / 2eps of the meta-loss; with the meta-loss at θ.
 */
export async function directionalChecks(
  task: () => Task,
  lopt: LearnedOptimizer,
  theta: PyTree,
  eps: number,
  seeds = [3, 4],
): Promise<{ loss: number; checks: Array<{ dot: number; fd: number }> }> {
  const [leaves, def] = treeFlatten<tf.Tensor>(theta);
  const { loss, grad } = await metaLossAndGrad(task, lopt, theta);
  const checks: Array<{ dot: number; fd: number }> = [];
  for (const seed of seeds) {
    const dirs = leaves.map((l, i) => tf.randomNormal(l.shape, 0, 1, 'float32', seed * 100 + i));
    const along = (s: number) => treeUnflatten(def, leaves.map((l, i) => tf.add(l, tf.mul(dirs[i], s)))) as PyTree;
    const plus = along(eps);
    const minus = along(-eps);
    const fd = ((await metaLossAndGrad(task, lopt, plus)).loss - (await metaLossAndGrad(task, lopt, minus)).loss) / (2 * eps);
    const dot = grad.reduce((s, g, i) => s + tf.tidy(() => tf.sum(tf.mul(g, dirs[i])).arraySync() as number), 0);
    checks.push({ dot, fd });
    treeDispose([plus, minus, dirs]);
  }
  treeDispose(grad);
  return { loss, checks };
}
