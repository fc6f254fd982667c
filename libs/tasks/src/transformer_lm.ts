/**
 * Decoder-only transformer language models (reference `tasks/fixed/transformer_lm.py`,
 * `_TransformerTask`, over `tasks/transformer.py`'s `Transformer`): embedding, per layer a
 * pre-LayerNorm causal self-attention (key size 32, VarianceScaling(2 / layers) weights, logits
 * where masked -1e30) and a GELU MLP of width 4·d, both residual with dropout, a final LayerNorm and
 * `hk.Linear(vocab)`. Mask: causal times the padding mask of the keys (`obs != 0`); loss: the
 * softmax cross-entropy of the next token averaged over the non-padding positions.
 *
 * Dropout (rate > 0) draws from the loss key as haiku's `apply(params, key, ...)` does (one key per
 * `hk.dropout`, attention then MLP per layer), so those tasks need a key per task; `init` spends
 * a key at each dropout site too. The fixed tasks all use `lm1b_32k_datasets` (vocab 32100; see
 * datasets/language.ts for the pre-tokenized files they read).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInitBatch, random, registerPlugin, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, Params } from './base';
import { LANGUAGE_DATASET_FUNCTIONS, languageDatasetsByName } from './datasets/language';
import { foldVocab, initTransformer, maskedTokenLoss, transformerForward, type TransformerShape } from './lm_modules';
import { BaseTask, requireKeys } from './task';

const DATASET_NAMES = Object.keys(LANGUAGE_DATASET_FUNCTIONS) as [keyof typeof LANGUAGE_DATASET_FUNCTIONS, ...Array<keyof typeof LANGUAGE_DATASET_FUNCTIONS>];

/**
 * The configurable part of {@link TransformerLMTask} (reference `tasks/fixed/transformer_lm.py`,
 * `_TransformerTask`); the schema holds every default.
 */
export const TransformerLMSchema = z
  .object({
    datasetName: z.enum(DATASET_NAMES).default('lm1b_32k_datasets'),
    batchSize: z.number().int().positive().default(4),
    sequenceLength: z.number().int().positive().default(8),
    numHeads: z.number().int().positive().default(5),
    numLayers: z.number().int().positive().default(1),
    dModel: z.number().int().positive().default(20),
    dropoutRate: z.number().min(0).lt(1).default(0.1),
    /** Below the dataset's vocabulary, observations and targets are folded into it (ParametricLMTransformer); default the dataset's. */
    vocabSize: z.number().int().min(2).optional(),
    name: z.string().default('__TransformerTask'),
  })
  .strict();

/**
 * Options of {@link TransformerLMTask}: the fields of {@link TransformerLMSchema} (all optional) plus
 * prebuilt datasets.
 */
export type TransformerLMConfig = z.input<typeof TransformerLMSchema> & { datasets?: Datasets };

/**
 * A decoder-only transformer language-model task (reference `tasks/fixed/transformer_lm.py`,
 * `_TransformerTask`), dropout drawn from the loss key.
 */
export class TransformerLMTask extends BaseTask {
  readonly name: string;
  readonly shape: TransformerShape;
  readonly maxVocabSize: number;

  constructor(config: TransformerLMConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    const c = TransformerLMSchema.parse(rest);
    this.datasets = datasets ?? languageDatasetsByName(c.datasetName, c.batchSize, c.sequenceLength);
    this.maxVocabSize = Number(this.datasets.extraInfo?.vocab_size);
    this.shape = { numHeads: c.numHeads, numLayers: c.numLayers, dModel: c.dModel, dropoutRate: c.dropoutRate, vocabSize: c.vocabSize ?? this.maxVocabSize };
    this.name = c.name;
  }

  initBatch(keys: PRNGKey[]): Params {
    return haikuInitBatch(keys, (hk) => initTransformer(hk, this.shape));
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    const rngs = this.shape.dropoutRate > 0 ? requireKeys(keys, this.name).map((k) => new random.PRNGSequence(k)) : null;
    return tf.tidy(() => {
      const d = data as { obs: tf.Tensor; target: tf.Tensor };
      const V = this.shape.vocabSize;
      const fold = V < this.maxVocabSize;
      const obs = fold ? foldVocab(d.obs, V) : d.obs;
      const target = fold ? foldVocab(d.target, V) : d.target;
      const p = params as Record<string, Record<string, tf.Tensor>>;
      return maskedTokenLoss(transformerForward(p, this.shape, obs, tf.notEqual(obs, 0), rngs), target, obs);
    });
  }
}

/** transformer_lm.py's configurations: [heads, d_model, layers, batch, sequence length, dropout]. */
const MULTI_RUNTIME: Array<[number, number, number, number, number, number]> = [
  [5, 20, 1, 4, 8, 0.1],
  [6, 24, 1, 4, 8, 0.1],
  [4, 32, 2, 8, 8, 0.0],
  [4, 32, 1, 8, 16, 0.0],
  [4, 32, 2, 16, 4, 0.0],
  [4, 32, 1, 8, 32, 0.0],
  [5, 80, 1, 4, 64, 0.0],
  [7, 112, 3, 16, 32, 0.0],
  [4, 128, 1, 64, 32, 0.0],
  [4, 256, 2, 64, 64, 0.0],
  [4, 256, 3, 128, 64, 0.0],
  [19, 304, 2, 256, 32, 0.0],
];

/**
 * Configs of the fixed transformer LM tasks by name (reference `tasks/fixed/transformer_lm.py`), all on
 * `lm1b_32k_datasets`; each is registered as a task plugin.
 */
export const FIXED_TRANSFORMER_LM_TASKS: Record<string, TransformerLMConfig> = {};
MULTI_RUNTIME.forEach(([numHeads, dModel, numLayers, batchSize, sequenceLength, dropoutRate], i) => {
  const name = `TransformerLM_LM1B_MultiRuntime_${i}`;
  FIXED_TRANSFORMER_LM_TASKS[name] = { datasetName: 'lm1b_32k_datasets', numHeads, dModel, numLayers, batchSize, sequenceLength, dropoutRate, name };
});
for (const dModel of [32, 128, 256, 512]) {
  const name = `TransformerLM_LM1B_5layer_${dModel}width`;
  FIXED_TRANSFORMER_LM_TASKS[name] = { datasetName: 'lm1b_32k_datasets', numHeads: 8, dModel, numLayers: 5, batchSize: 32, sequenceLength: 128, dropoutRate: 0.1, name };
}
/** lopt-ts addition: MultiRuntime_2's network on the offline byte-level fortunes corpus. */
FIXED_TRANSFORMER_LM_TASKS['TransformerLM_Fortunes_Bytes_4h32d2l'] = {
  datasetName: 'fortunes_bytes_datasets', numHeads: 4, dModel: 32, numLayers: 2, batchSize: 8, sequenceLength: 8, dropoutRate: 0, name: 'TransformerLM_Fortunes_Bytes_4h32d2l',
};

/** A fixed transformer LM task by its transformer_lm.py name. */
export function transformerLmTask(name: string): TransformerLMTask {
  const c = FIXED_TRANSFORMER_LM_TASKS[name];
  if (!c) throw new Error(`unknown transformer LM task '${name}'; allowed: ${Object.keys(FIXED_TRANSFORMER_LM_TASKS).join(', ')}`);
  return new TransformerLMTask(c);
}

for (const [name, c] of Object.entries(FIXED_TRANSFORMER_LM_TASKS)) {
  registerPlugin({
    kind: 'task',
    name,
    description: `transformer LM, ${c.numLayers} layer(s), ${c.numHeads} heads, d_model ${c.dModel}, dropout ${c.dropoutRate}, on ${c.datasetName} (batch ${c.batchSize}, ${c.sequenceLength} tokens)`,
    schema: z.object({}).strict(),
    create: () => transformerLmTask(name),
    cls: TransformerLMTask,
  });
}

registerPlugin({
  kind: 'task',
  name: 'TransformerLMTask',
  description: 'decoder-only transformer language model on a named language dataset',
  schema: TransformerLMSchema,
  create: (c) => new TransformerLMTask(c),
  cls: TransformerLMTask,
});
