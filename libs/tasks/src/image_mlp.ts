/**
 * MLP image classification tasks (reference `tasks/fixed/image_mlp.py`, `_MLPImageTask`): flatten the image, a
 * Haiku `hk.nets.MLP(hidden_sizes + [num_classes])`, mean softmax cross-entropy, normalizer
 * `clip(loss, 0, 1.5 ln C)` with NaN -> 1.5 ln C.
 *
 * Forward and backward are hand-written (no autodiff tape): for N stacked parameter sets the
 * whole step is ~30 batched ops. Two matMul layouts: `batched` (rank-3 matMul over the task axis;
 * fastest on the cpu backend) and `unstacked` (N plain 2-D matMuls, explicit transposes; the wasm
 * backend's XNNPACK fast path). The default picks by backend; see README for timings.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInitBatch, nativeUsable, nativeVariantArg, registerPlugin, treeLeaves, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, HostLossAndGrad, LossAndGrad, ModelState, Params } from './base';
import { imageDatasets } from './datasets/fashion_mnist';
import { imagenetDatasets } from './datasets/imagenet';
import { mnistDatasets } from './datasets/mnist';
import { BaseTask } from './task';
import { LOPT_IMAGE_MLP_KERNEL, imageMlpNative } from './native';

/** Hidden-layer activation of the fixed image MLP tasks. */
export type Activation = 'relu' | 'tanh' | 'sigmoid';
/**
 * Layout of the image MLP's matmuls over N stacked tasks: `batched` (one rank-3 matMul), `unstacked` (N 2-D
 * matMuls) or `auto` (chosen by backend).
 */
export type MatmulMode = 'batched' | 'unstacked' | 'auto';

/** The configurable part of an image MLP task; the schema holds every default. */
export const ImageMLPSchema = z
  .object({
    /** fashion_mnist (offline), mnist (datasets/mnist.ts) or imagenet16 (datasets/imagenet.ts) */
    datasetName: z.enum(['fashion_mnist', 'mnist', 'imagenet16']).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    hiddenSizes: z.array(z.number().int().positive()).default([32]),
    activation: z.enum(['relu', 'tanh', 'sigmoid']).default('relu'),
    matmulMode: z.enum(['auto', 'batched', 'unstacked']).default('auto'),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('_MLPImageTask'),
  })
  .strict();

/**
 * Options of {@link ImageMLPTask}: the fields of {@link ImageMLPSchema} (all optional) plus prebuilt
 * datasets.
 */
export type ImageMLPConfig = z.input<typeof ImageMLPSchema> & {
  /** Datasets to use (not serialisable, so not in the schema); otherwise built from datasetName / batchSize / imageSize. */
  datasets?: Datasets;
};

type Layer = { w: tf.Tensor; b: tf.Tensor };

function activate(act: Activation, x: tf.Tensor): tf.Tensor {
  switch (act) {
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
  }
}

/** d act / d pre-activation, from the activation's output h, times dh. */
function activationBackward(act: Activation, h: tf.Tensor, dh: tf.Tensor): tf.Tensor {
  switch (act) {
    case 'relu':
      return tf.mul(dh, tf.step(h));
    case 'tanh':
      return tf.mul(dh, tf.sub(1, tf.square(h)));
    case 'sigmoid':
      return tf.mul(dh, tf.mul(h, tf.sub(1, h)));
  }
}

/**
 * An MLP image classification task (reference `tasks/fixed/image_mlp.py`, `_MLPImageTask`), with a
 * hand-written forward and backward for N stacked tasks.
 */
export class ImageMLPTask extends BaseTask {
  readonly name: string;
  readonly hiddenSizes: number[];
  readonly activation: Activation;
  readonly imageSize: [number, number];
  readonly numClasses: number;
  readonly inputSize: number;
  matmulMode: MatmulMode;

  constructor(config: ImageMLPConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    const c = ImageMLPSchema.parse(rest);
    this.imageSize = c.imageSize;
    this.datasets =
      datasets ??
      (c.datasetName === 'mnist'
        ? mnistDatasets(c.batchSize, this.imageSize)
        : c.datasetName === 'imagenet16'
          ? imagenetDatasets(16, c.batchSize, this.imageSize)
          : imageDatasets(c.datasetName, c.batchSize, this.imageSize));
    this.hiddenSizes = c.hiddenSizes;
    this.activation = c.activation;
    this.name = c.name;
    this.matmulMode = c.matmulMode;
    this.numClasses = Number(this.datasets.extraInfo?.num_classes ?? 10);
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.inputSize = ab.image.shape.slice(1).reduce((a, b) => a * b, 1);
  }

  get sizes(): number[] {
    return [this.inputSize, ...this.hiddenSizes, this.numClasses];
  }

  layerName(i: number): string {
    return `mlp/~/linear_${i}`;
  }

  /**
   * Haiku-exact init per task. The reference's forward is
   * `hk.nets.MLP(sizes)(inp, dropout_rate=..., rng=hk.next_rng_key())`: the dropout key is drawn
   * before the MLP makes its parameters, so the layers get the second, third, ... keys.
   */
  initBatch(keys: PRNGKey[]): Params {
    const sizes = this.sizes;
    return haikuInitBatch(keys, (hk) => {
      hk.nextRngKey();
      hk.mlp(sizes[0], sizes.slice(1));
    });
  }

  private layers(params: Params): Layer[] {
    const p = params as Record<string, Layer>;
    const out: Layer[] = [];
    for (let i = 0; i + 1 < this.sizes.length; i++) {
      const l = p[this.layerName(i)];
      if (!l) throw new Error(`${this.name}: params lack '${this.layerName(i)}' (have ${Object.keys(p).join(', ')})`);
      out.push(l);
    }
    return out;
  }

  private mode(N: number): 'batched' | 'unstacked' | 'single' {
    if (N === 1) return 'single';
    if (this.matmulMode === 'auto') return tf.getBackend() === 'wasm' ? 'unstacked' : 'batched';
    return this.matmulMode;
  }

  /**
   * Forward (and, with `withGrad`, backward) for N stacked tasks. Returns per-task losses `[N]`
   * and, when asked, gradients stacked like params.
   */
  forwardBackward(params: Params, data: Batch, withGrad: boolean): { loss: tf.Tensor; grad?: Params } {
    // The kernel where it is built (LOPT_NATIVE, on the wasm and cpu backends), for ReLU networks
    // when no gradient tape records; otherwise the tf.js ops below, which stay the reference.
    if (this.activation === 'relu' && nativeUsable() && imageMlpNative()) return this.forwardBackwardNative(params, data, withGrad);
    return this.forwardBackwardOps(params, data, withGrad);
  }

  /** `forwardBackward` in tf.js ops: the readable implementation every kernel is tested against. */
  forwardBackwardOps(params: Params, data: Batch, withGrad: boolean): { loss: tf.Tensor; grad?: Params } {
    return tf.tidy(() => {
      const layers = this.layers(params);
      const d = data as { image: tf.Tensor; label: tf.Tensor };
      const N = layers[0].w.shape[0];
      const B = d.label.shape[d.label.shape.length - 1];
      const C = this.numClasses;
      const L = layers.length;
      // [N, B, C], float once here (each int32 use below would cast it again). Not oneHot(..., 'float32'):
      // tfjs-backend-wasm 4.22's OneHot writes int32 bits whatever the dtype.
      const onehot = tf.cast(tf.oneHot(tf.reshape(d.label, [N, B]), C), 'float32');
      const mode = this.mode(N);

      // Per-"group" matrices: one group of rank-3 tensors (batched), N groups of 2-D (unstacked),
      // or one group of 2-D (N = 1).
      const G = mode === 'unstacked' ? N : 1;
      const x0 = tf.reshape(d.image, mode === 'batched' ? [N, B, this.inputSize] : [N * B, this.inputSize]);
      const xs: tf.Tensor[] = mode === 'unstacked' ? tf.split(x0, N, 0) : [x0];
      const ws: tf.Tensor[][] = layers.map((l) =>
        mode === 'batched' ? [l.w] : mode === 'single' ? [tf.reshape(l.w, l.w.shape.slice(1))] : tf.unstack(l.w, 0),
      );
      const bs: tf.Tensor[][] = layers.map((l) =>
        mode === 'batched' ? [tf.expandDims(l.b, 1)] : mode === 'single' ? [l.b] : tf.unstack(l.b, 0),
      );
      const biasFor = (i: number, g: number) => bs[i][g];

      // forward: acts[g][i] is the input of layer i
      const acts: tf.Tensor[][] = [];
      const logitsParts: tf.Tensor[] = [];
      for (let g = 0; g < G; g++) {
        const a: tf.Tensor[] = [xs[g]];
        let h = xs[g];
        for (let i = 0; i < L; i++) {
          const z = tf.add(tf.matMul(h, ws[i][g]), biasFor(i, g));
          h = i + 1 < L ? activate(this.activation, z) : z;
          if (i + 1 < L) a.push(h);
        }
        acts.push(a);
        logitsParts.push(h);
      }
      const logits = tf.reshape(G === 1 ? logitsParts[0] : tf.concat(logitsParts, 0), [N, B, C]);
      const logp = tf.logSoftmax(logits);
      const loss = tf.div(tf.neg(tf.sum(tf.mul(onehot, logp), [1, 2])), B); // [N]
      if (!withGrad) return { loss };

      // backward: d loss_n / d logits = (softmax − onehot) / B
      const dlogits = tf.div(tf.sub(tf.exp(logp), onehot), B); // [N, B, C]
      const dl = mode === 'batched' ? dlogits : tf.reshape(dlogits, [N * B, C]);
      const dzs: tf.Tensor[] = mode === 'unstacked' ? tf.split(dl, N, 0) : [dl];
      // input transposed once for every task: [N, D, B] (or [D, B] for one task)
      const x0T = mode === 'batched' ? tf.transpose(x0, [0, 2, 1]) : mode === 'single' ? tf.transpose(x0) : null;
      const x0Ts: tf.Tensor[] | null = mode === 'unstacked' ? tf.unstack(tf.transpose(tf.reshape(x0, [N, B, this.inputSize]), [0, 2, 1]), 0) : null;
      const gw: tf.Tensor[][] = layers.map(() => []);
      const gb: tf.Tensor[][] = layers.map(() => []);
      for (let g = 0; g < G; g++) {
        let dz = dzs[g];
        for (let i = L - 1; i >= 0; i--) {
          const inp = acts[g][i];
          const rank = inp.shape.length;
          const inpT = i === 0 ? (x0Ts ? x0Ts[g] : x0T!) : rank === 3 ? tf.transpose(inp, [0, 2, 1]) : tf.transpose(inp);
          gw[i].push(tf.matMul(inpT, dz));
          gb[i].push(tf.sum(dz, rank - 2));
          if (i > 0) {
            const w = ws[i][g];
            const wT = rank === 3 ? tf.transpose(w, [0, 2, 1]) : tf.transpose(w);
            dz = activationBackward(this.activation, inp, tf.matMul(dz, wT));
          }
        }
      }
      const grad: Record<string, { w: tf.Tensor; b: tf.Tensor }> = {};
      layers.forEach((l, i) => {
        grad[this.layerName(i)] = {
          w: mode === 'unstacked' ? tf.stack(gw[i], 0) : tf.reshape(gw[i][0], l.w.shape),
          b: mode === 'unstacked' ? tf.stack(gb[i], 0) : tf.reshape(gb[i][0], l.b.shape),
        };
      });
      return { loss, grad };
    }) as { loss: tf.Tensor; grad?: Params };
  }

  /** `forwardBackward` as one native kernel for all N tasks (same values up to float rounding). */
  private forwardBackwardNative(params: Params, data: Batch, withGrad: boolean): { loss: tf.Tensor; grad?: Params } {
    return tf.tidy(() => {
      const layers = this.layers(params);
      const d = data as { image: tf.Tensor; label: tf.Tensor };
      const N = layers[0].w.shape[0];
      const B = d.label.shape[d.label.shape.length - 1];
      const L = layers.length;
      const inputs: Record<string, tf.Tensor> = {
        x: tf.reshape(d.image.dtype === 'float32' ? d.image : tf.cast(d.image, 'float32'), [N, B, this.inputSize]),
        label: tf.reshape(d.label.dtype === 'int32' ? d.label : tf.cast(d.label, 'int32'), [N, B]),
      };
      layers.forEach((l, i) => {
        inputs[`w${i}`] = l.w;
        inputs[`b${i}`] = l.b;
      });
      const out = tf.engine().runKernel(LOPT_IMAGE_MLP_KERNEL, inputs as any, { numLayers: L, withGrad } as any) as unknown as tf.Tensor[];
      if (!withGrad) return { loss: out[0] };
      const grad: Record<string, { w: tf.Tensor; b: tf.Tensor }> = {};
      layers.forEach((_, i) => (grad[this.layerName(i)] = { w: out[1 + i], b: out[1 + L + i] }));
      return { loss: out[0], grad };
    }) as { loss: tf.Tensor; grad?: Params };
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return this.forwardBackward(params, data, false).loss;
  }

  override valueAndGradBatch(
    params: Params,
    state: ModelState,
    _keys: PRNGKey[] | null,
    data: Batch,
    opts: { withAux?: boolean } = {},
  ): LossAndGrad {
    if (state !== null && state !== undefined) throw new Error(`${this.name}: this task has no model state`);
    const { loss, grad } = this.forwardBackward(params, data, true);
    const out: LossAndGrad = { loss, grad: grad!, state: null };
    if (opts.withAux) out.aux = {};
    return out;
  }

  /** The autodiff (tf.grads) value and gradient, for checking the hand-written backward. */
  valueAndGradBatchAutodiff(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch): LossAndGrad {
    return super.valueAndGradBatch(params, state, keys, data);
  }

  /**
   * The native kernel's loss and gradient on host memory (see `Task.hostLossAndGrad`): ReLU
   * networks where the kernel runs, float32 images and int32 labels; the normalizer as `normalizer`.
   */
  hostLossAndGrad(params: Params, step: Batch | null): HostLossAndGrad | null {
    const d = step as { image?: tf.Tensor; label?: tf.Tensor } | null;
    if (this.activation !== 'relu' || !nativeUsable() || !d?.image || !d.label) return null;
    const addon = imageMlpNative();
    if (!addon || d.image.dtype !== 'float32' || d.label.dtype !== 'int32') return null;
    const layers = this.layers(params);
    const [N, B] = d.label.shape;
    if (d.label.rank !== 2 || N !== layers[0].w.shape[0] || d.image.size !== N * B * this.inputSize) return null;
    // positions of the layers' leaves among the params' and of image and label among the batch's
    const leaves = treeLeaves<tf.Tensor>(params);
    const wAt = layers.map((l) => leaves.indexOf(l.w));
    const bAt = layers.map((l) => leaves.indexOf(l.b));
    const dataLeaves = treeLeaves<tf.Tensor>(step);
    const [imageAt, labelAt] = [dataLeaves.indexOf(d.image), dataLeaves.indexOf(d.label)];
    const sizes = Int32Array.from(this.sizes);
    const variant = nativeVariantArg();
    const maxval = Math.fround(1.5 * Math.log(this.numClasses));
    return {
      fixed: [],
      run: (_fixed, p, data, loss, grads) =>
        addon.imageMlpValueAndGrad(N, B, sizes, data[imageAt] as Float32Array, data[labelAt] as Int32Array, wAt.map((i) => p[i]), bAt.map((i) => p[i]), loss, wAt.map((i) => grads[i]), bAt.map((i) => grads[i]), variant),
      // clip to [0, maxval], NaN -> maxval (normalizer's clip then where)
      normalize: (loss) => {
        for (let i = 0; i < loss.length; i++) {
          const v = loss[i];
          loss[i] = Number.isNaN(v) ? maxval : v < 0 ? 0 : v > maxval ? maxval : v;
        }
      },
    };
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    const maxval = 1.5 * Math.log(this.numClasses);
    return tf.tidy(() => {
      // jnp.clip then nan_to_num: +inf -> maxval via the clip, NaN -> maxval; -inf clips to 0.
      const c = tf.clipByValue(loss, 0, maxval);
      return tf.where(tf.isNaN(loss), tf.fill(loss.shape, maxval), c);
    });
  }
}

// ---- the reference's fixed tasks (classes, so `new ImageMLP_FashionMnist8_Relu32()` reads as in the reference) ----
/**
 * ReLU MLP with one hidden layer of 32 on 8x8 Fashion-MNIST, batch 128 (reference
 * `tasks/fixed/image_mlp.py`).
 */
export class ImageMLP_FashionMnist8_Relu32 extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'fashion_mnist', batchSize: 128, imageSize: [8, 8], hiddenSizes: [32] });
  }
}
/**
 * ReLU MLP with one hidden layer of 32 on 16x16 Fashion-MNIST, batch 128 (reference
 * `tasks/fixed/image_mlp.py`).
 */
export class ImageMLP_FashionMnist16_Relu32 extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'fashion_mnist', batchSize: 128, imageSize: [16, 16], hiddenSizes: [32] });
  }
}
/**
 * ReLU MLP with one hidden layer of 32 on 32x32 Fashion-MNIST, batch 128 (reference
 * `tasks/fixed/image_mlp.py`).
 */
export class ImageMLP_FashionMnist32_Relu32 extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'fashion_mnist', batchSize: 128, imageSize: [32, 32], hiddenSizes: [32] });
  }
}
/**
 * ReLU MLP with two hidden layers of 128 on 28x28 Fashion-MNIST, batch 128 (reference
 * `tasks/fixed/image_mlp.py`).
 */
export class ImageMLP_FashionMnist_Relu128x128 extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'fashion_mnist', batchSize: 128, imageSize: [28, 28], hiddenSizes: [128, 128] });
  }
}

/** `ImageMLP_Mnist_128x128x128_Relu`: MLP 784-128-128-128-10 (relu) on 28x28 MNIST, batch 128. */
export class ImageMLP_Mnist_128x128x128_Relu extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'mnist', batchSize: 128, imageSize: [28, 28], hiddenSizes: [128, 128, 128] });
  }
}
/** `ImageMLP_Imagenet16_Relu256x256x256`: MLP 768-256-256-256-1000 (relu) on 16x16 ImageNet, batch 128. */
export class ImageMLP_Imagenet16_Relu256x256x256 extends ImageMLPTask {
  constructor() {
    super({ datasetName: 'imagenet16', batchSize: 128, imageSize: [16, 16], hiddenSizes: [256, 256, 256] });
  }
}

const fixed: Array<[new () => ImageMLPTask, string]> = [
  [ImageMLP_FashionMnist8_Relu32, 'MLP 64-32-10 (relu) on 8x8 Fashion-MNIST, batch 128'],
  [ImageMLP_FashionMnist16_Relu32, 'MLP 256-32-10 (relu) on 16x16 Fashion-MNIST, batch 128'],
  [ImageMLP_FashionMnist32_Relu32, 'MLP 1024-32-10 (relu) on 32x32 Fashion-MNIST, batch 128'],
  [ImageMLP_FashionMnist_Relu128x128, 'MLP 784-128-128-10 (relu) on 28x28 Fashion-MNIST, batch 128'],
  [ImageMLP_Mnist_128x128x128_Relu, 'MLP 784-128-128-128-10 (relu) on 28x28 MNIST, batch 128'],
  [ImageMLP_Imagenet16_Relu256x256x256, 'MLP 768-256-256-256-1000 (relu) on 16x16 ImageNet, batch 128'],
];
for (const [cls, description] of fixed) {
  registerPlugin({ kind: 'task', name: cls.name, description, schema: z.object({}).strict(), create: () => new cls(), cls });
}

registerPlugin({
  kind: 'task',
  name: 'ImageMLPTask',
  description: 'MLP image classifier on a named dataset (configurable size, hidden layers, activation)',
  schema: ImageMLPSchema,
  create: (c) => new ImageMLPTask(c),
  cls: ImageMLPTask,
});
