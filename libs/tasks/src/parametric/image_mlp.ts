/**
 * The parametric image-MLP family (reference `tasks/parametric/image_mlp.py`): `ParametricImageMLP`
 * samples, per task, an activation function and a weight initializer (parametric_utils), and
 * `sampleImageMlp` samples a whole family configuration (hidden sizes, depth, image size, batch
 * size, dataset) as a `CFGObject`.
 *
 * A task is `hk.nets.MLP(hiddenLayers + [numClasses], w_init=<sampled>, activation=<sampled>)` on
 * the flattened image, mean softmax cross-entropy; biases start at zero. Task params (the
 * reference's `CFGNamed` values): `{activation: {index}, initializer: {index, init_scale}}`,
 * int32 / float32 scalars, or `[N]` stacked.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, Params } from '../base';
import { BaseTask, BaseTaskFamily, softmaxCrossEntropy } from '../task';
import { CFGObject, LogFeature, objectFromConfig, registerConfigurable } from './cfgobject';
import { DATASET_FUNCTIONS, numClassesOf, PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import {
  choice,
  logInt,
  SAMPLE_ACTIVATIONS,
  SAMPLE_IMAGE_DATASETS,
  sampleActivation,
  sampledInitializer,
  sampleImageDataset,
  sampleInitializer,
  type InitializerConfig,
} from './parametric_utils';

/**
 * The configurable part of {@link ParametricImageMLP} (reference `tasks/parametric/image_mlp.py`); the schema
 * holds every default.
 */
export const ParametricImageMLPSchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    /** default: the dataset's number of classes */
    numClasses: z.number().int().positive().optional(),
    hiddenLayers: z.array(z.number().int().positive()).default([32, 32]),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricImageMLP'),
  })
  .strict();
/**
 * Options of {@link ParametricImageMLP}: the fields of {@link ParametricImageMLPSchema} (all optional) plus
 * prebuilt datasets.
 */
export type ParametricImageMLPOptions = z.input<typeof ParametricImageMLPSchema> & { datasets?: Datasets };


/** Host values of a scalar or `[N]` leaf. */
const hostValues = (t: tf.Tensor) => Array.from(t.dataSync());

/**
 * Stacked haiku init of `hk.nets.MLP(sizes[1:], w_init=<row i's sampled initializer>)` on inputs of
 * width sizes[0], one row per key (each row may have its own initializer).
 */
export function initSampledMlp(keys: PRNGKey[], sizes: number[], initializerOf: (row: number) => InitializerConfig): Params {
  const rows = keys.map((k, i) => haikuInit(k, (hk) => hk.mlp(sizes[0], sizes.slice(1), { wInit: sampledInitializer(initializerOf(i)) })));
  return stackHaikuRows(rows);
}

/** haiku inits, one per stacked task, as one tree with a leading task axis (the rows are disposed). */
export function stackHaikuRows(rows: Record<string, Record<string, tf.Tensor>>[]): Params {
  const out: Record<string, Record<string, tf.Tensor>> = {};
  for (const [m, ps] of Object.entries(rows[0])) {
    out[m] = {};
    for (const n of Object.keys(ps)) out[m][n] = tf.stack(rows.map((r) => r[m][n]));
  }
  rows.forEach((r) => Object.values(r).forEach((ps) => tf.dispose(Object.values(ps))));
  return out;
}

/**
 * A task of a parametric family (the reference's inner `_Task`), for one or N stacked task
 * configurations: `row(i)` is task i's (one configuration is shared by every row).
 */
export abstract class SampledTask<F extends { datasets: Datasets | null }, C> extends BaseTask {
  readonly name = '_Task';

  constructor(
    readonly family: F,
    readonly configs: C[],
  ) {
    super();
    this.datasets = family.datasets;
  }

  protected row(i: number): C {
    return this.configs.length === 1 ? this.configs[0] : this.configs[i];
  }
}

/**
 * Each stacked task's own sampled activation on `x [N, ...]` (`acts`: one index shared by every row,
 * or one per row): one op when all rows share it, else row by row.
 */
export function activateRows(x: tf.Tensor, acts: number[]): tf.Tensor {
  const perRow = x.shape[0] === 1 || acts.length === 1 ? [acts[0]] : acts;
  if (perRow.every((a) => a === perRow[0])) return SAMPLE_ACTIVATIONS[perRow[0]].fn(x);
  return tf.concat(tf.split(x, x.shape[0], 0).map((row, i) => SAMPLE_ACTIVATIONS[perRow[i]].fn(row)), 0);
}

/** One task's sampled activation and initializer, read back from the task params. */
export interface ActivationAndInitializer {
  activation: number;
  initializer: InitializerConfig;
}

/**
 * The task params of ParametricImageMLP and ParametricImageConv, stacked over keys: per key
 * `act_key, init_key = split(key)`, `{activation: SampleActivation.sample(act_key), initializer:
 * SampleInitializer.sample(init_key)}`.
 */
export function sampleActivationAndInitializer(keys: PRNGKey[]): PyTree {
  const rows = keys.map((k) => {
    const [actKey, initKey] = random.split(k, 2);
    return { activation: sampleActivation(actKey).index, initializer: sampleInitializer(initKey) };
  });
  return {
    activation: { index: tf.tensor1d(rows.map((r) => r.activation), 'int32') },
    initializer: {
      index: tf.tensor1d(rows.map((r) => r.initializer.index), 'int32'),
      init_scale: tf.tensor1d(rows.map((r) => r.initializer.initScale), 'float32'),
    },
  };
}

/** Those task params (one task's scalars or `[N]` stacked) as one config per task; `who` names the family in errors. */
export function activationAndInitializerConfigs(taskParam: PyTree, who: string): ActivationAndInitializer[] {
  const tp = taskParam as { activation: { index: tf.Tensor }; initializer: { index: tf.Tensor; init_scale: tf.Tensor } };
  const acts = hostValues(tp.activation.index);
  const inits = hostValues(tp.initializer.index);
  const scales = hostValues(tp.initializer.init_scale);
  acts.forEach((a) => {
    if (!SAMPLE_ACTIVATIONS[a]) throw new Error(`${who}: activation index must be 0..${SAMPLE_ACTIVATIONS.length - 1}, got ${a}`);
  });
  return acts.map((a, i) => ({ activation: a, initializer: { index: inits[i], initScale: scales[i] } }));
}

/**
 * The task params of the autoencoder families (image_mlp_ae.py, image_mlp_vae.py), stacked over keys:
 * per key `rng = PRNGSequence(key)`: initializer, activation, then each switch
 * `choice(next(rng), [True, False])`, in the order given.
 */
export function sampleWithSwitches(keys: PRNGKey[], switches: readonly string[]): PyTree {
  const rows = keys.map((k) => {
    const rng = new random.PRNGSequence(k);
    const initializer = sampleInitializer(rng.next());
    const activation = sampleActivation(rng.next()).index;
    return { initializer, activation, on: switches.map(() => choice(rng.next(), [true, false])) };
  });
  return {
    initializer: {
      index: tf.tensor1d(rows.map((r) => r.initializer.index), 'int32'),
      init_scale: tf.tensor1d(rows.map((r) => r.initializer.initScale), 'float32'),
    },
    activation: { index: tf.tensor1d(rows.map((r) => r.activation), 'int32') },
    ...Object.fromEntries(switches.map((s, j) => [s, tf.tensor1d(rows.map((r) => r.on[j]), 'bool')])),
  };
}

/** Those task params as one config per task: activation, initializer, and each switch (`on[j]` for `switches[j]`). */
export function switchedConfigs(taskParam: PyTree, switches: readonly string[], who: string): Array<ActivationAndInitializer & { on: boolean[] }> {
  const base = activationAndInitializerConfigs(taskParam, who);
  const tp = taskParam as Record<string, tf.Tensor>;
  const on = switches.map((s) => hostValues(tp[s]).map(Boolean));
  return base.map((c, i) => ({ ...c, on: on.map((v) => v[i]) }));
}

/**
 * The parametric classification tasks' normalizer: `(clip(nan_to_num(loss, max), 0, max) − log(C/5))
 * · 10 / log(C)` with max = log(2C) (image_mlp.py, image_conv.py).
 */
export function classificationNormalizer(loss: tf.Tensor, numClasses: number): tf.Tensor {
  return tf.tidy(() => {
    const maxClass = Math.log(2 * numClasses);
    const finite = tf.where(tf.isFinite(loss), loss, tf.fill(loss.shape, maxClass));
    return tf.mul(tf.sub(tf.clipByValue(finite, 0, maxClass), Math.log(numClasses / 5)), 10 / Math.log(numClasses));
  });
}

/** A sampled image MLP task (the reference's inner `_Task`), for one or N stacked task configs. */
export class ParametricImageMLPTask extends SampledTask<ParametricImageMLP, ActivationAndInitializer> {
  initBatch(keys: PRNGKey[]): Params {
    if (this.configs.length !== 1 && this.configs.length !== keys.length) {
      throw new Error(`ParametricImageMLP: ${keys.length} keys for ${this.configs.length} stacked task configs`);
    }
    return initSampledMlp(keys, this.family.sizes, (i) => this.row(i).initializer);
  }

  private activate(x: tf.Tensor): tf.Tensor {
    return activateRows(x, this.configs.map((c) => c.activation));
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const p = params as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
      const { image, label } = data as { image: tf.Tensor; label: tf.Tensor };
      const [N, B] = image.shape;
      let x = tf.reshape(image, [N, B, -1]);
      const depth = this.family.sizes.length - 1;
      for (let i = 0; i < depth; i++) {
        const { w, b } = p[`mlp/~/linear_${i}`];
        x = tf.add(tf.matMul(x, w), tf.expandDims(b, 1));
        if (i + 1 < depth) x = this.activate(x);
      }
      const labels = tf.oneHot(tf.cast(label, 'int32'), this.family.numClasses);
      return tf.mean(softmaxCrossEntropy(x, labels), -1);
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return classificationNormalizer(loss, this.family.numClasses);
  }
}

/** `ParametricImageMLP(datasets, num_classes, hidden_layers=(32, 32))`. */
export class ParametricImageMLP extends BaseTaskFamily {
  readonly name: string;
  readonly hiddenLayers: number[];
  readonly numClasses: number;
  readonly inputSize: number;

  constructor(opts: ParametricImageMLPOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricImageMLPSchema.parse(rest);
    this.datasets = datasets ?? parametricDatasets(c.datasetName, c.batchSize, c.imageSize);
    this.hiddenLayers = c.hiddenLayers;
    this.numClasses = c.numClasses ?? numClassesOf(this.datasets);
    this.name = c.name;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.inputSize = ab.image.shape.slice(1).reduce((a, b) => a * b, 1); // [batch, h, w, c]
  }

  get sizes(): number[] {
    return [this.inputSize, ...this.hiddenLayers, this.numClasses];
  }

  /** `act_key, init_key = split(key)`: `{activation: SampleActivation.sample(act_key), initializer: SampleInitializer.sample(init_key)}`. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return sampleActivationAndInitializer(keys);
  }

  taskFn(taskParam: PyTree): ParametricImageMLPTask {
    return new ParametricImageMLPTask(this, activationAndInitializerConfigs(taskParam, 'ParametricImageMLP'));
  }
}

registerConfigurable('ParametricImageMLP', (kw) => {
  const datasets = kw.datasets as Datasets;
  return new ParametricImageMLP({ datasets, numClasses: Number(kw.num_classes), hiddenLayers: kw.hidden_layers as number[], name: kw.name as string | undefined });
});

/**
 * `sample_image_mlp(key)`: `k1..k5 = split(key, 5)`; hidden size logInt(k1, 8, 128), depth choice(k2,
 * 0..4), image size logInt(k3, 4, 32), batch size logInt(k4, 4, 512), dataset from k5.
 */
export function sampleImageMlp(key: PRNGKey): CFGObject {
  const [k1, k2, k3, k4, k5] = random.split(key, 5);
  const hiddenSize = logInt(k1, 8, 128);
  const numLayers = choice(k2, [0, 1, 2, 3, 4]);
  const imageSize = logInt(k3, 4, 32);
  const batchSize = logInt(k4, 4, 512);
  const datasetName = sampleImageDataset(k5);
  const dataset = new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) });
  return new CFGObject('ParametricImageMLP', {
    hidden_layers: new LogFeature(Array(numLayers).fill(hiddenSize)),
    num_classes: SAMPLE_IMAGE_DATASETS[datasetName],
    datasets: dataset,
  });
}

/** The family a `sampleImageMlp` configuration describes (`object_from_config`). */
export function parametricImageMlpFromConfig(cfg: CFGObject): ParametricImageMLP {
  return objectFromConfig(cfg) as ParametricImageMLP;
}

/**
 * Options of the `SampledImageMLP` family ({@link sampledImageMlp}): the seed of the `sample_image_mlp` key
 * (default 7).
 */
export const SampledImageMLPSchema = z.object({ seed: z.number().int().nonnegative().max(2 ** 32 - 1).default(7) }).strict();

/**
 * The ParametricImageMLP family that `sample_image_mlp(PRNGKey(seed))` describes: hidden sizes,
 * depth, image size, batch size and dataset all sampled by the reference's sampler (a lopt-ts
 * entry point; the reference reaches it through `object_from_config`). Named
 * `SampledImageMLP_<seed>` so several seeds in one run keep their metrics apart. Seeds whose
 * sampled dataset lopt-ts cannot build (MNIST, ImageNet 16x16) are refused with the dataset named;
 * CIFAR needs its files in `$LOPT_DATA_DIR`. On Fashion-MNIST, the one offline dataset: seeds 7, 8,
 * 11, 12, 13, 19, ... in jax's legacy random mode.
 */
export function sampledImageMlp(opts: z.input<typeof SampledImageMLPSchema> = {}): ParametricImageMLP {
  const { seed } = SampledImageMLPSchema.parse(opts);
  const cfg = sampleImageMlp(random.PRNGKey(seed));
  const ds = cfg.kwargs.datasets as CFGObject;
  if (!(ds.obj in DATASET_FUNCTIONS)) {
    throw new Error(
      `SampledImageMLP: sample_image_mlp(PRNGKey(${seed})) samples dataset '${ds.obj}', which lopt-ts cannot load yet (available: ${Object.keys(DATASET_FUNCTIONS).join(', ')}); pick another seed`,
    );
  }
  return objectFromConfig(new CFGObject(cfg.obj, { ...cfg.kwargs, name: `SampledImageMLP_${seed}` })) as ParametricImageMLP;
}

registerPlugin({
  kind: 'task_family',
  name: 'SampledImageMLP',
  description: 'the ParametricImageMLP that sample_image_mlp(PRNGKey(seed)) describes (sizes, depth, image and batch size sampled)',
  schema: SampledImageMLPSchema,
  create: (c) => sampledImageMlp(c),
});
registerPlugin({
  kind: 'task_family',
  name: 'ParametricImageMLP',
  description: 'image MLP with a sampled activation (12) and weight initializer (5) per task',
  schema: ParametricImageMLPSchema,
  create: (c) => new ParametricImageMLP(c),
  cls: ParametricImageMLP,
});
