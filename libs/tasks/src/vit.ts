/**
 * Vision Transformer classification tasks (reference `tasks/fixed/vit.py`, `VisionTransformerTask`,
 * over `vision_transformer`'s vit_jax/models_vit.py `VisionTransformer`, a flax module; no ResNet
 * root, `classifier='token'`, no representation layer).
 *
 * The network: `embedding` = `nn.Conv(hidden, (P, P), strides=(P, P), padding='VALID')`, the patch
 * grid flattened, a zero-initialised `cls` token prepended, then `Transformer` (`Encoder`): learned
 * `posembed_input` (normal(0.02)), Dropout, `num_layers` `encoderblock_<i>` (LayerNorm,
 * `MultiHeadDotProductAttention` (xavier-uniform q/k/v/out kernels, zero biases, query scaled by
 * 1/√head_dim, attention dropout per weight), Dropout, residual; LayerNorm, `MlpBlock` (Dense
 * mlp_dim, gelu, Dropout, Dense back, Dropout; xavier-uniform kernels, normal(1e-6) biases),
 * residual), `encoder_norm`; the cls token's output; a zero-initialised `head` Dense. Loss: mean
 * softmax cross-entropy with `train=True` (dropout on when its rate is above 0, keys from the loss
 * key by flax's `make_rng('dropout')` in each dropout's scope). Normalizer as the Mixer's.
 *
 * Attention and layer norm are flax's, not the haiku ones of lm_modules.ts (other parameter
 * layout, epsilon 1e-6, a scaled query); gelu, linear and the dropout mask are shared with it.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { registerPlugin, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, Params } from './base';
import { denseOf, flaxDropout, flaxInitBatch, flaxInitializers, flaxLayerNorm, leaf, meanCrossEntropy, mixerVitNormalizer, patchEmbed, sub, type FlaxScope, type FlaxTree } from './flax_modules';
import { gelu, linear } from './lm_modules';
import { imageTaskShape, MIXER_VIT_DATASETS, mixerVitDatasets } from './mlp_mixer';
import { BaseTask, requireKeys } from './task';

/** The configurable part of a ViT task (VisionTransformer's fields); the schema holds the defaults (skinnydeep). */
export const VisionTransformerSchema = z
  .object({
    datasetName: z.enum(MIXER_VIT_DATASETS).default('cifar100'),
    batchSize: z.number().int().positive().default(128),
    patchSize: z.number().int().positive().default(16),
    hiddenSize: z.number().int().positive().default(128),
    mlpDim: z.number().int().positive().default(512),
    numHeads: z.number().int().positive().default(4),
    numLayers: z.number().int().nonnegative().default(10),
    dropoutRate: z.number().min(0).lt(1).default(0),
    attentionDropoutRate: z.number().min(0).lt(1).default(0),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('VisionTransformerTask'),
  })
  .strict()
  .refine((c) => c.hiddenSize % c.numHeads === 0, { message: 'hiddenSize must be a multiple of numHeads', path: ['hiddenSize'] });

/** Options of {@link VisionTransformerTask}: the schema's fields, and datasets that replace the named ones. */
export type VisionTransformerConfig = z.input<typeof VisionTransformerSchema> & { datasets?: Datasets };

/** `VisionTransformerTask(cfg, datasets)`: a ViT classifier. */
export class VisionTransformerTask extends BaseTask {
  readonly name: string;
  readonly config: z.output<typeof VisionTransformerSchema>;
  readonly imageShape: [number, number, number];
  readonly numClasses: number;

  constructor(config: VisionTransformerConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    this.config = VisionTransformerSchema.parse(rest);
    this.name = this.config.name;
    this.datasets = datasets ?? mixerVitDatasets(this.config.datasetName, this.config.batchSize);
    ({ imageShape: this.imageShape, numClasses: this.numClasses } = imageTaskShape(this.datasets));
  }

  /** Sequence length: the VALID patch grid plus the cls token. */
  get seqLength(): number {
    const P = this.config.patchSize;
    return Math.floor(this.imageShape[0] / P) * Math.floor(this.imageShape[1] / P) + 1;
  }

  /** flax-exact `init` per task key. */
  initBatch(keys: PRNGKey[]): Params {
    const c = this.config;
    const P = c.patchSize;
    const D = c.hiddenSize;
    const H = c.numHeads;
    const xavier = flaxInitializers.xavierUniform();
    return flaxInitBatch(keys, (root) => {
      const emb = root.child('embedding');
      emb.param('kernel', [P, P, this.imageShape[2], D], flaxInitializers.lecunNormal());
      emb.param('bias', [D], flaxInitializers.zeros());
      root.param('cls', [1, 1, D], flaxInitializers.zeros());
      const enc = root.child('Transformer');
      enc.child('posembed_input').param('pos_embedding', [1, this.seqLength, D], flaxInitializers.normal(0.02));
      for (let i = 0; i < c.numLayers; i++) {
        const b = enc.child(`encoderblock_${i}`);
        b.layerNorm('LayerNorm_0', D);
        const att = b.child('MultiHeadDotProductAttention_0');
        for (const n of ['query', 'key', 'value']) att.denseGeneral(n, [D], [H, D / H], xavier);
        att.denseGeneral('out', [H, D / H], [D], xavier);
        b.layerNorm('LayerNorm_1', D);
        const mlp: FlaxScope = b.child('MlpBlock_0');
        mlp.dense('Dense_0', D, c.mlpDim, xavier, flaxInitializers.normal(1e-6));
        mlp.dense('Dense_1', c.mlpDim, D, xavier, flaxInitializers.normal(1e-6));
      }
      enc.layerNorm('encoder_norm', D);
      root.dense('head', D, this.numClasses, flaxInitializers.zeros());
    });
  }

  /** How many values one task's params hold (what `initBatch` makes), from the config alone. */
  numParams(): number {
    const c = this.config;
    const D = c.hiddenSize;
    const dense = (i: number, o: number) => i * o + o;
    const layer = 2 * 2 * D + 4 * dense(D, D) + dense(D, c.mlpDim) + dense(c.mlpDim, D);
    return c.patchSize * c.patchSize * this.imageShape[2] * D + D + D + this.seqLength * D + c.numLayers * layer + 2 * D + dense(D, this.numClasses);
  }

  /** Logits [N, B, classes] for images [N, B, H, W, C]; `keys` (one per task) drive dropout. */
  logits(params: Params, keys: PRNGKey[] | null, image: tf.Tensor): tf.Tensor {
    const c = this.config;
    const p = (params as { params: FlaxTree }).params;
    const [N, B] = image.shape;
    const D = c.hiddenSize;
    const H = c.numHeads;
    const hd = D / H;
    const S = this.seqLength;
    const drop = (path: string[], rate: number, x: tf.Tensor) => flaxDropout(keys, path, rate, x);
    const cls = tf.tile(tf.reshape(leaf(p, 'cls'), [N, 1, 1, D]), [1, B, 1, 1]);
    let x: tf.Tensor;
    if (S > 1) {
      x = tf.concat([cls, tf.reshape(patchEmbed(sub(p, 'embedding'), image, c.patchSize, 'VALID'), [N, B, S - 1, D])], 2); // [N, B, S, D]
    } else {
      // An image smaller than one patch (sample_vit can draw one): the reference's VALID conv gives
      // no patch, the sequence is the cls token alone and the embedding's gradient is 0. The
      // embedding stays in the graph, times 0, so autodiff gives that 0 rather than no gradient.
      const emb = sub(p, 'embedding');
      x = tf.add(cls, tf.reshape(tf.mul(tf.add(tf.sum(leaf(emb, 'kernel'), [1, 2, 3, 4]), tf.sum(leaf(emb, 'bias'), 1)), 0), [N, 1, 1, 1]));
    }
    const enc = sub(p, 'Transformer');
    x = tf.add(x, tf.reshape(leaf(sub(enc, 'posembed_input'), 'pos_embedding'), [N, 1, S, D]));
    x = drop(['Transformer', 'Dropout_0'], c.dropoutRate, x);
    const scale = Math.fround(Math.sqrt(hd));
    for (let i = 0; i < c.numLayers; i++) {
      const name = `encoderblock_${i}`;
      const b = sub(enc, name);
      const y = flaxLayerNorm(sub(b, 'LayerNorm_0'), x);
      const att = sub(b, 'MultiHeadDotProductAttention_0');
      const proj = (n: string) => {
        const m = sub(att, n);
        const out = linear(y, tf.reshape(leaf(m, 'kernel'), [N, D, D]), tf.reshape(leaf(m, 'bias'), [N, D]));
        return tf.transpose(tf.reshape(out, [N, B, S, H, hd]), [0, 1, 3, 2, 4]); // [N, B, H, S, hd]
      };
      const q = tf.div(proj('query'), scale);
      let w = tf.softmax(tf.matMul(q, proj('key'), false, true)); // [N, B, H, S, S]
      w = drop(['Transformer', name, 'MultiHeadDotProductAttention_0'], c.attentionDropoutRate, w);
      const a = tf.reshape(tf.transpose(tf.matMul(w, proj('value')), [0, 1, 3, 2, 4]), [N, B, S, D]);
      const o = sub(att, 'out');
      let h = linear(a, tf.reshape(leaf(o, 'kernel'), [N, D, D]), leaf(o, 'bias'));
      h = drop(['Transformer', name, 'Dropout_0'], c.dropoutRate, h);
      x = tf.add(h, x);
      const mlp = sub(b, 'MlpBlock_0');
      let z = gelu(denseOf(sub(mlp, 'Dense_0'), flaxLayerNorm(sub(b, 'LayerNorm_1'), x)));
      z = drop(['Transformer', name, 'MlpBlock_0', 'Dropout_0'], c.dropoutRate, z);
      z = drop(['Transformer', name, 'MlpBlock_0', 'Dropout_1'], c.dropoutRate, denseOf(sub(mlp, 'Dense_1'), z));
      x = tf.add(x, z);
    }
    x = flaxLayerNorm(sub(enc, 'encoder_norm'), x);
    const tok = tf.reshape(tf.slice(x, [0, 0, 0, 0], [N, B, 1, D]), [N, B, D]);
    return denseOf(sub(p, 'head'), tok);
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    const stochastic = this.config.dropoutRate > 0 || this.config.attentionDropoutRate > 0;
    const k = stochastic ? requireKeys(keys, this.name) : null;
    return tf.tidy(() => {
      const d = data as { image: tf.Tensor; label: tf.Tensor };
      return meanCrossEntropy(this.logits(params, k, d.image), d.label);
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return mixerVitNormalizer(loss, this.numClasses);
  }
}

/** vit.py's `wide16_config`: ViT-S/16 with fewer layers. */
const WIDE16 = { patchSize: 16, hiddenSize: 384, mlpDim: 1536, numHeads: 6, numLayers: 6 };
/** vit.py's `tall16_config`: ViT-S/16, narrower. */
const TALL16 = { patchSize: 16, hiddenSize: 128, mlpDim: 512, numHeads: 4, numLayers: 10 };

/** Every fixed ViT task: vit.py's names, then the Fashion-MNIST twins (lopt-ts additions). */
export const FIXED_VIT_TASKS: Record<string, Omit<VisionTransformerConfig, 'datasets'>> = {};
for (const [label, datasetName] of [['ImageNet64', 'imagenet64'], ['Food101_64', 'food101_64'], ['Cifar100', 'cifar100'], ['FashionMnist', 'fashion_mnist']] as const) {
  for (const [size, cfg] of [['wideshallow', WIDE16], ['skinnydeep', TALL16]] as const) {
    const name = `VIT_${label}_${size}`;
    FIXED_VIT_TASKS[name] = { ...cfg, datasetName, batchSize: 128, name };
  }
}

/** A fixed ViT task by name (e.g. `vitTask('VIT_Cifar100_skinnydeep')`); `datasets` replaces the named ones. */
export function vitTask(name: string, opts: { datasets?: Datasets } = {}): VisionTransformerTask {
  const c = FIXED_VIT_TASKS[name];
  if (!c) throw new Error(`unknown ViT task '${name}'; allowed: ${Object.keys(FIXED_VIT_TASKS).join(', ')}`);
  return new VisionTransformerTask({ ...c, datasets: opts.datasets });
}

for (const [name, c] of Object.entries(FIXED_VIT_TASKS)) {
  const cls = { [name]: class extends VisionTransformerTask {
    constructor() {
      super(c);
    }
  } }[name];
  const note = c.datasetName === 'fashion_mnist' ? ' (lopt-ts addition)' : c.datasetName === 'cifar100' ? '' : ' (no loader in lopt-ts: init only)';
  registerPlugin({
    kind: 'task',
    name,
    description: `ViT, patch ${c.patchSize}, ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads, MLP ${c.mlpDim}, on ${c.datasetName} (batch ${c.batchSize})${note}`,
    schema: z.object({}).strict(),
    create: () => new cls(),
    cls,
  });
}

registerPlugin({
  kind: 'task',
  name: 'VisionTransformerTask',
  description: 'Vision Transformer image classifier (patch embedding, cls token, pre-LN encoder) on a named dataset',
  schema: VisionTransformerSchema,
  create: (c) => new VisionTransformerTask(c),
  cls: VisionTransformerTask,
});
