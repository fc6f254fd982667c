/**
 * The parametric RNN language-model family (reference `tasks/parametric/lm_rnn.py`):
 * `ParametricLMRNN` samples, per task, a weight initializer (`SampleInitializer`) used by the
 * embedding and the output layer (the core keeps haiku's defaults), and `sampleLmRnn` samples a
 * whole family (sizes, batch size, sequence length, dataset, vocabulary, core).
 *
 * Differences from the fixed `RNNLMTask` kept as the reference has them: the network reads the
 * folded observations (`1 + t % (v - 1)` above v), and the loss's mask the unfolded ones; the
 * normalizer is `(clip(nan_to_num(loss, max), 0, max) − log(v/5)) · 10 / log(v)`, max = log(2v).
 * Quirk kept: the gin names `vanilla_rnn_fn` and `gru_fn` both return `hk.LSTM` in the reference,
 * so a sampled family with either builds an LSTM.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, initializers, random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, Params } from '../base';
import { LANGUAGE_DATASET_FUNCTIONS, languageDatasetsByName } from '../datasets/language';
import { embed, foldVocab, initEmbed, initRnnCore, linearOf, maskedTokenLoss, param, RNN_CORES, rnnStateSizes, unrollRnn, type RnnCore } from '../lm_modules';
import { BaseTaskFamily } from '../task';
import { CFGObject, LogFeature, objectFromConfig, registerConfigurable } from './cfgobject';
import { choice, logInt, sampledInitializer, sampleInitializer, type InitializerConfig } from './parametric_utils';
import { classificationNormalizer, SampledTask, stackHaikuRows } from './image_mlp';

const DATASET_NAMES = Object.keys(LANGUAGE_DATASET_FUNCTIONS) as [keyof typeof LANGUAGE_DATASET_FUNCTIONS, ...Array<keyof typeof LANGUAGE_DATASET_FUNCTIONS>];

/**
 * The configurable part of {@link ParametricLMRNN} (reference `tasks/parametric/lm_rnn.py`); the schema holds
 * every default.
 */
export const ParametricLMRNNSchema = z
  .object({
    datasetName: z.enum(DATASET_NAMES).default('fortunes_bytes_datasets'),
    batchSize: z.number().int().positive().default(16),
    sequenceLength: z.number().int().positive().default(32),
    rnnSize: z.number().int().positive().default(64),
    embedSize: z.number().int().positive().default(32),
    core: z.enum(RNN_CORES).default('lstm'),
    /** Below the dataset's vocabulary, tokens are folded into it; default the dataset's. */
    vocabSize: z.number().int().min(2).optional(),
    name: z.string().default('ParametricLMRNN'),
  })
  .strict();

/**
 * Options of {@link ParametricLMRNN}: the fields of {@link ParametricLMRNNSchema} (all optional) plus
 * prebuilt datasets.
 */
export type ParametricLMRNNOptions = z.input<typeof ParametricLMRNNSchema> & { datasets?: Datasets };

/** Task params `{initializer: {index, init_scale}}` (scalars or `[N]`) as one config per task. */
function initializerConfigs(taskParam: PyTree): InitializerConfig[] {
  const tp = taskParam as { initializer: { index: tf.Tensor; init_scale: tf.Tensor } };
  const idx = Array.from(tp.initializer.index.dataSync());
  const scale = Array.from(tp.initializer.init_scale.dataSync());
  return idx.map((index, i) => ({ index, initScale: scale[i] }));
}

/**
 * A task of {@link ParametricLMRNN}: the RNN language model with each task's sampled initializer, for one or
 * N stacked configs.
 */
export class ParametricLMRNNTask extends SampledTask<ParametricLMRNN, InitializerConfig> {
  initBatch(keys: PRNGKey[]): Params {
    if (this.configs.length !== 1 && this.configs.length !== keys.length) {
      throw new Error(`ParametricLMRNN: ${keys.length} keys for ${this.configs.length} stacked task configs`);
    }
    const f = this.family;
    return stackHaikuRows(
      keys.map((k, i) =>
        haikuInit(k, (hk) => {
          const wInit = sampledInitializer(this.row(i));
          initEmbed(hk, 'embed', f.vocabSize, f.embedSize, wInit);
          rnnStateSizes(f.core, f.rnnSize).forEach((shape, j) => hk.getParameter('~', `initial_state_${j}`, shape, initializers.zeros()));
          initRnnCore(hk, f.core, f.embedSize, f.rnnSize);
          hk.linear('linear', f.rnnSize, f.vocabSize, { wInit });
        }),
      ),
    );
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const f = this.family;
      const d = data as { obs: tf.Tensor; target: tf.Tensor };
      const fold = f.vocabSize < f.maxVocabSize;
      const obs = fold ? foldVocab(d.obs, f.vocabSize) : d.obs;
      const target = fold ? foldVocab(d.target, f.vocabSize) : d.target;
      const p = params as Record<string, Record<string, tf.Tensor>>;
      const B = obs.shape[1] as number;
      const x = embed(param(p, 'embed', 'embeddings'), obs);
      const state = rnnStateSizes(f.core, f.rnnSize).map((_, i) => tf.tile(param(p, '~', `initial_state_${i}`), [1, B, 1]));
      const logits = linearOf(p, 'linear', unrollRnn(p, f.core, x, state));
      return maskedTokenLoss(logits, target, d.obs);
    });
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return classificationNormalizer(loss, this.family.vocabSize);
  }
}

/** `ParametricLMRNN(datasets, rnn_size, embed_size, rnn_core_fn, vocab_size=None)`. */
export class ParametricLMRNN extends BaseTaskFamily {
  readonly name: string;
  readonly rnnSize: number;
  readonly embedSize: number;
  readonly core: RnnCore;
  readonly vocabSize: number;
  readonly maxVocabSize: number;

  constructor(opts: ParametricLMRNNOptions = {}) {
    super();
    const { datasets, ...rest } = opts;
    const c = ParametricLMRNNSchema.parse(rest);
    this.datasets = datasets ?? languageDatasetsByName(c.datasetName, c.batchSize, c.sequenceLength);
    this.maxVocabSize = Number(this.datasets.extraInfo?.vocab_size);
    this.vocabSize = c.vocabSize ?? this.maxVocabSize;
    this.rnnSize = c.rnnSize;
    this.embedSize = c.embedSize;
    this.core = c.core;
    this.name = c.name;
  }

  /** `{initializer: SampleInitializer.sample(key)}`. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    const rows = keys.map((k) => sampleInitializer(k));
    return {
      initializer: {
        index: tf.tensor1d(rows.map((r) => r.index), 'int32'),
        init_scale: tf.tensor1d(rows.map((r) => r.initScale), 'float32'),
      },
    };
  }

  taskFn(taskParam: PyTree): ParametricLMRNNTask {
    return new ParametricLMRNNTask(this, initializerConfigs(taskParam));
  }
}

// the gin names of lm_rnn.py's core functions (vanilla_rnn_fn and gru_fn return hk.LSTM there)
const CORE_FUNCTIONS: Record<string, RnnCore> = { lstm_fn: 'lstm', vanilla_rnn_fn: 'lstm', gru_fn: 'lstm', irnn_fn: 'irnn' };
for (const [fn, core] of Object.entries(CORE_FUNCTIONS)) registerConfigurable(fn, () => core);
for (const fn of Object.keys(LANGUAGE_DATASET_FUNCTIONS)) {
  registerConfigurable(fn, (kw) => languageDatasetsByName(fn, Number(kw.batch_size), Number(kw.sequence_length)));
}
registerConfigurable('ParametricLMRNN', (kw) => {
  const datasets = kw.datasets as Datasets;
  return new ParametricLMRNN({
    datasets,
    rnnSize: Number(kw.rnn_size),
    embedSize: Number(kw.embed_size),
    core: kw.rnn_core_fn as RnnCore,
    vocabSize: kw.vocab_size === undefined || kw.vocab_size === null ? undefined : Number(kw.vocab_size),
    name: kw.name as string | undefined,
  });
});

/** The dataset functions `sample_lm_rnn` and `sample_lm_transformer` choose from. */
export const SAMPLED_LM_DATASETS = ['lm1b_32k_datasets', 'lm1b_bytes_datasets', 'wikipedia_en_32k_datasets', 'wikipedia_en_bytes_datasets'] as const;

/**
 * `sample_lm_rnn(key)`: from `PRNGSequence(key)`: rnn size logInt(8, 256), embed size logInt(8,
 * 256), batch size logInt(4, 512), sequence length logInt(4, 512), dataset, vocab size logInt(100,
 * 10000), core function (lstm_fn, vanilla_rnn_fn, gru_fn).
 */
export function sampleLmRnn(key: PRNGKey): CFGObject {
  const rng = new random.PRNGSequence(key);
  const rnnSize = logInt(rng.next(), 8, 256);
  const embedSize = logInt(rng.next(), 8, 256);
  const batchSize = logInt(rng.next(), 4, 512);
  const sequenceLength = logInt(rng.next(), 4, 512);
  const datasetName = choice(rng.next(), SAMPLED_LM_DATASETS);
  const dataset = new CFGObject(datasetName, { sequence_length: new LogFeature(sequenceLength), batch_size: new LogFeature(batchSize) });
  const vocabSize = logInt(rng.next(), 100, 10000);
  const coreFn = choice(rng.next(), ['lstm_fn', 'vanilla_rnn_fn', 'gru_fn']);
  return new CFGObject('ParametricLMRNN', {
    vocab_size: new LogFeature(vocabSize),
    rnn_size: new LogFeature(rnnSize),
    embed_size: new LogFeature(embedSize),
    datasets: dataset,
    rnn_core_fn: new CFGObject(coreFn, {}),
  });
}

/** The family a {@link sampleLmRnn} configuration describes (`object_from_config`). */
export function parametricLmRnnFromConfig(cfg: CFGObject): ParametricLMRNN {
  return objectFromConfig(cfg) as ParametricLMRNN;
}

registerPlugin({
  kind: 'task_family',
  name: 'ParametricLMRNN',
  description: 'RNN language model with a sampled weight initializer (5) per task for the embedding and output layer',
  schema: ParametricLMRNNSchema,
  create: (c) => new ParametricLMRNN(c),
  cls: ParametricLMRNN,
});
