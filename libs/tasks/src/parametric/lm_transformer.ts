/**
 * The parametric transformer language-model family (reference
 * `tasks/parametric/lm_transformer.py`): `ParametricLMTransformer` has nothing to sample per task
 * (its `sample` is an empty `CFGNamed`: every task of a family is the same network, differing only
 * in the init key), and `sampleLmTransformer` samples a whole family (heads, width per head,
 * layers, batch size, sequence length, dataset, vocabulary).
 *
 * A task is `Transformer(num_heads, num_layers, d_model, dropout_rate=0.1 by default)` over the
 * folded observations (`1 + t % (v - 1)` above v; the mask reads the folded ones too), the masked
 * next-token loss, and the normalizer `(clip(nan_to_num(loss, max), 0, max) − log(v/5)) · 10 /
 * log(v)`, max = log(2v). Dropout draws from the loss key (one key per task).
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Datasets } from '../base';
import { LANGUAGE_DATASET_FUNCTIONS, languageDatasetsByName } from '../datasets/language';
import { BaseTaskFamily } from '../task';
import { TransformerLMTask } from '../transformer_lm';
import { CFGObject, LogFeature, objectFromConfig, registerConfigurable } from './cfgobject';
import { classificationNormalizer } from './image_mlp';
import { SAMPLED_LM_DATASETS } from './lm_rnn';
import { choice, logInt } from './parametric_utils';

const DATASET_NAMES = Object.keys(LANGUAGE_DATASET_FUNCTIONS) as [keyof typeof LANGUAGE_DATASET_FUNCTIONS, ...Array<keyof typeof LANGUAGE_DATASET_FUNCTIONS>];

/**
 * The configurable part of {@link ParametricLMTransformer} (reference `tasks/parametric/lm_transformer.py`);
 * the schema holds every default.
 */
export const ParametricLMTransformerSchema = z
  .object({
    datasetName: z.enum(DATASET_NAMES).default('fortunes_bytes_datasets'),
    batchSize: z.number().int().positive().default(8),
    sequenceLength: z.number().int().positive().default(16),
    /** Below the dataset's vocabulary, tokens are folded into it; default the dataset's. */
    vocabSize: z.number().int().min(2).optional(),
    numHeads: z.number().int().positive().default(4),
    numLayers: z.number().int().positive().default(1),
    dModel: z.number().int().positive().default(32),
    dropoutRate: z.number().min(0).lt(1).default(0.1),
    name: z.string().default('ParametricLMTransformer'),
  })
  .strict();

/**
 * Options of {@link ParametricLMTransformer}: the fields of {@link ParametricLMTransformerSchema} (all
 * optional) plus prebuilt datasets.
 */
export type ParametricLMTransformerOptions = z.input<typeof ParametricLMTransformerSchema> & { datasets?: Datasets };

/** A task of the family: the fixed transformer task with the family's normalizer. */
export class ParametricLMTransformerTask extends TransformerLMTask {
  override normalizer(loss: tf.Tensor): tf.Tensor {
    return classificationNormalizer(loss, this.shape.vocabSize);
  }
}

/**
 * The parametric transformer LM family (reference `tasks/parametric/lm_transformer.py`,
 * `ParametricLMTransformer`): every task the same network, differing only in its init key.
 */
export class ParametricLMTransformer extends BaseTaskFamily {
  readonly name: string;
  readonly options: z.output<typeof ParametricLMTransformerSchema>;
  private task: ParametricLMTransformerTask | null = null;

  constructor(opts: ParametricLMTransformerOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    this.options = ParametricLMTransformerSchema.parse(rest);
    this.datasets = datasets ?? languageDatasetsByName(this.options.datasetName, this.options.batchSize, this.options.sequenceLength);
    this.name = this.options.name;
  }

  get vocabSize(): number {
    return this.options.vocabSize ?? Number(this.datasets!.extraInfo?.vocab_size);
  }

  /** `CFGNamed("ParametricLMTransformer", {})`: no values, so an empty tree for any number of keys. */
  sampleBatch(_keys: PRNGKey[]): PyTree {
    return {};
  }

  override sample(_key: PRNGKey): PyTree {
    return {};
  }

  taskFn(_taskParam: PyTree): ParametricLMTransformerTask {
    const o = this.options;
    this.task ??= new ParametricLMTransformerTask({
      datasets: this.datasets!,
      numHeads: o.numHeads,
      numLayers: o.numLayers,
      dModel: o.dModel,
      dropoutRate: o.dropoutRate,
      vocabSize: o.vocabSize,
      name: '_Task',
    });
    return this.task;
  }
}

registerConfigurable('ParametricLMTransformer', (kw) => {
  const datasets = kw.datasets as Datasets;
  return new ParametricLMTransformer({
    datasets,
    vocabSize: kw.vocab_size === undefined || kw.vocab_size === null ? undefined : Number(kw.vocab_size),
    numHeads: Number(kw.num_heads),
    numLayers: Number(kw.num_layers),
    dModel: Number(kw.d_model),
    dropoutRate: kw.dropout_rate === undefined ? undefined : Number(kw.dropout_rate),
    name: kw.name as string | undefined,
  });
});

/**
 * `sample_lm_transformer(key)`: from `PRNGSequence(key)`: width per head logInt(8, 128), heads
 * logInt(8, 128) (d_model = their product), layers logInt(1, 8), batch size logInt(4, 512),
 * sequence length logInt(4, 512), dataset, vocab size logInt(100, 10000).
 */
export function sampleLmTransformer(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const dModelPerHead = logInt(rng.next(), 8, 128);
  const numHeads = logInt(rng.next(), 8, 128);
  const numLayers = logInt(rng.next(), 1, 8);
  const batchSize = logInt(rng.next(), 4, 512);
  const sequenceLength = logInt(rng.next(), 4, 512);
  const datasetName = choice(rng.next(), SAMPLED_LM_DATASETS);
  const dataset = new CFGObject(datasetName, { sequence_length: new LogFeature(sequenceLength), batch_size: new LogFeature(batchSize) });
  const vocabSize = logInt(rng.next(), 100, 10000);
  return new CFGObject('ParametricLMTransformer', {
    vocab_size: new LogFeature(vocabSize),
    d_model: new LogFeature(numHeads * dModelPerHead),
    num_heads: new LogFeature(numHeads),
    num_layers: new LogFeature(numLayers),
    datasets: dataset,
  });
}

/** The family a {@link sampleLmTransformer} configuration describes (`object_from_config`). */
export function parametricLmTransformerFromConfig(cfg: CFGObject): ParametricLMTransformer {
  return objectFromConfig(cfg) as ParametricLMTransformer;
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricLMTransformer',
  description: 'decoder-only transformer language model family (every task the same network; dropout 0.1 by default)',
  schema: ParametricLMTransformerSchema,
  create: (c) => new ParametricLMTransformer(c),
  cls: ParametricLMTransformer,
});
