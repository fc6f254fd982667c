/**
 * MLP autoencoder tasks (reference `tasks/fixed/image_mlp_ae.py`, `_fc_ae_loss_fn`): flatten the
 * image, `hk.nets.MLP(hiddenUnits + [features], activation)`, and the loss is the mean over
 * features and batch of `(x − sigmoid(logits))²`. Normalizer `clip(loss, 0, 1)`.
 *
 * The reference's CIFAR-10 and MNIST variants wait for those datasets in lopt-ts; the
 * Fashion-MNIST one runs offline.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInitBatch, registerPlugin, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, Params } from './base';
import { imageDatasets } from './datasets/fashion_mnist';
import { mnistDatasets } from './datasets/mnist';
import { BaseTask } from './task';

/**
 * The configurable part of {@link ImageMLPAETask} (reference `tasks/fixed/image_mlp_ae.py`); the schema holds
 * every default.
 */
export const ImageMLPAESchema = z
  .object({
    /** fashion_mnist (offline) or mnist (datasets/mnist.ts) */
    datasetName: z.enum(['fashion_mnist', 'mnist']).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([28, 28]),
    hiddenUnits: z.array(z.number().int().positive()).default([128, 32, 128]),
    activation: z.enum(['relu']).default('relu'),
    /** Metric-key name; the reference's task class name by default. */
    name: z.string().default('_Task'),
  })
  .strict();
/**
 * Options of {@link ImageMLPAETask}: the fields of {@link ImageMLPAESchema} (all optional) plus prebuilt
 * datasets.
 */
export type ImageMLPAEOptions = z.input<typeof ImageMLPAESchema> & { datasets?: Datasets };

/**
 * An MLP autoencoder task on images (reference `tasks/fixed/image_mlp_ae.py`): mean squared error between the
 * image and the sigmoid of the reconstruction.
 */
export class ImageMLPAETask extends BaseTask {
  readonly name: string;
  readonly hiddenUnits: number[];
  readonly features: number;

  constructor(opts: ImageMLPAEOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ImageMLPAESchema.parse(rest);
    this.name = c.name;
    this.hiddenUnits = c.hiddenUnits;
    this.datasets = datasets ?? (c.datasetName === 'mnist' ? mnistDatasets(c.batchSize, c.imageSize) : imageDatasets(c.datasetName, c.batchSize, c.imageSize));
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.features = ab.image.shape.slice(1).reduce((a, b) => a * b, 1); // [batch, h, w, c]
  }

  /** haiku's init of `hk.nets.MLP(hiddenUnits + [features])` on the flattened image. */
  initBatch(keys: PRNGKey[]): Params {
    return haikuInitBatch(keys, (hk) => hk.mlp(this.features, [...this.hiddenUnits, this.features]));
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const p = params as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
      const image = (data as { image: tf.Tensor }).image;
      const [N, B] = image.shape;
      const x = tf.reshape(image, [N, B, this.features]);
      const depth = this.hiddenUnits.length + 1;
      let h = x;
      for (let i = 0; i < depth; i++) {
        const { w, b } = p[`mlp/~/linear_${i}`];
        h = tf.add(tf.matMul(h, w), tf.expandDims(b, 1));
        if (i + 1 < depth) h = tf.relu(h);
      }
      return tf.mean(tf.square(tf.sub(x, tf.sigmoid(h))), [1, 2]); // [N]
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.clipByValue(loss, 0, 1);
  }
}

/** `ImageMLPAE_FashionMnist_128x32x128_bs128`: 784 → 128 → 32 → 128 → 784, ReLU, batch 128. */
export class ImageMLPAE_FashionMnist_128x32x128_bs128 extends ImageMLPAETask {
  constructor() {
    super({ datasetName: 'fashion_mnist', batchSize: 128, hiddenUnits: [128, 32, 128] });
  }
}

/** `ImageMLPAE_Mnist_128x32x128_bs128`: the same autoencoder on MNIST (28x28, batch 128). */
export class ImageMLPAE_Mnist_128x32x128_bs128 extends ImageMLPAETask {
  constructor() {
    super({ datasetName: 'mnist', batchSize: 128, hiddenUnits: [128, 32, 128] });
  }
}

registerPlugin({
  kind: 'task',
  name: 'ImageMLPAE_Mnist_128x32x128_bs128',
  description: 'MLP autoencoder 784-128-32-128-784 on MNIST, batch 128 (tasks/fixed/image_mlp_ae.py)',
  schema: z.object({}).strict(),
  create: () => new ImageMLPAE_Mnist_128x32x128_bs128(),
  cls: ImageMLPAE_Mnist_128x32x128_bs128,
});
registerPlugin({
  kind: 'task',
  name: 'ImageMLPAE_FashionMnist_128x32x128_bs128',
  description: 'MLP autoencoder 784-128-32-128-784 on Fashion-MNIST, batch 128 (tasks/fixed/image_mlp_ae.py)',
  schema: z.object({}).strict(),
  create: () => new ImageMLPAE_FashionMnist_128x32x128_bs128(),
  cls: ImageMLPAE_FashionMnist_128x32x128_bs128,
});
registerPlugin({
  kind: 'task',
  name: 'ImageMLPAETask',
  description: 'MLP autoencoder on a named image dataset (configurable hidden units, batch and image size)',
  schema: ImageMLPAESchema,
  create: (c) => new ImageMLPAETask(c),
  cls: ImageMLPAETask,
});
