/**
 * Recurrent language models (reference `tasks/fixed/rnn_lm.py`, `TeacherForcedRNNLM`):
 * `hk.Embed(vocab, embed)` of the observed tokens, a learnable initial state (the leaves of
 * `core.initial_state(1)` as zero-initialised parameters `~/initial_state_<i>`, tiled over the
 * batch), `hk.dynamic_unroll` of the core (`hk.LSTM`, `hk.GRU`, `hk.VanillaRNN`, `rnn.IRNN`), then
 * `hk.Linear(vocab)`; the loss is the softmax cross-entropy of the next token averaged over the
 * positions whose observed token is not padding (0).
 *
 * With a `vocabSize` below the dataset's, targets above it are folded (`1 + t % (v - 1)`) as the
 * reference does; as there, the network still reads the unfolded observations (ids past the
 * embedding table clamp to its last row, as jax's gather does).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInitBatch, initializers, registerPlugin, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, Params } from './base';
import { LANGUAGE_DATASET_FUNCTIONS, languageDatasetsByName } from './datasets/language';
import { embed, foldVocab, initEmbed, initRnnCore, linearOf, maskedTokenLoss, param, RNN_CORE_CLASS, RNN_CORES, rnnStateSizes, unrollRnn, type RnnCore } from './lm_modules';
import { BaseTask } from './task';

const DATASET_NAMES = Object.keys(LANGUAGE_DATASET_FUNCTIONS) as [keyof typeof LANGUAGE_DATASET_FUNCTIONS, ...Array<keyof typeof LANGUAGE_DATASET_FUNCTIONS>];

/**
 * The configurable part of {@link RNNLMTask} (reference `tasks/fixed/rnn_lm.py`); the schema holds every
 * default.
 */
export const RNNLMSchema = z
  .object({
    /** One of the reference's language dataset functions (or lopt-ts's fortunes_bytes_datasets). */
    datasetName: z.enum(DATASET_NAMES).default('lm1b_bytes_datasets'),
    batchSize: z.number().int().positive().default(128),
    sequenceLength: z.number().int().positive().default(32),
    core: z.enum(RNN_CORES).default('lstm'),
    hiddenSize: z.number().int().positive().default(128),
    embedDim: z.number().int().positive().default(64),
    /** Below the dataset's vocabulary, targets are folded into it; default the dataset's. */
    vocabSize: z.number().int().min(2).optional(),
    name: z.string().optional(),
  })
  .strict();

/** Options of {@link RNNLMTask}: the fields of {@link RNNLMSchema} (all optional) plus prebuilt datasets. */
export type RNNLMConfig = z.input<typeof RNNLMSchema> & { datasets?: Datasets };

/** `rnn_lm.py`'s task name: `RNNLM_<dataset>_Patch<L>_<Core><hidden>_Embed<embed>`. */
export function rnnLmName(datasetName: string, sequenceLength: number, core: RnnCore, hidden: number, embedDim: number): string {
  const ds = datasetName.replace('_datasets', '').replace(/_/g, ''); // Python's str.replace: every '_'
  return `RNNLM_${ds}_Patch${sequenceLength}_${RNN_CORE_CLASS[core]}${hidden}_Embed${embedDim}`;
}

/**
 * A recurrent language-model task (reference `tasks/fixed/rnn_lm.py`, `TeacherForcedRNNLM`): embedding,
 * unrolled core, linear head, masked next-token cross-entropy.
 */
export class RNNLMTask extends BaseTask {
  readonly name: string;
  readonly core: RnnCore;
  readonly hiddenSize: number;
  readonly embedDim: number;
  readonly vocabSize: number;
  readonly maxVocabSize: number;

  constructor(config: RNNLMConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    const c = RNNLMSchema.parse(rest);
    this.datasets = datasets ?? languageDatasetsByName(c.datasetName, c.batchSize, c.sequenceLength);
    this.maxVocabSize = Number(this.datasets.extraInfo?.vocab_size);
    this.vocabSize = c.vocabSize ?? this.maxVocabSize;
    this.core = c.core;
    this.hiddenSize = c.hiddenSize;
    this.embedDim = c.embedDim;
    this.name = c.name ?? rnnLmName(c.datasetName, c.sequenceLength, c.core, c.hiddenSize, c.embedDim);
  }

  initBatch(keys: PRNGKey[]): Params {
    const [V, E, H] = [this.vocabSize, this.embedDim, this.hiddenSize];
    return haikuInitBatch(keys, (hk) => {
      initEmbed(hk, 'embed', V, E);
      rnnStateSizes(this.core, H).forEach((shape, i) => hk.getParameter('~', `initial_state_${i}`, shape, initializers.zeros()));
      initRnnCore(hk, this.core, E, H);
      hk.linear('linear', H, V);
    });
  }

  /** Logits [N, B, T, V] of the observed ids [N, B, T]. */
  logits(params: Params, obs: tf.Tensor): tf.Tensor {
    const p = params as Record<string, Record<string, tf.Tensor>>;
    const [N, B] = obs.shape;
    const x = embed(param(p, 'embed', 'embeddings'), obs);
    const state = rnnStateSizes(this.core, this.hiddenSize).map((_, i) => tf.tile(param(p, '~', `initial_state_${i}`), [1, B, 1]));
    if (state[0].shape[0] !== N) throw new Error(`${this.name}: params stack ${state[0].shape[0]} tasks, data ${N}`);
    return linearOf(p, 'linear', unrollRnn(p, this.core, x, state));
  }

  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const d = data as { obs: tf.Tensor; target: tf.Tensor };
      const target = this.vocabSize < this.maxVocabSize ? foldVocab(d.target, this.vocabSize) : d.target;
      return maskedTokenLoss(this.logits(params, d.obs), target, d.obs);
    });
  }
}

/** rnn_lm.py's `cfgs`: (dataset function, sequence length, core, hidden size, embedding size); batch size 128 throughout. */
export const FIXED_RNN_LM_CONFIGS: Array<[keyof typeof LANGUAGE_DATASET_FUNCTIONS, number, RnnCore, number, number]> = [
  ['lm1b_bytes_datasets', 32, 'irnn', 128, 64],
  ['lm1b_bytes_datasets', 32, 'lstm', 128, 64],
  ['lm1b_bytes_datasets', 32, 'gru', 128, 64],
  ['lm1b_bytes_datasets', 32, 'vanilla_rnn', 128, 64],
  ['lm1b_bytes_datasets', 128, 'lstm', 128, 64],
  ['lm1b_bytes_datasets', 32, 'lstm', 256, 128],
  ['lm1b_bytes_datasets', 32, 'gru', 256, 128],
  ['lm1b_32k_datasets', 32, 'vanilla_rnn', 256, 128],
  ['lm1b_32k_datasets', 32, 'lstm', 256, 128],
  ['lm1b_32k_datasets', 32, 'irnn', 256, 128],
  ['wikipedia_en_32k_datasets', 32, 'lstm', 256, 128],
  ['wikipedia_en_32k_datasets', 32, 'gru', 256, 128],
  ['wikipedia_en_bytes_datasets', 32, 'lstm', 256, 128],
  ['wikipedia_en_bytes_datasets', 32, 'gru', 256, 128],
];

/** lopt-ts additions: the smallest byte-level LSTM and GRU on the offline fortunes corpus. */
export const OFFLINE_RNN_LM_CONFIGS: typeof FIXED_RNN_LM_CONFIGS = [
  ['fortunes_bytes_datasets', 32, 'lstm', 128, 64],
  ['fortunes_bytes_datasets', 32, 'gru', 128, 64],
];

/**
 * Configs of the fixed RNN LM tasks by name (reference `tasks/fixed/rnn_lm.py` plus the offline fortunes
 * ones), batch size 128; each is registered as a task plugin.
 */
export const FIXED_RNN_LM_TASKS: Record<string, RNNLMConfig> = Object.fromEntries(
  [...FIXED_RNN_LM_CONFIGS, ...OFFLINE_RNN_LM_CONFIGS].map(([datasetName, sequenceLength, core, hiddenSize, embedDim]) => [
    rnnLmName(datasetName, sequenceLength, core, hiddenSize, embedDim),
    { datasetName, batchSize: 128, sequenceLength, core, hiddenSize, embedDim },
  ]),
);

/** A fixed RNN LM task by its rnn_lm.py name. */
export function rnnLmTask(name: string): RNNLMTask {
  const c = FIXED_RNN_LM_TASKS[name];
  if (!c) throw new Error(`unknown RNN LM task '${name}'; allowed: ${Object.keys(FIXED_RNN_LM_TASKS).join(', ')}`);
  return new RNNLMTask({ ...c, name });
}

for (const [name, c] of Object.entries(FIXED_RNN_LM_TASKS)) {
  registerPlugin({
    kind: 'task',
    name,
    description: `${RNN_CORE_CLASS[c.core!]}${c.hiddenSize} language model, embedding ${c.embedDim}, on ${c.datasetName} (batch 128, ${c.sequenceLength} tokens)`,
    schema: z.object({}).strict(),
    create: () => rnnLmTask(name),
    cls: RNNLMTask,
  });
}

registerPlugin({
  kind: 'task',
  name: 'RNNLMTask',
  description: 'teacher-forced RNN language model (LSTM, GRU, vanilla RNN or IRNN core) on a named language dataset',
  schema: RNNLMSchema,
  create: (c) => new RNNLMTask(c),
  cls: RNNLMTask,
});
