/**
 * Convnet image classification tasks (reference `tasks/fixed/conv.py`: `_cross_entropy_pool_loss`
 * and `_ConvTask`).
 *
 * The network: for each hidden size, `hk.Conv2D(size, 3, stride)` (SAME padding, stride 2 for the
 * first layer and 1 after, truncated-normal weights with stddev 1/√(9·C_in), zero bias), the
 * activation, then the normalizer (none, `hk.BatchNorm(create_scale, create_offset,
 * decay_rate=0.9)(x, is_training=True)` or `hk.LayerNorm(axis=-1, create_scale, create_offset)`);
 * then a mean (or max) over the spatial axes, `hk.Linear(num_classes)` and the mean softmax
 * cross-entropy. Normalizer: `clip(loss, 0, 1.5 ln C)` (NaN stays NaN, as `jnp.clip`).
 *
 * Batchnorm tasks carry model state (`init_with_state` / `loss_with_state`): per batch-norm module
 * `'<bn>/~/mean_ema'` and `'<bn>/~/var_ema'`, each `{counter: int32 [], hidden, average: [1,1,1,C]}`
 * (haiku's `ExponentialMovingAverage`, zero-debiased). Batch norm always runs in training mode, so
 * the loss never reads the state; each loss call returns the updated averages. As haiku's `init`
 * does, the initial state holds counter 0 and hidden 0 but `average` already set by the one
 * forward pass `init` makes on an all-ones batch.
 *
 * Values and gradients use tf.js autodiff (BaseTask.valueAndGradBatch); each of the N stacked
 * tasks runs its own convolutions (tf.js has no grouped conv2d). Without normalisation and with
 * the mean pool, where the native kernels are built and no gradient tape records, a step is one
 * native kernel instead (`LoptConvNetValueAndGrad`, conv_net.ts): the same values up to float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInitBatch, initializers, registerPlugin, registerWasmConvKernels, treeFlatten, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, BatchStream, Datasets, LossAndGrad, LossWithState, ModelState, Params } from './base';
import { convNetActivation, convNetLossAndGrad, convNetUsable, type ConvNetSpec } from './conv_net';
import { SPLITS } from './base';
import { cifarDatasets } from './datasets/cifar';
import { fashionMnistDatasets } from './datasets/fashion_mnist';
import { imagenetDatasets } from './datasets/imagenet';
import { SplitDatasets, type AbstractLeaf } from './datasets/splits';
import { BaseTask, tidyTree } from './task';

// Conv2DBackpropFilter on wasm (missing there) and a fast one on cpu (the stock one is ~100x slower).
registerWasmConvKernels();

/** Datasets a {@link ConvTask} can name (the imagenet ones read the reference's downsampled-ImageNet TFRecords, datasets/imagenet.ts). */
export const CONV_DATASETS = ['cifar10', 'cifar100', 'fashion_mnist', 'imagenet32', 'imagenet16'] as const;
/** One of {@link CONV_DATASETS}. */
export type ConvDatasetName = (typeof CONV_DATASETS)[number];
/** Normalisation after each conv layer of a {@link ConvTask}: none, `hk.BatchNorm` or `hk.LayerNorm`. */
export type ConvNorm = 'none' | 'batchnorm' | 'layernorm';

/** The configurable part of a conv task; the schema holds every default. */
export const ConvTaskSchema = z
  .object({
    datasetName: z.enum(CONV_DATASETS).default('cifar10'),
    batchSize: z.number().int().positive().default(128),
    /** Default: the dataset's own size (32x32 CIFAR / imagenet32, 28x28 Fashion-MNIST, 16x16 imagenet16). */
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
    hiddenUnits: z.array(z.number().int().positive()).min(1).default([32, 64, 64]),
    activation: z.enum(['relu', 'tanh']).default('relu'),
    norm: z.enum(['none', 'batchnorm', 'layernorm']).default('none'),
    pool: z.enum(['avg', 'max']).default('avg'),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('_ConvTask'),
  })
  .strict();

/**
 * Options of {@link ConvTask}: the fields of {@link ConvTaskSchema} (all optional) plus prebuilt datasets.
 */
export type ConvTaskConfig = z.input<typeof ConvTaskSchema> & {
  /** Datasets to use (not serialisable, so not in the schema); otherwise built from datasetName / batchSize / imageSize. */
  datasets?: Datasets;
};

/** A split whose batches cannot be made here (no loader for the dataset); its abstract batch works, so init does. */
class UnavailableStream implements BatchStream {
  constructor(
    private readonly abstract: Record<string, AbstractLeaf>,
    private readonly batchSize: number,
    private readonly why: string,
  ) {}
  next(): Batch {
    throw new Error(this.why);
  }
  abstractBatch(): PyTree {
    return Object.fromEntries(Object.entries(this.abstract).map(([k, v]) => [k, { shape: [this.batchSize, ...v.shape], dtype: v.dtype }]));
  }
  getState() {
    return { seed: 0, epoch: 0, position: 0 };
  }
  setState(): void {
    // nothing to move
  }
}

const NATIVE_SIZE: Record<ConvDatasetName, [number, number]> = {
  cifar10: [32, 32],
  cifar100: [32, 32],
  fashion_mnist: [28, 28],
  imagenet32: [32, 32],
  imagenet16: [16, 16],
};

/** The datasets a conv task names (`image.cifar10_datasets(...)` etc.); imagenet32/16 read the reference's TFRecords (datasets/imagenet.ts). */
export function convDatasets(name: ConvDatasetName, batchSize: number, imageSize: [number, number] = NATIVE_SIZE[name]): Datasets {
  switch (name) {
    case 'cifar10':
    case 'cifar100':
      return cifarDatasets(name, batchSize, imageSize);
    case 'fashion_mnist':
      return fashionMnistDatasets(batchSize, imageSize);
    case 'imagenet32':
      return imagenetDatasets(32, batchSize, imageSize);
    case 'imagenet16':
      return imagenetDatasets(16, batchSize, imageSize);
  }
}

/**
 * Datasets lopt-ts cannot load (no loader): their abstract batch (`image` [B, H, W, C] float32,
 * `label` [B] int32) and `num_classes` work, so a task can be initialised; every batch throws `why`.
 */
export function unavailableDatasets(name: string, batchSize: number, imageShape: [number, number, number], numClasses: number, why: string): Datasets {
  const abstract = {
    image: { shape: [...imageShape], dtype: 'float32' as tf.DataType },
    label: { shape: [], dtype: 'int32' as tf.DataType },
  };
  const streams = Object.fromEntries(SPLITS.map((s) => [s, new UnavailableStream(abstract, batchSize, why)]));
  return new SplitDatasets(streams as any, { num_classes: numClasses, name, image_size: [imageShape[0], imageShape[1]], batch_size: batchSize });
}

type ConvParams = { w: tf.Tensor; b: tf.Tensor };
type NormParams = { scale: tf.Tensor; offset: tf.Tensor };
/** One haiku `ExponentialMovingAverage`'s state: `counter` (int32 scalar), `hidden` and the zero-debiased `average`. */
export type EmaState = { counter: tf.Tensor; hidden: tf.Tensor; average: tf.Tensor };

const BN_DECAY = 0.9;
const NORM_EPS = 1e-5;

/** haiku module names: `conv2_d`, `conv2_d_1`, … (likewise `batch_norm`, `layer_norm`). */
function moduleName(base: string, i: number): string {
  return i === 0 ? base : `${base}_${i}`;
}

/** Split every leaf of a stacked tree along axis 0: N trees, one per task. */
export function unstackTree<T extends PyTree>(tree: T, n: number): T[] {
  const [leaves, def] = treeFlatten<tf.Tensor>(tree);
  const rows = leaves.map((l) => (n === 1 ? [tf.squeeze(l, [0])] : tf.unstack(l, 0)));
  return Array.from({ length: n }, (_, i) => treeUnflatten(def, rows.map((r) => r[i])) as T);
}

/** Stack N trees of the same structure along a new axis 0. */
export function stackTrees<T extends PyTree>(trees: T[]): T {
  const flat = trees.map((t) => treeFlatten<tf.Tensor>(t));
  const def = flat[0][1];
  return treeUnflatten(def, flat[0][0].map((_, j) => tf.stack(flat.map((f) => f[0][j]), 0))) as T;
}

/** One step of haiku's zero-debiased `ExponentialMovingAverage(decay)` from `prev` (null: counter 0, hidden 0). */
export function emaUpdate(prev: EmaState | null, value: tf.Tensor): EmaState {
  const counter = tf.add(prev ? prev.counter : tf.scalar(0, 'int32'), tf.scalar(1, 'int32'));
  const decay = tf.scalar(BN_DECAY);
  const one = tf.scalar(1);
  const hidden0 = prev ? prev.hidden : tf.zerosLike(value);
  const hidden = tf.add(tf.mul(hidden0, decay), tf.mul(value, tf.sub(one, decay)));
  const average = tf.div(hidden, tf.sub(one, tf.pow(decay, tf.cast(counter, 'float32'))));
  return { counter, hidden, average };
}

/**
 * A convnet image classification task (reference `tasks/fixed/conv.py`, `_ConvTask`): conv layers with
 * optional batch/layer norm, spatial pooling, a linear head and softmax cross-entropy.
 */
export class ConvTask extends BaseTask {
  readonly name: string;
  readonly hiddenUnits: number[];
  readonly activation: 'relu' | 'tanh';
  readonly norm: ConvNorm;
  readonly pool: 'avg' | 'max';
  readonly numClasses: number;
  /** One example's `[H, W, C]`. */
  readonly imageShape: [number, number, number];

  constructor(config: ConvTaskConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    const c = ConvTaskSchema.parse(rest);
    this.datasets = datasets ?? convDatasets(c.datasetName, c.batchSize, c.imageSize ?? NATIVE_SIZE[c.datasetName]);
    this.hiddenUnits = c.hiddenUnits;
    this.activation = c.activation;
    this.norm = c.norm;
    this.pool = c.pool;
    this.name = c.name;
    this.numClasses = Number(this.datasets.extraInfo?.num_classes ?? 10);
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.imageShape = ab.image.shape.slice(1) as [number, number, number];
  }

  get strides(): number[] {
    return this.hiddenUnits.map((_, i) => (i === 0 ? 2 : 1));
  }

  /**
   * Haiku-exact init per task: only the conv and linear weights draw keys (in layer order);
   * biases and offsets are zeros, scales ones.
   */
  initBatch(keys: PRNGKey[]): Params {
    return haikuInitBatch(keys, (hk) => {
      let cin = this.imageShape[2];
      this.hiddenUnits.forEach((h, i) => {
        const conv = moduleName('conv2_d', i);
        hk.getParameter(conv, 'w', [3, 3, cin, h], initializers.truncatedNormal({ stddev: 1 / Math.sqrt(9 * cin) }));
        hk.getParameter(conv, 'b', [h], initializers.zeros());
        if (this.norm === 'batchnorm') {
          hk.getParameter(moduleName('batch_norm', i), 'scale', [1, 1, 1, h], initializers.ones());
          hk.getParameter(moduleName('batch_norm', i), 'offset', [1, 1, 1, h], initializers.zeros());
        } else if (this.norm === 'layernorm') {
          hk.getParameter(moduleName('layer_norm', i), 'scale', [h], initializers.ones());
          hk.getParameter(moduleName('layer_norm', i), 'offset', [h], initializers.zeros());
        }
        cin = h;
      });
      hk.linear('linear', cin, this.numClasses);
    });
  }

  /**
   * `init_with_state`: params, and for batchnorm tasks the EMA state haiku's `init` returns
   * (counter 0, hidden 0, average = the statistics of the forward pass on an all-ones batch;
   * every image of that batch is the same, so one image gives the same statistics as 128).
   */
  override initWithStateBatch(keys: PRNGKey[]): [Params, ModelState] {
    const params = this.initBatch(keys);
    if (this.norm !== 'batchnorm') return [params, null];
    const state = tidyTree(() => {
      const ones = tf.ones([1, ...this.imageShape]);
      const label = tf.zeros([1], 'int32');
      const per = unstackTree(params, keys.length).map((p) => {
        const s = this.forwardOne(p as Record<string, any>, null, ones, label).state!;
        const out: Record<string, EmaState> = {};
        for (const [k, v] of Object.entries(s)) out[k] = { counter: tf.zerosLike(v.counter), hidden: tf.zerosLike(v.hidden), average: v.average };
        return out;
      });
      return stackTrees(per);
    });
    return [params, state];
  }

  /** One task's forward: mean loss over the batch and (batchnorm) the updated EMA state. */
  forwardOne(
    p: Record<string, any>,
    state: Record<string, EmaState> | null,
    image: tf.Tensor,
    label: tf.Tensor,
  ): { loss: tf.Scalar; state: Record<string, EmaState> | null } {
    let net = image as tf.Tensor4D;
    const newState: Record<string, EmaState> = {};
    this.hiddenUnits.forEach((_, i) => {
      const conv = p[moduleName('conv2_d', i)] as ConvParams;
      net = tf.add(tf.conv2d(net, conv.w as tf.Tensor4D, this.strides[i], 'same'), conv.b);
      net = this.activation === 'relu' ? tf.relu(net) : tf.tanh(net);
      if (this.norm === 'batchnorm') {
        const name = moduleName('batch_norm', i);
        const bn = p[name] as NormParams;
        const mean = tf.mean(net, [0, 1, 2], true);
        const meanOfSquares = tf.mean(tf.square(net), [0, 1, 2], true);
        const variance = tf.sub(meanOfSquares, tf.square(mean));
        newState[`${name}/~/mean_ema`] = emaUpdate(state ? state[`${name}/~/mean_ema`] : null, mean);
        newState[`${name}/~/var_ema`] = emaUpdate(state ? state[`${name}/~/var_ema`] : null, variance);
        const inv = tf.mul(bn.scale, tf.rsqrt(tf.add(variance, NORM_EPS)));
        net = tf.add(tf.mul(tf.sub(net, mean), inv), bn.offset);
      } else if (this.norm === 'layernorm') {
        const ln = p[moduleName('layer_norm', i)] as NormParams;
        const mean = tf.mean(net, -1, true);
        const variance = tf.mean(tf.square(tf.sub(net, mean)), -1, true);
        const inv = tf.mul(ln.scale, tf.rsqrt(tf.add(variance, NORM_EPS)));
        net = tf.add(tf.mul(inv, tf.sub(net, mean)), ln.offset);
      }
    });
    const pooled = this.pool === 'avg' ? tf.mean(net, [1, 2]) : tf.max(net, [1, 2]);
    const lin = p.linear as ConvParams;
    const logits = tf.add(tf.matMul(pooled, lin.w), lin.b);
    // Not oneHot(..., 'float32'): tfjs-backend-wasm 4.22's OneHot writes int32 bits whatever the dtype.
    const onehot = tf.cast(tf.oneHot(tf.cast(label, 'int32'), this.numClasses), 'float32');
    const lossVec = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1));
    return { loss: tf.mean(lossVec) as tf.Scalar, state: this.norm === 'batchnorm' ? newState : null };
  }

  /** The net as the native convnet kernel (conv_net.ts) runs it, or null where it does not (normalisation, max pool). */
  private nativeSpec(): ConvNetSpec | null {
    if (this.norm !== 'none' || this.pool !== 'avg') return null;
    return { layers: this.hiddenUnits.map((h, i) => ({ channels: h, kernel: 3, stride: this.strides[i] })), numClasses: this.numClasses };
  }

  /** The whole-network native kernel ({@link convNetLossAndGrad}) where it applies and runs, else null. */
  private nativeLossAndGrad(params: Params, data: Batch, withGrad: boolean): LossAndGrad | null {
    const spec = this.nativeSpec();
    return spec && convNetUsable() ? convNetLossAndGrad(spec, [convNetActivation(this.activation)], params, data, withGrad) : null;
  }

  /** The whole-network native kernel where it applies (no normalisation, mean pool) and runs; else autodiff of the tf.js ops. */
  override valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    const r = this.nativeLossAndGrad(params, data, true);
    if (r) return opts.withAux ? { ...r, aux: {} } : r;
    return super.valueAndGradBatch(params, state, keys, data, opts);
  }

  override lossWithStateBatch(params: Params, state: ModelState, _keys: PRNGKey[] | null, data: Batch): LossWithState {
    const r = this.nativeLossAndGrad(params, data, false);
    if (r) return { loss: r.loss, state: null };
    return tidyTree(() => {
      const d = data as { image: tf.Tensor; label: tf.Tensor };
      const N = d.image.shape[0];
      const ps = unstackTree(params, N);
      const ss = state ? unstackTree(state as Record<string, EmaState>, N) : null;
      const images = N === 1 ? [tf.squeeze(d.image, [0])] : tf.unstack(d.image, 0);
      const labels = N === 1 ? [tf.squeeze(d.label, [0])] : tf.unstack(d.label, 0);
      const outs = ps.map((p, n) => this.forwardOne(p as Record<string, any>, ss ? ss[n] : null, images[n], labels[n]));
      return {
        loss: tf.stack(outs.map((o) => o.loss)),
        state: this.norm === 'batchnorm' ? stackTrees(outs.map((o) => o.state!)) : null,
      };
    });
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const out = this.lossWithStateBatch(params, null, keys, data);
      return out.loss;
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.clipByValue(loss, 0, 1.5 * Math.log(this.numClasses));
  }
}

// ---- the reference's fixed tasks (conv.py), then the same nets on Fashion-MNIST (lopt-ts additions) ----
type Fixed = { name: string; description: string; config: Omit<ConvTaskConfig, 'name' | 'datasets'> };

const RELU_3 = [32, 64, 64];
/**
 * The fixed conv tasks (reference `tasks/fixed/conv.py`, plus lopt-ts's Fashion-MNIST variants): name,
 * description and config of each; each is registered as a task plugin.
 */
export const FIXED_CONV_TASKS: Fixed[] = [
  { name: 'Conv_Cifar10_8_16x32', description: 'conv 16-32 (relu, avg pool) on 8x8 CIFAR-10, batch 128', config: { datasetName: 'cifar10', imageSize: [8, 8], hiddenUnits: [16, 32] } },
  { name: 'Conv_Cifar10_16_32x64x64', description: 'conv 32-64-64 (relu) on 16x16 CIFAR-10, batch 128', config: { datasetName: 'cifar10', imageSize: [16, 16], hiddenUnits: RELU_3 } },
  { name: 'Conv_Cifar10_32x64x64', description: 'conv 32-64-64 (relu) on 32x32 CIFAR-10, batch 128', config: { datasetName: 'cifar10', hiddenUnits: RELU_3 } },
  { name: 'Conv_Cifar100_32x64x64', description: 'conv 32-64-64 (relu) on 32x32 CIFAR-100, batch 128', config: { datasetName: 'cifar100', hiddenUnits: RELU_3 } },
  { name: 'Conv_Cifar100_32x64x64_BS32', description: 'conv 32-64-64 (relu) on 32x32 CIFAR-100, batch 32', config: { datasetName: 'cifar100', batchSize: 32, hiddenUnits: RELU_3 } },
  { name: 'Conv_Cifar100_32x64x64_Tanh', description: 'conv 32-64-64 (tanh) on 32x32 CIFAR-100, batch 128', config: { datasetName: 'cifar100', hiddenUnits: RELU_3, activation: 'tanh' } },
  { name: 'Conv_Cifar10_32x64x64_Tanh', description: 'conv 32-64-64 (tanh) on 32x32 CIFAR-10, batch 128', config: { datasetName: 'cifar10', hiddenUnits: RELU_3, activation: 'tanh' } },
  { name: 'Conv_imagenet32_16_32x64x64', description: 'conv 32-64-64 (relu) on 32x32 ImageNet, 1000 classes (files: see datasets/imagenet.ts)', config: { datasetName: 'imagenet32', hiddenUnits: RELU_3 } },
  { name: 'Conv_imagenet16_16_64x128x128x128', description: 'conv 64-128-128-128 (relu) on 16x16 ImageNet, 1000 classes (files: see datasets/imagenet.ts)', config: { datasetName: 'imagenet16', hiddenUnits: [64, 128, 128, 128] } },
  { name: 'Conv_Cifar10_32x64x64_batchnorm', description: 'conv 32-64-64 (relu, batch norm, model state) on 32x32 CIFAR-10, batch 128', config: { datasetName: 'cifar10', hiddenUnits: RELU_3, norm: 'batchnorm' } },
  { name: 'Conv_Cifar10_32x64x64_layernorm', description: 'conv 32-64-64 (relu, layer norm) on 32x32 CIFAR-10, batch 128', config: { datasetName: 'cifar10', hiddenUnits: RELU_3, norm: 'layernorm' } },
  // lopt-ts additions: the same nets on Fashion-MNIST (1 channel, 28x28 native), which runs offline.
  { name: 'Conv_FashionMnist_8_16x32', description: 'conv 16-32 (relu) on 8x8 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', imageSize: [8, 8], hiddenUnits: [16, 32] } },
  { name: 'Conv_FashionMnist_16_32x64x64', description: 'conv 32-64-64 (relu) on 16x16 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', imageSize: [16, 16], hiddenUnits: RELU_3 } },
  { name: 'Conv_FashionMnist_32x64x64', description: 'conv 32-64-64 (relu) on 28x28 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', hiddenUnits: RELU_3 } },
  { name: 'Conv_FashionMnist_32x64x64_Tanh', description: 'conv 32-64-64 (tanh) on 28x28 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', hiddenUnits: RELU_3, activation: 'tanh' } },
  { name: 'Conv_FashionMnist_32x64x64_batchnorm', description: 'conv 32-64-64 (relu, batch norm) on 28x28 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', hiddenUnits: RELU_3, norm: 'batchnorm' } },
  { name: 'Conv_FashionMnist_32x64x64_layernorm', description: 'conv 32-64-64 (relu, layer norm) on 28x28 Fashion-MNIST, batch 128 (lopt-ts addition)', config: { datasetName: 'fashion_mnist', hiddenUnits: RELU_3, norm: 'layernorm' } },
];

/** A fixed conv task by its reference name (e.g. `convTask('Conv_Cifar10_32x64x64')`); `datasets` replaces the named ones (tests, fixtures). */
export function convTask(name: string, opts: { datasets?: Datasets } = {}): ConvTask {
  const f = FIXED_CONV_TASKS.find((t) => t.name === name);
  if (!f) throw new Error(`unknown conv task '${name}'; allowed: ${FIXED_CONV_TASKS.map((t) => t.name).join(', ')}`);
  return new ConvTask({ ...f.config, name: f.name, datasets: opts.datasets });
}

for (const f of FIXED_CONV_TASKS) {
  // One class per name, so the registry can tell a re-registration from a clash.
  const cls = { [f.name]: class extends ConvTask {
    constructor() {
      super({ ...f.config, name: f.name });
    }
  } }[f.name];
  registerPlugin({ kind: 'task', name: f.name, description: f.description, schema: z.object({}).strict(), create: () => new cls(), cls });
}

registerPlugin({
  kind: 'task',
  name: 'ConvTask',
  description: 'convnet image classifier (3x3 convs, stride 2 then 1, avg/max pool, linear) on a named dataset',
  schema: ConvTaskSchema,
  create: (c) => new ConvTask(c),
  cls: ConvTask,
});
