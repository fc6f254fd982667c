/**
 * The parametric Vision Transformer family (reference `tasks/parametric/vit.py`): `ParametricVIT`
 * builds one `VisionTransformerTask` configuration (patch size, hidden size, MLP width, heads,
 * layers, dropout and attention dropout; `classifier='token'`, no representation layer) and, as
 * the reference says, has no variation between tasks: every sampled task is that ViT.
 * `sampleVit` samples a family (`sample_vit`): sizes, dataset, image and batch size, patch size
 * and dropout rates; `timedSampleVit` (`timed_sample_vit`) samples until the reference's timing
 * model predicts a step under a time limit (`time_model.ts`).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Datasets } from '../base';
import { BaseTaskFamily } from '../task';
import { VisionTransformerTask } from '../vit';
import { CFGObject, LogFeature, objectFromConfig, registerConfigurable } from './cfgobject';
import { DATASET_FUNCTIONS, PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import { choice, logInt, sampleImageDataset } from './parametric_utils';
import { rejectionSample, TIMING_MODEL_PATHS, type RejectionSampleOptions } from './time_model';

/** ParametricVIT's keyword arguments (camelCase; the reference spells `attension_dropout`), with lopt-ts defaults for the dataset. */
export const ParametricVITSchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([16, 16]),
    patchSize: z.number().int().positive().default(4),
    hiddenSize: z.number().int().positive().default(64),
    mlpDim: z.number().int().positive().default(128),
    numHeads: z.number().int().positive().default(4),
    layers: z.number().int().nonnegative().default(2),
    dropout: z.number().min(0).lt(1).default(0),
    attentionDropout: z.number().min(0).lt(1).default(0),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricVIT'),
  })
  .strict();

/** Options of {@link ParametricVIT}: the schema's fields, and datasets that replace the named ones. */
export type ParametricVITOptions = z.input<typeof ParametricVITSchema> & { datasets?: Datasets };

/** `ParametricVIT(datasets, **kwargs)`: a family of one ViT configuration. */
export class ParametricVIT extends BaseTaskFamily {
  readonly name: string;
  readonly config: z.output<typeof ParametricVITSchema>;

  constructor(opts: ParametricVITOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    this.config = ParametricVITSchema.parse(rest);
    this.name = this.config.name;
    this.datasets = datasets ?? parametricDatasets(this.config.datasetName, this.config.batchSize, this.config.imageSize);
  }

  /**
   * The reference's `sample` is `CFGNamed("ParametricVIT", {})`, a tree without leaves; here a
   * zero per task (as `single_task_to_family`), so stacked samples keep their task axis.
   */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return tf.zeros([keys.length], 'int32');
  }

  /** One task param (the zero) and one task's parameter count, from the config alone. */
  valueCounts(): { taskParam: number; params: number } {
    return { taskParam: 1, params: this.taskFn(null).numParams() };
  }

  /** `vit.VisionTransformerTask(self.vision_transformer_cfg, self.datasets)`, whatever the task parameters. */
  taskFn(_taskParam: PyTree): VisionTransformerTask {
    const c = this.config;
    return new VisionTransformerTask({
      datasets: this.datasets!,
      patchSize: c.patchSize,
      hiddenSize: c.hiddenSize,
      mlpDim: c.mlpDim,
      numHeads: c.numHeads,
      numLayers: c.layers,
      dropoutRate: c.dropout,
      attentionDropoutRate: c.attentionDropout,
      name: c.name,
    });
  }
}

registerConfigurable('ParametricVIT', (kw) =>
  new ParametricVIT({
    datasets: kw.datasets as Datasets,
    patchSize: Number(kw.patch_size),
    hiddenSize: Number(kw.hidden_size),
    mlpDim: Number(kw.mlp_dim),
    numHeads: Number(kw.num_heads),
    layers: Number(kw.layers),
    dropout: Number(kw.dropout),
    attentionDropout: Number(kw.attension_dropout),
  }),
);

/**
 * `sample_vit(key)` from a PRNGSequence: layers logInt(1, 16), heads logInt(1, 16), hidden size
 * logInt(8, 64)·heads below 4 heads else logInt(8, 32)·heads, MLP width logInt(32, 512), dataset,
 * image size logInt(8, 64), batch size logInt(4, 256), patch size from {2, 4, 8, 12, 16}, dropout
 * and attention dropout uniform in [0, 0.8) (float32), both zeroed unless a uniform draw is > 0.3.
 */
export function sampleVit(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const layers = logInt(rng.next(), 1, 16);
  const numHeads = logInt(rng.next(), 1, 16);
  const hiddenSize = (numHeads < 4 ? logInt(rng.next(), 8, 64) : logInt(rng.next(), 8, 32)) * numHeads;
  const mlpDim = logInt(rng.next(), 32, 512);
  const datasetName = sampleImageDataset(rng.next());
  const imageSize = logInt(rng.next(), 8, 64);
  const batchSize = logInt(rng.next(), 4, 256);
  const patchSize = choice(rng.next(), [2, 4, 8, 12, 16]);
  const dropout = random.uniformArray(rng.next(), 1, 0, 0.8)[0];
  const attentionDropout = random.uniformArray(rng.next(), 1, 0, 0.8)[0];
  const useMask = random.uniformArray(rng.next(), 1)[0] > Math.fround(0.3) ? 1 : 0;
  return new CFGObject('ParametricVIT', {
    layers: new LogFeature(layers),
    num_heads: new LogFeature(numHeads),
    hidden_size: new LogFeature(hiddenSize),
    mlp_dim: new LogFeature(mlpDim),
    datasets: new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) }),
    patch_size: patchSize,
    dropout: Math.fround(dropout * useMask),
    attension_dropout: Math.fround(attentionDropout * useMask),
  });
}

/**
 * `timed_sample_vit(key, max_time=1e-4)`: `sample_vit` configurations rejected until the
 * sample_vit timing model (`model_paths.models[("sample_vit", "time")]`, the "valid" model loaded
 * beside it) predicts under `maxTime` seconds per step; an error after 512 tries. The model files
 * are read from `$LOPT_TIMING_MODEL_DIR` (see `time_model.ts`).
 */
export function timedSampleVit(key: PRNGKey, maxTime = 1e-4, opts: Omit<RejectionSampleOptions, 'validSuffix'> = {}): CFGObject {
  const paths = TIMING_MODEL_PATHS.sample_vit;
  return rejectionSample(sampleVit, paths.time!, key, maxTime, { ...opts, validSuffix: paths.valid });
}

/** Options of {@link sampledVit}: the seed of `sample_vit(PRNGKey(seed))`. */
export const SampledVITSchema = z.object({ seed: z.number().int().nonnegative().max(2 ** 32 - 1).default(0) }).strict();

/**
 * The ParametricVIT family that `sample_vit(PRNGKey(seed))` describes (a lopt-ts entry point, as
 * `SampledImageMLP`; the reference reaches it through `object_from_config`), named
 * `SampledVIT_<seed>`. Seeds whose sampled dataset lopt-ts cannot build (MNIST, ImageNet 16x16)
 * are refused with the dataset named; CIFAR needs its files in `$LOPT_DATA_DIR`.
 */
export function sampledVit(opts: z.input<typeof SampledVITSchema> = {}): ParametricVIT {
  const { seed } = SampledVITSchema.parse(opts);
  return familyFromSample(sampleVit(random.PRNGKey(seed)), 'SampledVIT', `sample_vit(PRNGKey(${seed}))`, seed);
}

/** The ParametricVIT a sampled configuration builds, named `<name>_<seed>`; a dataset lopt-ts cannot load is refused, naming it. */
function familyFromSample(cfg: CFGObject, name: string, drawn: string, seed: number): ParametricVIT {
  const ds = cfg.kwargs.datasets as CFGObject;
  if (!(ds.obj in DATASET_FUNCTIONS)) {
    throw new Error(`${name}: ${drawn} samples dataset '${ds.obj}', which lopt-ts cannot load yet (available: ${Object.keys(DATASET_FUNCTIONS).join(', ')}); pick another seed`);
  }
  const family = objectFromConfig(cfg) as ParametricVIT;
  return new ParametricVIT({ ...family.config, name: `${name}_${seed}`, datasets: family.datasets! });
}

/** Options of {@link timedSampledVit}: the key seed and the time limit of `timed_sample_vit`. */
export const TimedSampledVITSchema = z
  .object({
    seed: z.number().int().nonnegative().max(2 ** 32 - 1).default(0),
    /** Seconds per step the timing model must predict below (the reference's default 1e-4). */
    maxTime: z.number().positive().default(1e-4),
  })
  .strict();

/**
 * The ParametricVIT family `timed_sample_vit(PRNGKey(seed), maxTime)` picks, named
 * `TimedSampledVIT_<seed>`; needs the reference's sample_vit timing models in
 * `$LOPT_TIMING_MODEL_DIR`, and refuses datasets lopt-ts cannot build, as {@link sampledVit}.
 */
export function timedSampledVit(opts: z.input<typeof TimedSampledVITSchema> = {}): ParametricVIT {
  const { seed, maxTime } = TimedSampledVITSchema.parse(opts);
  return familyFromSample(timedSampleVit(random.PRNGKey(seed), maxTime), 'TimedSampledVIT', `timed_sample_vit(PRNGKey(${seed}))`, seed);
}

registerPlugin({
  kind: 'task_family',
  name: 'TimedSampledVIT',
  description: "the ParametricVIT that timed_sample_vit(PRNGKey(seed), maxTime) picks (sample_vit draws the reference's timing model predicts under maxTime s/step)",
  schema: TimedSampledVITSchema,
  create: (c) => timedSampledVit(c),
});

registerPlugin({
  kind: 'task_family',
  name: 'SampledVIT',
  description: 'the ParametricVIT that sample_vit(PRNGKey(seed)) describes (sizes, patch, dropout, dataset, image and batch size sampled)',
  schema: SampledVITSchema,
  create: (c) => sampledVit(c),
});

registerPlugin({
  kind: 'task_family',
  name: 'ParametricVIT',
  description: 'Vision Transformer of one configuration (patch, hidden, MLP, heads, layers, dropout); no variation between tasks',
  schema: ParametricVITSchema,
  create: (c) => new ParametricVIT(c),
  cls: ParametricVIT,
});
