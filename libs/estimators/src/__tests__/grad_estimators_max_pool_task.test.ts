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
import { random, treeDispose } from '@lopt/core';
import { ConvTask, ResnetTask } from '@lopt/tasks';
import { LearnableSGD } from '@lopt/optimizers';
import { directionalChecks, syntheticImageDatasets } from './meta_gradient_fd';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

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

const smallResnet = () =>
  new ResnetTask({ datasets: syntheticImageDatasets(8), imageSize: 8, batchSize: 6, channelsPerGroup: [4, 4, 4, 4], blocksPerGroup: [1, 1, 1, 1], initialConvKernelSize: 3, maxPool: true, resnetV2: true });

const maxPoolConv = () => new MaxPoolConvTask({ datasets: syntheticImageDatasets(4), imageSize: [4, 4], hiddenUnits: [3], activation: 'tanh', pool: 'avg' });

test('TruncatedGrad on a tanh convnet with tf.maxPool, LearnableSGD: meta-gradient · d equals finite differences of the meta-loss', async () => {
  const lopt = new LearnableSGD({ initialLr: 0.5 });
  const theta = lopt.init(random.PRNGKey(0));
  // small: at 1e-2 one window's maximum changes hands between the two sides (1.3% off)
  const { checks } = await directionalChecks(maxPoolConv, lopt, theta, 2e-3);
  for (const { dot, fd } of checks) {
    expect(Math.abs(fd)).toBeGreaterThan(1e-4);
    expect(Math.abs(dot - fd)).toBeLessThan(0.006 * Math.abs(fd) + 2e-6);
  }
  treeDispose(theta);
}, 120000);

test('TruncatedGrad on a small ResNet (batch norm, relu, 3x3/2 max pool), LearnableSGD: meta-gradient · d equals finite differences of the meta-loss', async () => {
  // a small learning rate: at 0.5 the differences cross relu kinks (8-70% off at eps 1e-2)
  const lopt = new LearnableSGD({ initialLr: 0.1 });
  const theta = lopt.init(random.PRNGKey(0));
  const { loss, checks } = await directionalChecks(smallResnet, lopt, theta, 1e-2);
  expect(Number.isFinite(loss)).toBe(true);
  for (const { dot, fd } of checks) {
    expect(Math.abs(fd)).toBeGreaterThan(1e-4);
    // measured: 0.6% and 0.04%; 3e-5: the float32 rounding of two meta-losses near 2.3, over 2·eps
    expect(Math.abs(dot - fd)).toBeLessThan(0.01 * Math.abs(fd) + 3e-5);
  }
  treeDispose(theta);
}, 120000);
