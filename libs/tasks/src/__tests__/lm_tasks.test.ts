/**
 * The language-model tasks beyond the golden values: every rnn_lm.py / transformer_lm.py name is a
 * registered task with the reference's sizes; stacked (N = 2) loss and gradient equal each task's
 * own; bad names and configs are refused naming the field. No text is loaded.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeFlatten } from '@lopt/core';
import { FIXED_RNN_LM_TASKS, FIXED_TRANSFORMER_LM_TASKS, RNNLMTask, rnnLmTask, TransformerLMTask, transformerLmTask } from '../index';
import { useTestBackend } from './helpers';
import { standInDatasets } from './parametric_lm_golden';

beforeAll(async () => {
  await useTestBackend();
});

test('every fixed LM task of the reference is registered under its name, with its sizes', () => {
  const names = registry.list('task').map((e) => e.name);
  const rnn = Object.keys(FIXED_RNN_LM_TASKS).filter((n) => !n.includes('fortunes'));
  expect(rnn).toHaveLength(14);
  expect(rnn).toEqual(expect.arrayContaining(['RNNLM_lm1bbytes_Patch32_IRNN128_Embed64', 'RNNLM_lm1bbytes_Patch128_LSTM128_Embed64', 'RNNLM_lm1b32k_Patch32_VanillaRNN256_Embed128', 'RNNLM_wikipediaen32k_Patch32_GRU256_Embed128', 'RNNLM_wikipediaenbytes_Patch32_LSTM256_Embed128']));
  const tfm = Object.keys(FIXED_TRANSFORMER_LM_TASKS).filter((n) => n.includes('LM1B'));
  expect(tfm).toHaveLength(16);
  for (const n of [...rnn, ...tfm]) expect(names).toContain(n);
  const t = transformerLmTask('TransformerLM_LM1B_MultiRuntime_11');
  expect(t.shape).toEqual({ numHeads: 19, numLayers: 2, dModel: 304, dropoutRate: 0, vocabSize: 32100 });
  expect(t.datasets!.split('train').abstractBatch()).toEqual({ obs: { shape: [256, 32], dtype: 'int32' }, target: { shape: [256, 32], dtype: 'int32' } });
  const r = rnnLmTask('RNNLM_lm1b32k_Patch32_LSTM256_Embed128');
  expect([r.core, r.hiddenSize, r.embedDim, r.vocabSize]).toEqual(['lstm', 256, 128, 32100]);
  expect(() => rnnLmTask('RNNLM_nope')).toThrow(/unknown RNN LM task 'RNNLM_nope'; allowed: RNNLM_lm1bbytes_Patch32_IRNN128_Embed64/);
  expect(() => registry.parseConfig('task', 'RNNLMTask', { core: 'tcn' })).toThrow(/core/);
  expect(() => registry.parseConfig('task', 'TransformerLMTask', { dropoutRate: 1 })).toThrow(/dropoutRate/);
});

describe.each([
  ['RNN (GRU), vocab folded to 50', () => new RNNLMTask({ datasets: standInDatasets(), core: 'gru', hiddenSize: 8, embedDim: 4, vocabSize: 50 })],
  ['transformer, dropout 0.2', () => new TransformerLMTask({ datasets: standInDatasets(), numHeads: 2, numLayers: 2, dModel: 8, dropoutRate: 0.2 })],
])('%s', (_, make) => {
  test('two stacked tasks: loss and gradient equal each task alone', () => {
    const task = make();
    const keys = [random.PRNGKey(4), random.PRNGKey(5)];
    const lossKeys = [random.PRNGKey(6), random.PRNGKey(7)];
    const obs = tf.tensor([[[4, 60, 3, 0, 9, 100], [7, 7, 258, 12, 0, 0]], [[0, 5, 6, 7, 8, 9], [200, 201, 202, 3, 4, 5]]], [2, 2, 6], 'int32');
    const target = tf.tensor([[[60, 3, 0, 9, 100, 1], [7, 258, 12, 0, 0, 0]], [[5, 6, 7, 8, 9, 10], [201, 202, 3, 4, 5, 6]]], [2, 2, 6], 'int32');
    const params = task.initBatch(keys);
    const both = task.valueAndGradBatch(params, null, lossKeys, { obs, target });
    const [gLeaves] = treeFlatten<tf.Tensor>(both.grad);
    for (let i = 0; i < 2; i++) {
      const p = task.init(keys[i]);
      const one = task.valueAndGrad(p, null, lossKeys[i], { obs: tf.gather(obs, i), target: tf.gather(target, i) });
      expect(Math.abs(both.loss.dataSync()[i] - one.loss.dataSync()[0])).toBeLessThan(1e-5);
      const [oLeaves] = treeFlatten<tf.Tensor>(one.grad);
      oLeaves.forEach((g, j) => {
        const diff = tf.max(tf.abs(tf.sub(tf.gather(gLeaves[j], i), g))).dataSync()[0];
        expect(diff).toBeLessThan(1e-5);
      });
    }
  });
});
