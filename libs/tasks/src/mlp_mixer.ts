/**
 * MLP-Mixer image classification tasks (reference `tasks/fixed/mlp_mixer.py`, `MLPMixerTask`, over
 * `vision_transformer`'s vit_jax/models_mixer.py `MlpMixer`, a flax module).
 *
 * The network: a patch "stem" `nn.Conv(hidden_dim, (P, P), strides=(P, P))` (flax's default SAME
 * padding), the patch grid flattened to T tokens, `num_blocks` `MixerBlock`s (LayerNorm, a token-
 * mixing `MlpBlock(tokens_mlp_dim)` over the token axis, residual; LayerNorm, a channel-mixing
 * `MlpBlock(channels_mlp_dim)`, residual; `MlpBlock(d)` = Dense(d), gelu, Dense(back)), a final
 * `pre_head_layer_norm`, the mean over tokens and a zero-initialised `head` Dense. Loss: mean
 * softmax cross-entropy; `train=True` changes nothing (the model has no dropout).
 * Normalizer: `clip(10 · nan_to_num(loss, ln 2C) / ln 2C, 0, 10)`.
 *
 * Parameters are flax variables `{params: {stem, MixerBlock_<i>: {LayerNorm_0, token_mixing:
 * {Dense_0, Dense_1}, LayerNorm_1, channel_mixing: {...}}, pre_head_layer_norm, head}}`, flax-exact
 * for the same key (flax_modules.ts). Values and gradients use tf.js autodiff over N stacked tasks,
 * except inside each MlpBlock (`mixerMlpBlock`: a written-out gradient that recomputes the hidden
 * layer, so the wasm backend's 4 GiB heap holds batch 128 and beyond).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { registerPlugin, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, Params } from './base';
import { unavailableDatasets } from './conv';
import { imagenetDatasets } from './datasets/imagenet';
import { cifarDatasets } from './datasets/cifar';
import { fashionMnistDatasets } from './datasets/fashion_mnist';
import { denseOf, flaxInitBatch, flaxInitializers, flaxLayerNorm, leaf, meanCrossEntropy, mixerVitNormalizer, patchEmbed, sub, type FlaxScope, type FlaxTree } from './flax_modules';
import { geluValue, geluWithDerivative, linear } from './lm_modules';
import { BaseTask } from './task';

/** `matMul(a, b)` with b's last two axes swapped (an explicit transpose: see core's wasm matMul gradient). */
function matMulBT(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.matMul(a, tf.transpose(b, [0, 2, 1]));
}

const numel = (t: tf.Tensor) => t.size;

/**
 * `matMul(a, b)` with a's last two axes swapped, for a [N, M, I], b [N, M, O] (a weight gradient,
 * summed over the long axis M). Either aᵀ·b, transposing a, or (bᵀ·a)ᵀ, transposing b and the
 * [I, O] result, whichever moves fewer values: transposing a token-mixing hidden layer (M = B·D
 * rows of tokens_mlp_dim) took ~0.5 s on wasm, while b and the result there are ~100x smaller.
 * (0.3: roughly what the wasm matMul's packing of its second operand costs per value against a
 * transpose.)
 */
function matMulAT(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [I, O] = [a.shape[2]!, b.shape[2]!];
  const viaA = numel(a) + 0.3 * numel(b);
  const viaB = numel(b) + a.shape[0]! * I * O + 0.3 * numel(a);
  if (viaA <= viaB) return tf.tidy(() => tf.matMul(tf.transpose(a, [0, 2, 1]), b));
  return tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(b, [0, 2, 1]), a), [0, 2, 1]));
}

/**
 * `[matMulAT(x, dh), Σ_M dh]` for x [N, M, I], dh [N, M, H]: a dense layer's kernel and bias
 * gradients from one product, [x, 1]ᵀ·dh (the bias row is the sum over M). tf.js wasm reduces a
 * middle axis by transposing it last first (~0.7 s for a token-mixing hidden layer at batch 128).
 */
function denseGrads(x: tf.Tensor, dh: tf.Tensor): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const [N, M, I] = x.shape as [number, number, number];
    const H = dh.shape[2]!;
    const both = matMulAT(tf.concat([x, tf.ones([N, M, 1])], 2), dh); // [N, I + 1, H]
    return [tf.slice(both, [0, 0, 0], [N, I, H]), tf.reshape(tf.slice(both, [0, I, 0], [N, 1, H]), [N, H])];
  });
}

/**
 * models_mixer.py's `MlpBlock` per task, `Dense_1(gelu(Dense_0(x)))` for x [N, M, I], w0 [N, I, H],
 * b0 [N, H], w1 [N, H, O], b1 [N, O], as one differentiable op that saves only its inputs and
 * recomputes the hidden activations in the backward pass. The token-mixing hidden layer holds
 * B·hidden_dim·tokens_mlp_dim floats (100 MB per tensor at batch 128 for tiny16); autodiff of the
 * composed ops kept several of them per block (saved activations and every intermediate gradient,
 * which tf.js frees only at the end of backprop) and exhausted the wasm backend's 4 GiB heap
 * (`Aborted()` / `memory access out of bounds`). Same forward ops, so the same values; the
 * gradient is built from tf ops, so nested gradients flow through it.
 */
const mlpBlockOp = tf.customGrad(((x: tf.Tensor, w0: tf.Tensor, b0: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w0, b0, w1, b1]);
  return {
    value: linear(geluValue(linear(x, w0, b0)), w1, b1),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        // Hidden-size tensors are disposed as soon as they are used (peak ~5 of them).
        const [xs, w0s, b0s, w1s, b1s] = saved;
        const h = tf.tidy(() => linear(xs, w0s, b0s));
        const [g, gd] = geluWithDerivative(h);
        h.dispose();
        const dw1 = matMulAT(g, dy);
        g.dispose();
        const db1 = tf.reshape(tf.sum(dy, 1), b1s.shape);
        const dg = matMulBT(dy, w1s);
        const dh = tf.mul(dg, gd);
        tf.dispose([dg, gd]);
        const [dw0, db0] = denseGrads(xs, dh);
        return [tf.tidy(() => matMulBT(dh, w0s)), dw0, tf.reshape(db0, b0s.shape), dw1, db1];
      }),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** {@link mlpBlockOp} on x [N, ..., I] with the flax `MlpBlock` subtree m (`Dense_0`, `Dense_1`). */
export function mixerMlpBlock(m: FlaxTree, x: tf.Tensor): tf.Tensor {
  const d0 = sub(m, 'Dense_0');
  const d1 = sub(m, 'Dense_1');
  const w0 = leaf(d0, 'kernel');
  const w1 = leaf(d1, 'kernel');
  const [N, I] = w0.shape as [number, number, number];
  const O = (w1.shape as [number, number, number])[2];
  const y = mlpBlockOp(tf.reshape(x, [N, -1, I]), w0, leaf(d0, 'bias'), w1, leaf(d1, 'bias'));
  return tf.reshape(y, [...x.shape.slice(0, -1), O]);
}

/** The datasets the Mixer and ViT tasks name; ImageNet 64x64 and Food-101 have no loader in lopt-ts. */
export const MIXER_VIT_DATASETS = ['imagenet64', 'food101_64', 'cifar100', 'fashion_mnist'] as const;
/** One of {@link MIXER_VIT_DATASETS}. */
export type MixerVitDatasetName = (typeof MIXER_VIT_DATASETS)[number];

/**
 * `image.imagenet64_datasets(bs, (64, 64))`, `image.food101_datasets(bs, (64, 64))`,
 * `image.cifar100_datasets(bs)` (32x32), and Fashion-MNIST (28x28, lopt-ts addition). ImageNet reads
 * the reference's imagenet2012_64 TFRecords (datasets/imagenet.ts); Food-101 can be initialised but
 * its batches throw (no loader).
 */
export function mixerVitDatasets(name: MixerVitDatasetName, batchSize: number): Datasets {
  switch (name) {
    case 'cifar100':
      return cifarDatasets('cifar100', batchSize, [32, 32]);
    case 'fashion_mnist':
      return fashionMnistDatasets(batchSize, [28, 28]);
    case 'imagenet64':
      return imagenetDatasets(64, batchSize, [64, 64]);
    case 'food101_64':
      return unavailableDatasets(name, batchSize, [64, 64, 3], 101, `food101_64: lopt-ts has no loader for Food-101; the task can be initialised but not trained`);
  }
}

/** The image shape [H, W, C] and class count a task's datasets report. */
export function imageTaskShape(datasets: Datasets): { imageShape: [number, number, number]; numClasses: number } {
  const ab = datasets.split('train').abstractBatch() as { image: { shape: number[] } };
  const numClasses = Number(datasets.extraInfo?.num_classes);
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new Error('the datasets do not report num_classes');
  return { imageShape: ab.image.shape.slice(1) as [number, number, number], numClasses };
}

/** The configurable part of a Mixer task (models_mixer.MlpMixer's fields); the schema holds the defaults (tiny16). */
export const MLPMixerSchema = z
  .object({
    datasetName: z.enum(MIXER_VIT_DATASETS).default('cifar100'),
    batchSize: z.number().int().positive().default(128),
    patchSize: z.number().int().positive().default(16),
    hiddenDim: z.number().int().positive().default(512),
    numBlocks: z.number().int().nonnegative().default(5),
    tokensMlpDim: z.number().int().positive().default(384),
    channelsMlpDim: z.number().int().positive().default(2048),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('MLPMixerTask'),
  })
  .strict();

/** Options of {@link MLPMixerTask}: the schema's fields, and datasets that replace the named ones. */
export type MLPMixerConfig = z.input<typeof MLPMixerSchema> & { datasets?: Datasets };

/** `MLPMixerTask(cfg, datasets)`: an MLP-Mixer classifier. */
export class MLPMixerTask extends BaseTask {
  readonly name: string;
  readonly config: z.output<typeof MLPMixerSchema>;
  readonly imageShape: [number, number, number];
  readonly numClasses: number;

  constructor(config: MLPMixerConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    this.config = MLPMixerSchema.parse(rest);
    this.name = this.config.name;
    this.datasets = datasets ?? mixerVitDatasets(this.config.datasetName, this.config.batchSize);
    ({ imageShape: this.imageShape, numClasses: this.numClasses } = imageTaskShape(this.datasets));
  }

  /** Tokens after the SAME-padded patch stem. */
  get numTokens(): number {
    const P = this.config.patchSize;
    return Math.ceil(this.imageShape[0] / P) * Math.ceil(this.imageShape[1] / P);
  }

  /** flax-exact `init` per task key. */
  initBatch(keys: PRNGKey[]): Params {
    const c = this.config;
    const P = c.patchSize;
    const D = c.hiddenDim;
    const T = this.numTokens;
    const mlpBlock = (s: FlaxScope, d: number, width: number) => {
      s.dense('Dense_0', width, d);
      s.dense('Dense_1', d, width);
    };
    return flaxInitBatch(keys, (root) => {
      const stem = root.child('stem');
      stem.param('kernel', [P, P, this.imageShape[2], D], flaxInitializers.lecunNormal());
      stem.param('bias', [D], flaxInitializers.zeros());
      for (let i = 0; i < c.numBlocks; i++) {
        const b = root.child(`MixerBlock_${i}`);
        b.layerNorm('LayerNorm_0', D);
        mlpBlock(b.child('token_mixing'), c.tokensMlpDim, T);
        b.layerNorm('LayerNorm_1', D);
        mlpBlock(b.child('channel_mixing'), c.channelsMlpDim, D);
      }
      root.layerNorm('pre_head_layer_norm', D);
      root.dense('head', D, this.numClasses, flaxInitializers.zeros());
    });
  }

  /** How many values one task's params hold (what `initBatch` makes), from the config alone. */
  numParams(): number {
    const c = this.config;
    const D = c.hiddenDim;
    const T = this.numTokens;
    const dense = (i: number, o: number) => i * o + o;
    const block = 2 * 2 * D + dense(T, c.tokensMlpDim) + dense(c.tokensMlpDim, T) + dense(D, c.channelsMlpDim) + dense(c.channelsMlpDim, D);
    return c.patchSize * c.patchSize * this.imageShape[2] * D + D + c.numBlocks * block + 2 * D + dense(D, this.numClasses);
  }

  /** Logits [N, B, classes] for images [N, B, H, W, C]. */
  logits(params: Params, image: tf.Tensor): tf.Tensor {
    const p = (params as { params: FlaxTree }).params;
    const [N, B] = image.shape;
    const mlp = mixerMlpBlock;
    const e = patchEmbed(sub(p, 'stem'), image, this.config.patchSize, 'SAME');
    let x = tf.reshape(e, [N, B, -1, this.config.hiddenDim]); // [N, B, T, D]
    for (let i = 0; i < this.config.numBlocks; i++) {
      const b = sub(p, `MixerBlock_${i}`);
      let y = tf.transpose(flaxLayerNorm(sub(b, 'LayerNorm_0'), x), [0, 1, 3, 2]); // [N, B, D, T]
      y = tf.transpose(mlp(sub(b, 'token_mixing'), y), [0, 1, 3, 2]);
      x = tf.add(x, y);
      x = tf.add(x, mlp(sub(b, 'channel_mixing'), flaxLayerNorm(sub(b, 'LayerNorm_1'), x)));
    }
    const pooled = tf.mean(flaxLayerNorm(sub(p, 'pre_head_layer_norm'), x), 2); // [N, B, D]
    return denseOf(sub(p, 'head'), pooled);
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const d = data as { image: tf.Tensor; label: tf.Tensor };
      return meanCrossEntropy(this.logits(params, d.image), d.label);
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return mixerVitNormalizer(loss, this.numClasses);
  }
}

/** mlp_mixer.py's `small_config16`: Mixer-B/16 with fewer blocks. */
const SMALL16 = { patchSize: 16, hiddenDim: 768, numBlocks: 8, tokensMlpDim: 384, channelsMlpDim: 3072 };
/** mlp_mixer.py's `tiny_config16`: Mixer-B/16 with fewer blocks, narrower. */
const TINY16 = { patchSize: 16, hiddenDim: 512, numBlocks: 5, tokensMlpDim: 384, channelsMlpDim: 2048 };

/** Every fixed Mixer task: mlp_mixer.py's names, then the Fashion-MNIST twins (lopt-ts additions). */
export const FIXED_MLP_MIXER_TASKS: Record<string, Omit<MLPMixerConfig, 'datasets'>> = {};
const REF_DATASETS: Array<[string, MixerVitDatasetName]> = [
  ['ImageNet64', 'imagenet64'],
  ['Food101_64', 'food101_64'],
  ['Cifar100', 'cifar100'],
];
for (const [label, datasetName] of REF_DATASETS) {
  for (const [size, cfg] of [['small16', SMALL16], ['tiny16', TINY16]] as const) {
    const name = `MLPMixer_${label}_${size}`;
    FIXED_MLP_MIXER_TASKS[name] = { ...cfg, datasetName, batchSize: 128, name };
  }
}
for (const [label, datasetName] of REF_DATASETS) {
  const name = `MLPMixer_${label}_bs256_tiny16`;
  FIXED_MLP_MIXER_TASKS[name] = { ...TINY16, datasetName, batchSize: 256, name };
}
for (const [size, cfg] of [['small16', SMALL16], ['tiny16', TINY16]] as const) {
  const name = `MLPMixer_FashionMnist_${size}`;
  FIXED_MLP_MIXER_TASKS[name] = { ...cfg, datasetName: 'fashion_mnist', batchSize: 128, name };
}

/** A fixed Mixer task by name (e.g. `mlpMixerTask('MLPMixer_Cifar100_tiny16')`); `datasets` replaces the named ones. */
export function mlpMixerTask(name: string, opts: { datasets?: Datasets } = {}): MLPMixerTask {
  const c = FIXED_MLP_MIXER_TASKS[name];
  if (!c) throw new Error(`unknown MLP-Mixer task '${name}'; allowed: ${Object.keys(FIXED_MLP_MIXER_TASKS).join(', ')}`);
  return new MLPMixerTask({ ...c, datasets: opts.datasets });
}

for (const [name, c] of Object.entries(FIXED_MLP_MIXER_TASKS)) {
  const cls = { [name]: class extends MLPMixerTask {
    constructor() {
      super(c);
    }
  } }[name];
  const twin = c.datasetName === 'fashion_mnist' ? ' (lopt-ts addition)' : c.datasetName === 'cifar100' ? '' : ' (no loader in lopt-ts: init only)';
  registerPlugin({
    kind: 'task',
    name,
    description: `MLP-Mixer, patch ${c.patchSize}, ${c.numBlocks} blocks, hidden ${c.hiddenDim}, token MLP ${c.tokensMlpDim}, channel MLP ${c.channelsMlpDim}, on ${c.datasetName} (batch ${c.batchSize})${twin}`,
    schema: z.object({}).strict(),
    create: () => new cls(),
    cls,
  });
}

registerPlugin({
  kind: 'task',
  name: 'MLPMixerTask',
  description: 'MLP-Mixer image classifier (patch stem, token- and channel-mixing MLP blocks, mean over tokens) on a named dataset',
  schema: MLPMixerSchema,
  create: (c) => new MLPMixerTask(c),
  cls: MLPMixerTask,
});
