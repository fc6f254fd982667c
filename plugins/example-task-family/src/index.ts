/**
 * Example plugin: `LinearRegressionFamily`, a task family of noisy linear regressions.
 *
 * Each task has a true weight vector `wTrue ~ N(0, I)` (the task param). Every loss call draws a
 * fresh batch `X ~ N(0, 1)` `[batchSize, dim]` and targets `y = X wTrue + noise · ε` from the
 * task's key, and the loss is the mean squared error of `X w + b`. Everything is batched over the
 * leading task axis; gradients come from BaseTask's autodiff.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import { BaseTask, BaseTaskFamily, requireKeys, stackedNormal, type Params, type Task } from '@lopt/tasks';

/** The family's options; the schema holds their defaults. */
export const LinearRegressionSchema = z
  .object({
    dim: z.number().int().positive().default(8),
    batchSize: z.number().int().positive().default(32),
    noise: z.number().nonnegative().default(0.1),
  })
  .strict();
export type LinearRegressionConfig = z.output<typeof LinearRegressionSchema>;

export class LinearRegressionTask extends BaseTask {
  readonly name = 'LinearRegressionTask';
  constructor(
    /** `[dim]` (one task) or `[N, dim]` (a stack). */
    readonly wTrue: tf.Tensor,
    readonly config: LinearRegressionConfig,
  ) {
    super();
  }

  /** params `{w: [N, dim] ~ N(0, 1/dim), b: [N] = 0}`. */
  initBatch(keys: PRNGKey[]): Params {
    return tf.tidy(() => ({
      w: tf.mul(stackedNormal(keys, [this.config.dim]), 1 / Math.sqrt(this.config.dim)),
      b: tf.zeros([keys.length]),
    }));
  }

  /** Per-task MSE `[N]` on a batch sampled from each task's key. */
  lossBatch(params: Params, keys: PRNGKey[] | null): tf.Tensor {
    const ks = requireKeys(keys, this.name).map((k) => random.split(k));
    const { dim, batchSize, noise } = this.config;
    return tf.tidy(() => {
      const { w, b } = params as { w: tf.Tensor; b: tf.Tensor };
      const N = w.shape[0];
      const x = stackedNormal(ks.map((k) => k[0]), [batchSize, dim]); // [N, B, dim]
      const eps = stackedNormal(ks.map((k) => k[1]), [batchSize]); // [N, B]
      const wTrue = tf.reshape(this.wTrue, [-1, 1, dim]); // [1 or N, 1, dim]
      const y = tf.add(tf.sum(tf.mul(x, wTrue), -1), tf.mul(eps, noise));
      const pred = tf.add(tf.sum(tf.mul(x, tf.reshape(w, [N, 1, dim])), -1), tf.reshape(b, [N, 1]));
      return tf.mean(tf.square(tf.sub(pred, y)), -1);
    });
  }
}

export class LinearRegressionFamily extends BaseTaskFamily {
  readonly name = 'LinearRegressionFamily';
  readonly config: LinearRegressionConfig;
  constructor(config: z.input<typeof LinearRegressionSchema> = {}) {
    super();
    this.config = LinearRegressionSchema.parse(config);
  }
  /** Stacked task params: `wTrue` `[N, dim]`, row i from keys[i]. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return stackedNormal(keys, [this.config.dim]);
  }
  taskFn(taskParam: PyTree): Task {
    return new LinearRegressionTask(taskParam as tf.Tensor, this.config);
  }
}


registerPlugin({
  kind: 'task_family',
  name: 'LinearRegressionFamily',
  description: 'example plugin: noisy linear regressions with sampled true weights and sampled data',
  schema: LinearRegressionSchema,
  create: (config) => new LinearRegressionFamily(config),
  cls: LinearRegressionFamily,
});
