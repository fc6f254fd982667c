/**
 * TruncatedGrad's meta-gradient through the training of max-pool convnets (cpu): the inner
 * gradient passes tf.maxPool's gradient kernel (MaxPoolGrad), which had no gradient in tf.js, so
 * the meta-gradient threw "gradient function not found for MaxPoolGrad" (and, for the ResNet, for
 * its own max-pool gradient kernel). A small tanh convnet with a 3x3 stride-2 SAME max pool: the
 * meta-gradient along random directions of θ equals central finite differences of the meta-loss
 * (0.3% and 0.05%: away from ties the pool is linear, so finite differences hold as for smooth
 * tasks, with a step small enough that no window's maximum changes hands). A small ResNet (batch
 * norm, relu, max pool; under the nested tape it runs its plain ops, not its first-order kernels):
 * the same, at a learning rate small enough that the differences cross no relu kink.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeFlatten, treeUnflatten, type PyTree } from '@lopt/core';
import { ConvTask, ResnetTask, SplitDatasets, TensorBatchStream, singleTaskToFamily, type SplitName, type Task } from '@lopt/tasks';
import { LearnableSGD, type LearnedOptimizer } from '@lopt/optimizers';
import { ConstantTruncationSchedule, TruncatedGrad, VectorizedLOptTruncatedStep } from '../index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Fresh streams each time, so every evaluation sees the same batches of `size`² images. */
function datasets(size: number): SplitDatasets {
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

/** ConvTask's convnet (one tanh conv, stride 2) with tf.maxPool 3x3/2 SAME before the spatial mean. */
class MaxPoolConvTask extends ConvTask {
  override forwardOne(p: Record<string, any>, _state: unknown, image: tf.Tensor, label: tf.Tensor): { loss: tf.Scalar; state: null } {
    const conv = p['conv2_d'];
    const net = tf.tanh(tf.add(tf.conv2d(image as tf.Tensor4D, conv.w, this.strides[0], 'same'), conv.b)) as tf.Tensor4D;
    const pooled = tf.mean(tf.maxPool(net, 3, 2, 'same'), [1, 2]);
    const logits = tf.add(tf.matMul(pooled, p.linear.w), p.linear.b);
    const onehot = tf.cast(tf.oneHot(tf.cast(label, 'int32'), 10), 'float32');
    return { loss: tf.mean(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1))) as tf.Scalar, state: null };
  }
}

/** The meta-loss and meta-gradient of one 3-step truncation from the same task state, data and keys. */
async function metaLossAndGrad(task: () => Task, lopt: LearnedOptimizer, theta: PyTree): Promise<{ loss: number; grad: tf.Tensor[] }> {
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

const smallResnet = () =>
  new ResnetTask({ datasets: datasets(8), imageSize: 8, batchSize: 6, channelsPerGroup: [4, 4, 4, 4], blocksPerGroup: [1, 1, 1, 1], initialConvKernelSize: 3, maxPool: true, resnetV2: true });

const maxPoolConv = () => new MaxPoolConvTask({ datasets: datasets(4), imageSize: [4, 4], hiddenUnits: [3], activation: 'tanh', pool: 'avg' });

test('TruncatedGrad on a tanh convnet with tf.maxPool, LearnableSGD: meta-gradient · d equals finite differences of the meta-loss', async () => {
  const lopt = new LearnableSGD({ initialLr: 0.5 });
  const theta = lopt.init(random.PRNGKey(0));
  const [leaves, def] = treeFlatten<tf.Tensor>(theta);
  const { grad } = await metaLossAndGrad(maxPoolConv, lopt, theta);
  for (const seed of [3, 4]) {
    const dirs = leaves.map((l, i) => tf.randomNormal(l.shape, 0, 1, 'float32', seed * 100 + i));
    const along = (s: number) => treeUnflatten(def, leaves.map((l, i) => tf.add(l, tf.mul(dirs[i], s)))) as PyTree;
    // small: at 1e-2 one window's maximum changes hands between the two sides (1.3% off)
    const eps = 2e-3;
    const plus = along(eps);
    const minus = along(-eps);
    const fd = ((await metaLossAndGrad(maxPoolConv, lopt, plus)).loss - (await metaLossAndGrad(maxPoolConv, lopt, minus)).loss) / (2 * eps);
    const dot = grad.reduce((s, g, i) => s + tf.tidy(() => tf.sum(tf.mul(g, dirs[i])).arraySync() as number), 0);
    expect(Math.abs(fd)).toBeGreaterThan(1e-4);
    expect(Math.abs(dot - fd)).toBeLessThan(0.006 * Math.abs(fd) + 2e-6);
    treeDispose([plus, minus, dirs]);
  }
  treeDispose([theta, grad]);
}, 120000);

test('TruncatedGrad on a small ResNet (batch norm, relu, 3x3/2 max pool), LearnableSGD: meta-gradient · d equals finite differences of the meta-loss', async () => {
  // a small learning rate: at 0.5 the differences cross relu kinks (8-70% off at eps 1e-2)
  const lopt = new LearnableSGD({ initialLr: 0.1 });
  const theta = lopt.init(random.PRNGKey(0));
  const [leaves, def] = treeFlatten<tf.Tensor>(theta);
  const { loss, grad } = await metaLossAndGrad(smallResnet, lopt, theta);
  expect(Number.isFinite(loss)).toBe(true);
  for (const seed of [3, 4]) {
    const dirs = leaves.map((l, i) => tf.randomNormal(l.shape, 0, 1, 'float32', seed * 100 + i));
    const along = (s: number) => treeUnflatten(def, leaves.map((l, i) => tf.add(l, tf.mul(dirs[i], s)))) as PyTree;
    const eps = 1e-2;
    const plus = along(eps);
    const minus = along(-eps);
    const fd = ((await metaLossAndGrad(smallResnet, lopt, plus)).loss - (await metaLossAndGrad(smallResnet, lopt, minus)).loss) / (2 * eps);
    const dot = grad.reduce((s, g, i) => s + tf.tidy(() => tf.sum(tf.mul(g, dirs[i])).arraySync() as number), 0);
    expect(Math.abs(fd)).toBeGreaterThan(1e-4);
    // measured: 0.6% and 0.04%; 3e-5: the float32 rounding of two meta-losses near 2.3, over 2·eps
    expect(Math.abs(dot - fd)).toBeLessThan(0.01 * Math.abs(fd) + 3e-5);
    treeDispose([plus, minus, dirs]);
  }
  treeDispose([theta, grad]);
}, 120000);
