/**
 * The parametric MLP variational autoencoder family (reference `tasks/parametric/image_mlp_vae.py`,
 * with `tasks/generative_model_utils.py`): `ParametricImageMLPVAE` samples, per task, a weight
 * initializer, an activation and two switches (`center_data`, `per_dim_loss`); `sampleImageMlpVae`
 * samples a whole family (encoder and decoder widths and depths, latent size, image size, batch
 * size, dataset).
 *
 * A task (the reference's `_forward`): the flattened image (centred to [−1, 1] when `center_data`)
 * goes through `hk.nets.MLP(encHiddenSizes + [2·nZ], name='mlp_encoder')`, read as
 * `[mu, log_sigma]` (LogStddevNormal); `z = eps·exp(log_sigma) + mu` with `eps` drawn from the loss
 * key's first haiku key; `hk.nets.MLP(decHiddenSizes + [2·D], name='mlp_decoder')(z)` clipped to
 * [−10, 10] is the quantized normal p(x|z), whose log-prob adds uniform noise in ±1/510 to the image
 * (drawn from the second haiku key) and `log(1/255)`; the loss is the batch mean of
 * `−(Σ log p(x|z) − Σ KL(q‖N(0, 1)))`, divided by D when `per_dim_loss`. The haiku key order is the
 * reference's: in `init` too the first key goes to the sampling, before any weight.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, Params } from '../base';
import { BaseTaskFamily } from '../task';
import { CFGObject, LogFeature, registerConfigurable } from './cfgobject';
import { PARAMETRIC_DATASET_NAMES, parametricDatasets } from './datasets';
import { activateRows, SampledTask, sampleWithSwitches, stackHaikuRows, switchedConfigs } from './image_mlp';
import { choice, logInt, sampledInitializer, sampleImageDataset, type InitializerConfig } from './parametric_utils';

/**
 * The configurable part of {@link ParametricImageMLPVAE} (reference `tasks/parametric/image_mlp_vae.py`); the
 * schema holds every default.
 */
export const ParametricImageMLPVAESchema = z
  .object({
    datasetName: z.enum(PARAMETRIC_DATASET_NAMES).default('fashion_mnist'),
    batchSize: z.number().int().positive().default(128),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([8, 8]),
    encHiddenSizes: z.array(z.number().int().positive()).default([32, 32]),
    decHiddenSizes: z.array(z.number().int().positive()).default([32, 32]),
    nZ: z.number().int().positive().default(32),
    /** Metric-key name; the reference's class name by default. */
    name: z.string().default('ParametricImageMLPVAE'),
  })
  .strict();
/**
 * Options of {@link ParametricImageMLPVAE}: the fields of {@link ParametricImageMLPVAESchema} (all optional)
 * plus prebuilt datasets.
 */
export type ParametricImageMLPVAEOptions = z.input<typeof ParametricImageMLPVAESchema> & { datasets?: Datasets };

interface VAEConfig {
  activation: number;
  initializer: InitializerConfig;
  centerData: boolean;
  perDimLoss: boolean;
}

const SWITCHES = ['center_data', 'per_dim_loss'] as const;

/** `HKQuantizedNormal(bin_size=1/255)`: the noise's half-width and the `log(bin_size)` offset (float32). */
const BIN_SIZE = 1 / 255;
const LOG_BIN = Math.fround(Math.log(Math.fround(BIN_SIZE)));
const HALF_LOG_2PI = Math.fround(0.5 * Math.log(2 * Math.PI));

type Linear = { w: tf.Tensor; b: tf.Tensor };

/** A sampled VAE task (the reference's inner `_Task`), for one or N stacked configs. */
export class ParametricImageMLPVAETask extends SampledTask<ParametricImageMLPVAE, VAEConfig> {
  /** `hk.transform(_forward).init(key, image)` per key: the sampling key first, then the encoder's and the decoder's weights. */
  initBatch(keys: PRNGKey[]): Params {
    const f = this.family;
    const rows = keys.map((k, i) =>
      haikuInit(k, (hk) => {
        const wInit = sampledInitializer(this.row(i).initializer);
        hk.nextRngKey(); // log_prob_elbo_components(..., hk.next_rng_key()) is evaluated before the encoder runs
        hk.mlp(f.features, [...f.encHiddenSizes, 2 * f.nZ], { name: 'mlp_encoder', wInit });
        hk.mlp(f.nZ, [...f.decHiddenSizes, 2 * f.features], { name: 'mlp_decoder', wInit });
      }),
    );
    return stackHaikuRows(rows);
  }

  /** `[N, 1, ...]` (rank `rank`) true where task i's switch is on. */
  private mask(N: number, rank: number, on: (c: VAEConfig) => boolean): tf.Tensor {
    const v = Array.from({ length: N }, (_, i) => on(this.row(i)));
    return tf.reshape(tf.tensor1d(v, 'bool'), [N, ...new Array(rank - 1).fill(1)]);
  }

  private mlp(p: Record<string, Linear>, name: string, depth: number, x: tf.Tensor): tf.Tensor {
    let h = x;
    for (let i = 0; i < depth; i++) {
      const { w, b } = p[`${name}/~/linear_${i}`];
      h = tf.add(tf.matMul(h, w), tf.expandDims(b, 1));
      if (i + 1 < depth) h = activateRows(h, this.configs.map((c) => c.activation));
    }
    return h;
  }

  /** One loss key per task: its haiku sequence gives the latent's normal draw, then the quantization noise. */
  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    if (!keys) throw new Error('ParametricImageMLPVAE: the loss samples the latent and needs one key per task');
    return tf.tidy(() => {
      const f = this.family;
      const p = params as Record<string, Linear>;
      const raw = (data as { image: tf.Tensor }).image; // [N, B, H, W, C]
      const N = raw.shape[0];
      const B = raw.shape[1] as number;
      const D = f.features;
      if (keys.length !== N) throw new Error(`ParametricImageMLPVAE: ${keys.length} keys for ${N} stacked tasks`);
      const draws = keys.map((k) => {
        const rng = new random.PRNGSequence(k);
        const eps = random.normalArray(rng.next(), B * f.nZ);
        const noise = random.uniformArray(rng.next(), B * D, -BIN_SIZE * 0.5, BIN_SIZE * 0.5);
        return { eps, noise };
      });
      const eps = tf.stack(draws.map((d) => tf.tensor2d(d.eps, [B, f.nZ])));
      const noise = tf.stack(draws.map((d) => tf.tensor2d(d.noise, [B, D])));
      const image = tf.where(this.mask(N, raw.rank, (c) => c.centerData), tf.mul(2, tf.sub(raw, 0.5)), raw);
      const x = tf.reshape(image, [N, B, D]);
      // q(z|x) = LogStddevNormal(encoder(x)); z = q.sample(seed): normal(seed)·scale + loc
      const enc = this.mlp(p, 'mlp_encoder', f.encHiddenSizes.length + 1, x);
      const mu = tf.slice(enc, [0, 0, 0], [N, B, f.nZ]);
      const sigma = tf.exp(tf.slice(enc, [0, 0, f.nZ], [N, B, f.nZ]));
      const zs = tf.add(tf.mul(eps, sigma), mu);
      // tfp's _kl_normal_normal against the prior N(0, exp(0)): diff_log_scale = log(scale) − log(1)
      const diffLogScale = tf.log(sigma);
      const kl = tf.sum(tf.sub(tf.add(tf.mul(0.5, tf.square(mu)), tf.mul(0.5, tf.expm1(tf.mul(2, diffLogScale)))), diffLogScale), 2);
      // p(x|z) = HKQuantizedNormal(clip(decoder(z), −10, 10)); log_prob(x + noise) + log(bin_size)
      const dec = tf.clipByValue(this.mlp(p, 'mlp_decoder', f.decHiddenSizes.length + 1, zs), -10, 10);
      const muX = tf.slice(dec, [0, 0, 0], [N, B, D]);
      const scaleX = tf.exp(tf.slice(dec, [0, 0, D], [N, B, D]));
      const xn = tf.add(x, noise);
      const logUnnormalized = tf.mul(-0.5, tf.square(tf.sub(tf.div(xn, scaleX), tf.div(muX, scaleX))));
      const logProb = tf.add(tf.sub(logUnnormalized, tf.add(HALF_LOG_2PI, tf.log(scaleX))), LOG_BIN);
      let elbo = tf.sub(tf.sum(logProb, 2), kl); // [N, B]
      elbo = tf.where(this.mask(N, 2, (c) => c.perDimLoss), tf.div(elbo, D), elbo);
      return tf.mean(tf.neg(elbo), 1);
    });
  }

  /** `clip(nan_to_num(per_dim_loss ? x : x / D, nan=10, ±inf=10), 0, 10)`; the task axis is the last. */
  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const N = loss.rank === 0 ? 1 : loss.shape[loss.rank - 1];
      const perDim = tf.tensor1d(Array.from({ length: N }, (_, i) => this.row(i).perDimLoss), 'bool');
      const out = tf.where(loss.rank === 0 ? tf.reshape(perDim, []) : perDim, loss, tf.div(loss, this.family.features));
      const finite = tf.where(tf.isFinite(out), out, tf.fill(out.shape, 10));
      return tf.clipByValue(finite, 0, 10);
    });
  }
}

/** `ParametricImageMLPVAE(datasets, enc_hidden_sizes=(32, 32), dec_hidden_sizes=(32, 32), n_z=32)`. */
export class ParametricImageMLPVAE extends BaseTaskFamily {
  readonly name: string;
  readonly encHiddenSizes: number[];
  readonly decHiddenSizes: number[];
  readonly nZ: number;
  readonly features: number;

  constructor(opts: ParametricImageMLPVAEOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricImageMLPVAESchema.parse(rest);
    this.datasets = datasets ?? parametricDatasets(c.datasetName, c.batchSize, c.imageSize);
    this.encHiddenSizes = c.encHiddenSizes;
    this.decHiddenSizes = c.decHiddenSizes;
    this.nZ = c.nZ;
    this.name = c.name;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.features = ab.image.shape.slice(1).reduce((a, b) => a * b, 1); // [batch, h, w, c]
  }

  /** `rng = PRNGSequence(key)`: initializer, activation, then `center_data` and `per_dim_loss`, each `choice(next(rng), [True, False])`. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    return sampleWithSwitches(keys, SWITCHES);
  }

  taskFn(taskParam: PyTree): ParametricImageMLPVAETask {
    const configs = switchedConfigs(taskParam, SWITCHES, 'ParametricImageMLPVAE').map(({ on: [centerData, perDimLoss], ...c }) => ({ ...c, centerData, perDimLoss }));
    return new ParametricImageMLPVAETask(this, configs);
  }
}

registerConfigurable(
  'ParametricImageMLPVAE',
  (kw) =>
    new ParametricImageMLPVAE({
      datasets: kw.datasets as Datasets,
      encHiddenSizes: kw.enc_hidden_sizes as number[],
      decHiddenSizes: kw.dec_hidden_sizes as number[],
      nZ: kw.n_z as number,
    }),
);

/** `sample_image_mlp_vae(key)`: from a PRNGSequence, encoder and decoder width and depth, image size, batch size, latent size, dataset. */
export function sampleImageMlpVae(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const encHiddenSize = logInt(rng.next(), 4, 128);
  const decHiddenSize = logInt(rng.next(), 4, 128);
  const encNumLayers = choice(rng.next(), [0, 1, 2, 3, 4]);
  const decNumLayers = choice(rng.next(), [0, 1, 2, 3, 4]);
  const imageSize = logInt(rng.next(), 4, 32);
  const batchSize = logInt(rng.next(), 4, 512);
  const nZ = logInt(rng.next(), 2, 128);
  const datasetName = sampleImageDataset(rng.next());
  return new CFGObject('ParametricImageMLPVAE', {
    enc_hidden_sizes: new LogFeature(Array(encNumLayers).fill(encHiddenSize)),
    dec_hidden_sizes: new LogFeature(Array(decNumLayers).fill(decHiddenSize)),
    n_z: new LogFeature(nZ),
    datasets: new CFGObject(datasetName, { image_size: new LogFeature([imageSize, imageSize]), batch_size: new LogFeature(batchSize) }),
  });
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricImageMLPVAE',
  description: 'MLP variational autoencoder with a sampled activation, initializer, data centring and per-dimension loss per task',
  schema: ParametricImageMLPVAESchema,
  create: (c) => new ParametricImageMLPVAE(c),
  cls: ParametricImageMLPVAE,
});
