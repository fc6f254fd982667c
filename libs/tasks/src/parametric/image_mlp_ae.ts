/**
 * The parametric MLP autoencoder family (reference `tasks/parametric/image_mlp_ae.py`):
 * `ParametricImageMLPAE` samples, per task, an activation, a weight initializer and three switches
 * (`log_loss`, `center_data`, `constrain_output`); `sampleImageMlpAe` samples a whole family
 * (hidden sizes, depth, image size, batch size, dataset).
 *
 * A task: `hk.nets.MLP(hiddenSizes + [features])` on the flattened image (centred to [−1, 1] when
 * `center_data`), its output squashed (tanh when centred, else sigmoid) when `constrain_output`,
 * and the loss `mean((pred − image)²)` taken over axis 1 (the image's height) first, then, with
 * `log_loss`, `log(· + 1e−8)` before the mean over the rest (a quirk kept: the log of per-column
 * means, not of the whole mean).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, Params } from '../base';
import { BaseTaskFamily } from '../task';
import { CFGObject, LogFeature, registerConfigurable } from './cfgobject';
import { PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import { activateRows, initSampledMlp, SampledTask, sampleWithSwitches, switchedConfigs } from './image_mlp';
import { choice, logInt, sampleImageDataset, type InitializerConfig } from './parametric_utils';

/**
 * The configurable part of {@link ParametricImageMLPAE} (reference `tasks/parametric/image_mlp_ae.py`); the
 * schema holds every default.
 */
export const ParametricImageMLPAESchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    hiddenSizes: z.array(z.number().int().positive()).default([32, 32]),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricImageMLPAE'),
  })
  .strict();
/**
 * Options of {@link ParametricImageMLPAE}: the fields of {@link ParametricImageMLPAESchema} (all optional)
 * plus prebuilt datasets.
 */
export type ParametricImageMLPAEOptions = z.input<typeof ParametricImageMLPAESchema> & { datasets?: Datasets };

interface AEConfig {
  activation: number;
  initializer: InitializerConfig;
  logLoss: boolean;
  centerData: boolean;
  constrainOutput: boolean;
}

const SWITCHES = ['log_loss', 'center_data', 'constrain_output'] as const;

/** A sampled autoencoder task (the reference's inner `_Task`), for one or N stacked configs. */
export class ParametricImageMLPAETask extends SampledTask<ParametricImageMLPAE, AEConfig> {
  initBatch(keys: PRNGKey[]): Params {
    return initSampledMlp(keys, this.family.sizes, (i) => this.row(i).initializer);
  }

  /** `[N, 1, ...]` (rank `rank`) true where task i's switch is on. */
  private mask(N: number, rank: number, on: (c: AEConfig) => boolean): tf.Tensor {
    const v = Array.from({ length: N }, (_, i) => on(this.row(i)));
    return tf.reshape(tf.tensor1d(v, 'bool'), [N, ...new Array(rank - 1).fill(1)]);
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const p = params as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
      const raw = (data as { image: tf.Tensor }).image; // [N, B, H, W, C]
      const N = raw.shape[0];
      const image = tf.where(this.mask(N, raw.rank, (c) => c.centerData), tf.mul(2, tf.sub(raw, 0.5)), raw);
      const depth = this.family.sizes.length - 1;
      let h = tf.reshape(image, [N, raw.shape[1] as number, -1]);
      for (let i = 0; i < depth; i++) {
        const { w, b } = p[`mlp/~/linear_${i}`];
        h = tf.add(tf.matMul(h, w), tf.expandDims(b, 1));
        if (i + 1 < depth) h = activateRows(h, this.configs.map((c) => c.activation));
      }
      let pred = tf.reshape(h, raw.shape);
      const squashed = tf.where(this.mask(N, raw.rank, (c) => c.centerData), tf.tanh(pred), tf.sigmoid(pred));
      pred = tf.where(this.mask(N, raw.rank, (c) => c.constrainOutput), squashed, pred);
      const perColumn = tf.mean(tf.square(tf.sub(pred, image)), 2); // the reference's axis=1 of [B, H, W, C]
      const vec = tf.where(this.mask(N, perColumn.rank, (c) => c.logLoss), tf.log(tf.add(perColumn, 1e-8)), perColumn);
      return tf.mean(tf.reshape(vec, [N, -1]), 1);
    });
  }

  /** `clip(nan_to_num(logLoss ? x : log(x + 1e−8), 1), −12, 1) · 0.5 + 10`; the task axis is the last. */
  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const N = loss.rank === 0 ? 1 : loss.shape[loss.rank - 1];
      const logLoss = tf.tensor1d(Array.from({ length: N }, (_, i) => this.row(i).logLoss), 'bool');
      const out = tf.where(loss.rank === 0 ? tf.reshape(logLoss, []) : logLoss, loss, tf.log(tf.add(loss, 1e-8)));
      const finite = tf.where(tf.isFinite(out), out, tf.onesLike(out));
      return tf.add(tf.mul(tf.clipByValue(finite, -12, 1), 0.5), 10);
    });
  }
}

/** `ParametricImageMLPAE(datasets, hidden_sizes=(32, 32))`. */
export class ParametricImageMLPAE extends BaseTaskFamily {
  readonly name: string;
  readonly hiddenSizes: number[];
  readonly features: number;

  constructor(opts: ParametricImageMLPAEOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricImageMLPAESchema.parse(rest);
    this.datasets = datasets ?? parametricDatasets(c.datasetName, c.batchSize, c.imageSize);
    this.hiddenSizes = c.hiddenSizes;
    this.name = c.name;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.features = ab.image.shape.slice(1).reduce((a, b) => a * b, 1); // [batch, h, w, c]
  }

  get sizes(): number[] {
    return [this.features, ...this.hiddenSizes, this.features];
  }

  /** `rng = PRNGSequence(key)`: initializer, activation, then the three switches, each `choice(next(rng), [True, False])`. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return sampleWithSwitches(keys, SWITCHES);
  }

  taskFn(taskParam: PyTree): ParametricImageMLPAETask {
    const configs = switchedConfigs(taskParam, SWITCHES, 'ParametricImageMLPAE').map(({ on: [logLoss, centerData, constrainOutput], ...c }) => ({
      ...c,
      logLoss,
      centerData,
      constrainOutput,
    }));
    return new ParametricImageMLPAETask(this, configs);
  }
}

registerConfigurable('ParametricImageMLPAE', (kw) => new ParametricImageMLPAE({ datasets: kw.datasets as Datasets, hiddenSizes: kw.hidden_sizes as number[] }));

/** `sample_image_mlp_ae(key)`: from a PRNGSequence, hidden size, depth, image size, batch size, dataset. */
export function sampleImageMlpAe(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const hiddenSize = logInt(rng.next(), 8, 128);
  const numLayers = choice(rng.next(), [0, 1, 2, 3, 4]);
  const imageSize = logInt(rng.next(), 4, 32);
  const batchSize = logInt(rng.next(), 4, 512);
  const datasetName = sampleImageDataset(rng.next());
  return new CFGObject('ParametricImageMLPAE', {
    hidden_sizes: new LogFeature(Array(numLayers).fill(hiddenSize)),
    datasets: new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) }),
  });
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricImageMLPAE',
  description: 'MLP autoencoder with a sampled activation, initializer, log loss, data centring and output squashing per task',
  schema: ParametricImageMLPAESchema,
  create: (c) => new ParametricImageMLPAE(c),
  cls: ParametricImageMLPAE,
});
