/**
 * The parametric convnet family (reference `tasks/parametric/image_conv.py`): `ParametricImageConv`
 * samples, per task, an activation and a weight initializer (parametric_utils) for a stack of
 * `hk.Conv2D(hidden, kernel, stride, padding SAME)` + activation layers, a spatial mean, and
 * `hk.Linear(numClasses)` (its default init); mean softmax cross-entropy. `sampleImageConv` samples
 * a family (channels, depth, strides, image size, dataset, batch size).
 *
 * Stacked tasks each run their own convolutions (tf.js has no grouped convolution). Where the
 * native kernels are built and no gradient tape records, a step is one native kernel instead
 * (conv_net.ts): the same values up to float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, initializers, random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, LossAndGrad, ModelState, Params } from '../base';
import { convNetActivation, convNetLossAndGrad, convNetUsable } from '../conv_net';
import { BaseTaskFamily, softmaxCrossEntropy } from '../task';
import { CFGObject, LogFeature, registerConfigurable } from './cfgobject';
import { numClassesOf, PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import { activateRows, activationAndInitializerConfigs, classificationNormalizer, SampledTask, sampleActivationAndInitializer, stackHaikuRows, type ActivationAndInitializer } from './image_mlp';
import { choice, logInt, SAMPLE_ACTIVATIONS, SAMPLE_IMAGE_DATASETS, sampledInitializer, sampleImageDataset } from './parametric_utils';

/**
 * The configurable part of {@link ParametricImageConv} (reference `tasks/parametric/image_conv.py`); the
 * schema holds every default.
 */
export const ParametricImageConvSchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    /** default: the dataset's number of classes */
    numClasses: z.number().int().positive().optional(),
    hiddenSizes: z.array(z.number().int().positive()).default([16, 32]),
    kernelSizes: z.array(z.tuple([z.number().int().positive(), z.number().int().positive()])).default([[3, 3], [3, 3]]),
    strides: z.array(z.number().int().positive()).default([2, 1]),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricImageConv'),
  })
  .strict()
  // strides may be longer than the layers: sample_image_conv can draw more strides than layers,
  // and the reference's zip() ignores the rest
  .refine((c) => c.kernelSizes.length === c.hiddenSizes.length && c.strides.length >= c.hiddenSizes.length, {
    message: 'kernelSizes must have one entry per layer (hiddenSizes) and strides at least one',
    path: ['hiddenSizes'],
  });
/**
 * Options of {@link ParametricImageConv}: the fields of {@link ParametricImageConvSchema} (all optional) plus
 * prebuilt datasets.
 */
export type ParametricImageConvOptions = z.input<typeof ParametricImageConvSchema> & { datasets?: Datasets };


const convName = (i: number) => (i === 0 ? 'conv2_d' : `conv2_d_${i}`);

/**
 * A task of {@link ParametricImageConv}: the convnet with each task's sampled activation and initializer, for
 * one or N stacked configs.
 */
export class ParametricImageConvTask extends SampledTask<ParametricImageConv, ActivationAndInitializer> {
  /** haiku's init per row: each Conv2D's w from the sampled initializer (one key each), b zeros; then hk.Linear. */
  initBatch(keys: PRNGKey[]): Params {
    const f = this.family;
    const rows = keys.map((k, r) =>
      haikuInit(k, (hk) => {
        let cin = f.channels;
        f.hiddenSizes.forEach((h, i) => {
          hk.getParameter(convName(i), 'w', [...f.kernelSizes[i], cin, h], sampledInitializer(this.row(r).initializer));
          hk.getParameter(convName(i), 'b', [h], initializers.zeros());
          cin = h;
        });
        hk.linear('linear', cin, f.numClasses);
      }),
    );
    return stackHaikuRows(rows);
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const f = this.family;
      const p = params as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
      const { image, label } = data as { image: tf.Tensor; label: tf.Tensor };
      const N = image.shape[0];
      const acts = this.configs.map((c) => c.activation);
      // Per-task views by unstack (its gradient is one Pack; a slice's is a PadV2 per task, which
      // tf.js wasm runs slowly at rank 5: ~5 ms for a [1, 3, 3, 8, 16] filter). One task: a squeeze
      // (tf.js's Unpack gradient fails on a single output, whose gradient it gets unwrapped).
      const rows = (t: tf.Tensor) => (t.shape[0] === 1 ? [tf.squeeze(t, [0])] : tf.unstack(t));
      const images = rows(image) as tf.Tensor4D[]; // N × [B, H, W, C]
      const ws = f.hiddenSizes.map((_h, i) => rows(p[convName(i)].w) as tf.Tensor4D[]);
      const bs = f.hiddenSizes.map((_h, i) => rows(p[convName(i)].b));
      const feats = Array.from({ length: N }, (_, n) => {
        let net = images[n];
        f.hiddenSizes.forEach((_h, i) => {
          net = tf.add(tf.conv2d(net, ws[i][n], f.strides[i], 'same'), bs[i][n]) as tf.Tensor4D;
          net = activateRows(tf.expandDims(net, 0), [acts.length === 1 ? acts[0] : acts[n]]).squeeze([0]) as tf.Tensor4D;
        });
        return tf.mean(net, [1, 2]); // [B, channels]
      });
      const x = tf.stack(feats); // [N, B, channels]
      const { w, b } = p.linear;
      const logits = tf.add(tf.matMul(x, w), tf.expandDims(b, 1));
      const labels = tf.oneHot(tf.cast(label, 'int32'), f.numClasses);
      return tf.mean(softmaxCrossEntropy(logits, labels), -1);
    });
  }

  /**
   * The whole-network native kernel ({@link convNetLossAndGrad}) where it runs (square kernels,
   * native kernels built and on, no gradient tape); else autodiff of {@link lossBatch}.
   */
  override valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    const f = this.family;
    const square = f.kernelSizes.every(([h, w]) => h === w);
    const r =
      square && convNetUsable()
        ? convNetLossAndGrad(
            { layers: f.hiddenSizes.map((h, i) => ({ channels: h, kernel: f.kernelSizes[i][0], stride: f.strides[i] })), numClasses: f.numClasses },
            this.configs.map((c) => convNetActivation(SAMPLE_ACTIVATIONS[c.activation].name)),
            params,
            data,
            true,
          )
        : null;
    if (r) return opts.withAux ? { ...r, aux: {} } : r;
    return super.valueAndGradBatch(params, state, keys, data, opts);
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return classificationNormalizer(loss, this.family.numClasses);
  }
}

/** `ParametricImageConv(datasets, num_classes, hidden_sizes, kernel_sizes, strides)`. */
export class ParametricImageConv extends BaseTaskFamily {
  readonly name: string;
  readonly numClasses: number;
  readonly hiddenSizes: number[];
  readonly kernelSizes: [number, number][];
  readonly strides: number[];
  readonly channels: number;

  constructor(opts: ParametricImageConvOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricImageConvSchema.parse(rest);
    this.datasets = datasets ?? parametricDatasets(c.datasetName, c.batchSize, c.imageSize);
    this.name = c.name;
    this.numClasses = c.numClasses ?? numClassesOf(this.datasets);
    this.hiddenSizes = c.hiddenSizes;
    this.kernelSizes = c.kernelSizes;
    this.strides = c.strides;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.channels = ab.image.shape[ab.image.shape.length - 1];
  }

  /** `act_key, init_key = split(key)`, as ParametricImageMLP. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return sampleActivationAndInitializer(keys);
  }

  taskFn(taskParam: PyTree): ParametricImageConvTask {
    return new ParametricImageConvTask(this, activationAndInitializerConfigs(taskParam, 'ParametricImageConv'));
  }
}

registerConfigurable('ParametricImageConv', (kw) =>
  new ParametricImageConv({
    datasets: kw.datasets as Datasets,
    numClasses: Number(kw.num_classes),
    hiddenSizes: kw.hidden_sizes as number[],
    kernelSizes: kw.kernel_sizes as [number, number][],
    strides: kw.strides as number[],
  }),
);

/**
 * `sample_image_conv(key)` from a PRNGSequence: channels logInt(4, 64), depth choice(0..3), a first
 * stride that is drawn and then discarded (quirk kept: a key is consumed, the strides are redrawn as
 * `[2] * choice(0, 1, 2) + [1] * rest`), kernels 3x3, image size logInt(4, 32), dataset, batch size logInt(4, 512).
 */
export function sampleImageConv(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const hiddenSize = logInt(rng.next(), 4, 64);
  const numLayers = choice(rng.next(), [0, 1, 2, 3]);
  rng.next(); // the first layer's stride, overwritten below in the reference
  const numStride = choice(rng.next(), [0, 1, 2]);
  const strides = [...Array(numStride).fill(2), ...Array(Math.max(0, numLayers - numStride)).fill(1)];
  const imageSize = logInt(rng.next(), 4, 32);
  const datasetName = sampleImageDataset(rng.next());
  const batchSize = logInt(rng.next(), 4, 512);
  return new CFGObject('ParametricImageConv', {
    hidden_sizes: new LogFeature(Array(numLayers).fill(hiddenSize)),
    strides,
    kernel_sizes: Array.from({ length: numLayers }, () => [3, 3]),
    datasets: new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) }),
    num_classes: SAMPLE_IMAGE_DATASETS[datasetName],
  });
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricImageConv',
  description: 'convnet (Conv2D stack, spatial mean, Linear) with a sampled activation and weight initializer per task',
  schema: ParametricImageConvSchema,
  create: (c) => new ParametricImageConv(c),
  cls: ParametricImageConv,
});
