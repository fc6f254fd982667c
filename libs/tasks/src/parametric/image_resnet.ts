/**
 * The parametric ResNet family (reference `tasks/parametric/image_resnet.py`):
 * `ParametricImageResNet(datasets, initial_conv_channels, initial_conv_stride,
 * initial_conv_kernel_size, blocks_per_group, channels_per_group, max_pool)` samples per task only
 * an activation (`SampleActivation`), used as the ResNet's `act_fn` (after the initial batch norm;
 * the blocks keep relu). The net is `resnet.ResNet` with its other defaults: ResNet v1, bottleneck
 * blocks, a projection in every group, batch norm with state (see ../resnet.ts). Quirk kept: the
 * family's `initial_conv_stride` is stored but not passed to ResNet, so the initial conv always
 * has ResNet's default stride 2.
 *
 * `init_with_state` runs the forward pass on the first batch of the train split (it calls
 * `next(datasets.train)`, so it advances that stream, as the reference), which sets the initial
 * batch-norm averages. Normalizer: NaN/±inf → log(2C), then `clip(10 · loss / log(2C), 0, 10)`.
 * `sampleImageResnet` samples a family (sizes, kernel, max pool, dataset, image and batch size).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, LossAndGrad, LossWithState, ModelState, Params } from '../base';
import { RESNET_DEFAULTS, resnetHaikuInit, resnetInitState, resnetLossWithState, resnetNetUsable, resnetNetValueAndGrad, resnetValueAndGradBatch, type ResNetSpec } from '../resnet';
import { BaseTaskFamily } from '../task';
import { CFGObject, LogFeature, registerConfigurable } from './cfgobject';
import { numClassesOf, PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import { SampledTask, stackHaikuRows } from './image_mlp';
import { choice, logInt, SAMPLE_ACTIVATIONS, sampleActivation, sampleImageDataset } from './parametric_utils';

const four = z.array(z.number().int().positive()).length(4);

/** The options of ParametricImageResNet; the schema holds every default (a small net on 8x8 Fashion-MNIST). */
export const ParametricImageResNetSchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(32),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    initialConvChannels: z.number().int().positive().default(8),
    /** stored, not used (see the file comment) */
    initialConvStride: z.number().int().positive().default(2),
    initialConvKernelSize: z.number().int().positive().default(3),
    blocksPerGroup: four.default([1, 1, 1, 1]),
    channelsPerGroup: four.default([8, 16, 16, 16]),
    maxPool: z.boolean().default(true),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricImageResNet'),
  })
  .strict();

/** ParametricImageResNet's options: the schema's fields, and datasets to use instead of the named ones. */
export type ParametricImageResNetOptions = z.input<typeof ParametricImageResNetSchema> & { datasets?: Datasets };

const actFn = (i: number) => SAMPLE_ACTIVATIONS[i].fn;

/** A sampled ResNet task (the reference's inner `_Task`), for one or N stacked activations. */
export class ParametricImageResNetTask extends SampledTask<ParametricImageResNet, number> {
  /** Haiku-exact params per key (the ResNet's creation order; see ../resnet.ts). */
  initBatch(keys: PRNGKey[]): Params {
    this.checkRows(keys.length);
    return stackHaikuRows(keys.map((k) => haikuInit(k, (hk) => resnetHaikuInit(this.family.spec, hk))));
  }

  private checkRows(n: number): void {
    if (this.configs.length !== 1 && this.configs.length !== n) {
      throw new Error(`ParametricImageResNet: ${n} keys for ${this.configs.length} stacked task configs`);
    }
  }

  private acts(n: number): ((x: tf.Tensor) => tf.Tensor)[] {
    return Array.from({ length: n }, (_, i) => actFn(this.row(i)));
  }

  /** `init_with_state`: params, and the batch-norm state of init's forward pass on the next train batch. */
  override initWithStateBatch(keys: PRNGKey[]): [Params, ModelState] {
    const params = this.initBatch(keys);
    const batch = this.datasets!.split('train').next() as { image: tf.Tensor4D; label: tf.Tensor };
    const state = resnetInitState(this.family.spec, params, keys.length, batch.image, undefined, this.acts(keys.length));
    tf.dispose([batch.image, batch.label]);
    return [params, state];
  }

  /** See resnet.ts's `ResnetStatsSwitch`: set only during `valueAndGradBatch`. */
  statsOnly = false;

  /** Whether every one of the n stacked tasks' activations is relu (the whole-network native kernel has no other). */
  private allRelu(n: number): boolean {
    return Array.from({ length: n }, (_, i) => SAMPLE_ACTIVATIONS[this.row(i)].name === 'relu').every(Boolean);
  }

  /** The whole-network native kernel (`resnetNetValueAndGrad`) where it runs (relu tasks), else the tf.js ops. */
  override lossWithStateBatch(params: Params, state: ModelState, _keys: PRNGKey[] | null, data: Batch): LossWithState {
    const n = (data as { image: tf.Tensor }).image.shape[0];
    this.checkRows(n);
    const r = !this.statsOnly && resnetNetUsable(this.allRelu(n)) ? resnetNetValueAndGrad(this.family.spec, params, state, data, false) : null;
    if (r) return { loss: r.loss, state: r.state };
    return resnetLossWithState(this.family.spec, params, state, data, this.acts(n), { statsOnly: this.statsOnly });
  }

  /**
   * The whole-network native kernel (`resnetNetValueAndGrad`) where it runs (relu tasks); else
   * autodiff as BaseTask's, with the moving averages updated off the gradient tape (`resnetValueAndGradBatch`).
   */
  override valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    const n = (data as { image: tf.Tensor }).image.shape[0];
    this.checkRows(n);
    const r = resnetNetUsable(this.allRelu(n)) ? resnetNetValueAndGrad(this.family.spec, params, state, data, true) : null;
    if (r) return opts.withAux ? { ...r, aux: {} } : r;
    return resnetValueAndGradBatch(this, state, () => super.valueAndGradBatch(params, state, keys, data, opts));
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => this.lossWithStateBatch(params, null, keys, data).loss);
  }

  /** NaN and ±inf → log(2C); then `clip(10 · loss / log(2C), 0, 10)`. */
  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const maxClass = Math.log(2 * this.family.numClasses);
      const finite = tf.where(tf.isFinite(loss), loss, tf.fill(loss.shape, maxClass));
      return tf.clipByValue(tf.mul(finite, 10 / maxClass), 0, 10);
    });
  }
}

/** `ParametricImageResNet(datasets, ...)`: a ResNet architecture whose tasks differ by activation. */
export class ParametricImageResNet extends BaseTaskFamily {
  readonly name: string;
  readonly numClasses: number;
  readonly initialConvChannels: number;
  readonly initialConvStride: number;
  readonly initialConvKernelSize: number;
  readonly blocksPerGroup: number[];
  readonly channelsPerGroup: number[];
  readonly maxPool: boolean;
  /** The ResNet every task builds (ResNet defaults for what the family does not set). */
  readonly spec: ResNetSpec;

  constructor(opts: ParametricImageResNetOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricImageResNetSchema.parse(rest);
    this.datasets = datasets ?? parametricDatasets(c.datasetName, c.batchSize, c.imageSize);
    this.name = c.name;
    this.numClasses = numClassesOf(this.datasets);
    this.initialConvChannels = c.initialConvChannels;
    this.initialConvStride = c.initialConvStride;
    this.initialConvKernelSize = c.initialConvKernelSize;
    this.blocksPerGroup = c.blocksPerGroup;
    this.channelsPerGroup = c.channelsPerGroup;
    this.maxPool = c.maxPool;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.spec = {
      blocksPerGroup: c.blocksPerGroup,
      channelsPerGroup: c.channelsPerGroup,
      useProjection: [...RESNET_DEFAULTS.useProjection],
      bottleneck: RESNET_DEFAULTS.bottleneck,
      resnetV2: RESNET_DEFAULTS.resnetV2,
      initialConvChannels: c.initialConvChannels,
      initialConvKernelSize: c.initialConvKernelSize,
      initialConvStride: RESNET_DEFAULTS.initialConvStride,
      maxPool: c.maxPool,
      numClasses: this.numClasses,
      inChannels: ab.image.shape[ab.image.shape.length - 1],
    };
  }

  /** `{activation: SampleActivation.sample(key)}` per key (the key itself, not split). */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return { activation: { index: tf.tensor1d(keys.map((k) => sampleActivation(k).index), 'int32') } };
  }

  taskFn(taskParam: PyTree): ParametricImageResNetTask {
    const acts = Array.from((taskParam as { activation: { index: tf.Tensor } }).activation.index.dataSync());
    acts.forEach((a) => {
      if (!SAMPLE_ACTIVATIONS[a]) throw new Error(`ParametricImageResNet: activation index must be 0..${SAMPLE_ACTIVATIONS.length - 1}, got ${a}`);
    });
    return new ParametricImageResNetTask(this, acts);
  }
}

registerConfigurable('ParametricImageResNet', (kw) =>
  new ParametricImageResNet({
    datasets: kw.datasets as Datasets,
    initialConvChannels: Number(kw.initial_conv_channels),
    initialConvStride: Number(kw.initial_conv_stride),
    initialConvKernelSize: Number(kw.initial_conv_kernel_size),
    blocksPerGroup: kw.blocks_per_group as number[],
    channelsPerGroup: kw.channels_per_group as number[],
    maxPool: Boolean(kw.max_pool),
  }),
);

const SIZE_PATTERNS = [
  [1, 1, 1, 1],
  [1, 2, 4, 8],
  [1, 2, 2, 4],
  [1, 2, 2, 2],
  [1, 2, 4, 4],
];

/**
 * `sample_image_resnet(key)` from a PRNGSequence: max blocks logInt(1, 10), then 4 block counts
 * logInt(1, max), a channel pattern, the largest size logInt(8, 256), kernel choice(3, 5, 7),
 * initial channels logInt(8, 64), stride choice(1, 2), max pool choice(True, False), dataset,
 * image size logInt(8, 64), batch size logInt(4, 256).
 */
export function sampleImageResnet(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const maxBlocks = logInt(rng.next(), 1, 10);
  const blocks = Array.from({ length: 4 }, () => logInt(rng.next(), 1, maxBlocks));
  const pattern = choice(rng.next(), SIZE_PATTERNS);
  const maxLayerSize = logInt(rng.next(), 8, 256);
  const kernel = choice(rng.next(), [3, 5, 7]);
  const initialChannels = logInt(rng.next(), 8, 64);
  const stride = choice(rng.next(), [1, 2]);
  const maxPool = choice(rng.next(), [true, false]);
  const datasetName = sampleImageDataset(rng.next());
  const imageSize = logInt(rng.next(), 8, 64);
  const batchSize = logInt(rng.next(), 4, 256);
  return new CFGObject('ParametricImageResNet', {
    blocks_per_group: new LogFeature(blocks),
    channels_per_group: new LogFeature(pattern.map((p) => maxLayerSize * p)),
    initial_conv_kernel_size: kernel,
    initial_conv_channels: new LogFeature(initialChannels),
    initial_conv_stride: stride,
    max_pool: maxPool,
    datasets: new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) }),
  });
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricImageResNet',
  description: 'ResNet v1 (bottleneck blocks, batch-norm state) with a sampled activation per task',
  schema: ParametricImageResNetSchema,
  create: (c) => new ParametricImageResNet(c),
  cls: ParametricImageResNet,
});
