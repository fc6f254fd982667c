/**
 * Small hand-made task family and learned optimizer for estimator tests: a quadratic family
 * (loss Σ(t−p)², target and init from the keys) and "learnable SGD" (θ = {log_lr}).
 */
import * as tf from '@tensorflow/tfjs';
import { random, PRNGKey, PyTree } from '@lopt/core';

export class FakeQuadFamily {
  readonly name = 'FakeQuadFamily';
  readonly datasets = null;
  constructor(readonly dim = 3, readonly fixedTarget = false) {}
  sample(key: PRNGKey) {
    return this.fixedTarget ? tf.zeros([this.dim]) : random.normal(key, [this.dim]);
  }
  sampleBatch(keys: PRNGKey[]) {
    return tf.tidy(() => tf.stack(keys.map((k) => this.sample(k))));
  }
  taskFn(target: PyTree) {
    const t = target as tf.Tensor;
    const dim = this.dim;
    return {
      name: 'FakeQuadTask',
      datasets: null,
      initWithStateBatch: (keys: PRNGKey[]) => [tf.tidy(() => tf.stack(keys.map((k) => random.normal(k, [dim])))), null],
      valueAndGradBatch: (p: tf.Tensor) => ({
        loss: tf.sum(tf.square(tf.sub(t, p)), -1),
        grad: tf.mul(tf.sub(p, t), 2),
        state: null,
      }),
      lossWithStateAndAuxBatch: (p: tf.Tensor) => ({ loss: tf.sum(tf.square(tf.sub(t, p)), -1), state: null, aux: {} }),
      normalizer: (l: tf.Tensor) => l,
    } as any;
  }
}

/** θ = {log_lr}; params ← params − exp(log_lr)·g. Per-task θ when thetaIsVector. */
export class FakeSgdLOpt {
  readonly name = null;
  constructor(readonly initialLr = 0.1) {}
  init(): PyTree {
    return { log_lr: tf.scalar(Math.log(this.initialLr)) };
  }
  optFn(theta: any, _isTraining = false, thetaIsVector = false) {
    const logLr = theta.log_lr as tf.Tensor;
    return {
      name: 'FakeSgd',
      initBatch: (params: tf.Tensor) => ({ params, iteration: tf.zeros([params.shape[0]], 'int32') }),
      updateBatch: (s: any, g: tf.Tensor) => {
        const lr = tf.exp(thetaIsVector ? logLr.reshape([-1, 1]) : logLr);
        return { params: tf.sub(s.params, tf.mul(lr, g)), iteration: tf.add(s.iteration, 1) };
      },
      getParams: (s: any) => s.params,
      getState: () => null,
    } as any;
  }
}
