/**
 * The parametric language-model families against the real learned_optimization
 * (test/golden/<mode>/parametric_lm.json, made by tools/reference/golden_parametric_lm.py): the
 * samplers (ParametricLMRNN.sample, sample_lm_rnn, sample_lm_transformer), and per sampled
 * initializer (and for an IRNN core and a transformer family) init, loss, gradient and normalizer
 * on a fixed token batch, with the vocabulary folded from 259 to 100. Shared by the cpu test and
 * its wasm twin. No text is loaded: the families get stand-in datasets of the same shapes.
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { cfgToPlain, ParametricLMRNN, ParametricLMTransformer, sampleLmRnn, sampleLmTransformer, SplitDatasets, TextBatchStream, TextExamples, SPLITS, type BaseTask, type Datasets } from '../index';

const TOL = 1e-5;

function toTensor(a: GoldenArray): tf.Tensor {
  const flat = (v: unknown): number[] => (Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [Number(v)]);
  return tf.tensor(flat(a.values), a.shape, a.dtype.startsWith('int') ? 'int32' : 'float32');
}

/** Byte-level datasets of the golden's shapes (batch 4, 6 tokens, vocab 259) over a few texts. */
export function standInDatasets(): Datasets {
  const ex = TextExamples.fromTexts(Array.from({ length: 40 }, (_, i) => `text ${i}`));
  const streams = Object.fromEntries(SPLITS.map((s, i) => [s, new TextBatchStream(() => ex, 4, 6, (b) => Int32Array.from(b, (x) => x + 3), i)]));
  return new SplitDatasets(streams as any, { vocab_size: 259 });
}

export function describeParametricLmGolden(backend: string): void {
  describe.each(MODES)(`parametric LM families = reference, %s mode, ${backend}`, (mode) => {
    const file = golden(mode, 'parametric_lm.json');
    const inMode = <T>(fn: () => T) => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);
    const batch = () => ({ obs: toTensor(file.batch.obs), target: toTensor(file.batch.target) });

    function check(task: BaseTask, want: any): void {
      const before = tf.memory().numTensors;
      const params = inMode(() => task.init(random.PRNGKey(1)));
      const init = treeDiff(params, want.init);
      expect(init.leaves).toBe(Object.keys(want.init).length);
      expect(init.maxAbs).toBeLessThanOrEqual(1e-6);
      const b = batch();
      const out = inMode(() => task.valueAndGrad(params, null, random.PRNGKey(3), b));
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(TOL);
      const g = treeDiff(out.grad, want.grad);
      expect(g.leaves).toBe(Object.keys(want.grad).length);
      expect({ worst: g.worst, ok: g.maxAbs <= TOL }).toEqual({ worst: g.worst, ok: true });
      const nIn = tf.tensor1d([-1, 0.5, 3, 100, NaN]);
      const n = task.normalizer(nIn);
      expect(goldenDiff(n, want['normalizer([-1, 0.5, 3, 100, nan])']).maxAbs).toBeLessThanOrEqual(1e-5);
      tf.dispose([params, b, out, n, nIn] as any);
      expect(tf.memory().numTensors).toBe(before);
    }

    test('samplers: ParametricLMRNN.sample, sample_lm_rnn, sample_lm_transformer', () => {
      const fam = new ParametricLMRNN({ datasets: standInDatasets(), rnnSize: 16, embedSize: 8, vocabSize: 100 });
      file.samplers['ParametricLMRNN.sample'].forEach((want: Record<string, GoldenArray>, i: number) => {
        const s = inMode(() => fam.sample(random.PRNGKey(i))) as { initializer: { index: tf.Tensor; init_scale: tf.Tensor } };
        expect(goldenDiff(s.initializer.index, want.index).maxAbs).toBe(0);
        expect(goldenDiff(s.initializer.init_scale, want.init_scale).maxAbs).toBe(0);
        tf.dispose(s as any);
      });
      expect(file.samplers.sample_lm_rnn.map((_: unknown, i: number) => cfgToPlain(inMode(() => sampleLmRnn(random.PRNGKey(i)))))).toEqual(file.samplers.sample_lm_rnn);
      expect(file.samplers.sample_lm_transformer.map((_: unknown, i: number) => cfgToPlain(inMode(() => sampleLmTransformer(random.PRNGKey(i)))))).toEqual(
        file.samplers.sample_lm_transformer,
      );
    });

    test.each([0, 1, 2, 3, 4])('ParametricLMRNN (LSTM), initializer %i: init, loss, grad, normalizer', (j) => {
      const fam = new ParametricLMRNN({ datasets: standInDatasets(), rnnSize: 16, embedSize: 8, vocabSize: 100, core: 'lstm' });
      const tp = { initializer: { index: tf.scalar(j, 'int32'), init_scale: tf.scalar(1.3) } };
      check(fam.taskFn(tp), file.rnn[String(j)]);
      tf.dispose(tp as any);
    });

    test('ParametricLMRNN (IRNN core, initializer 2)', () => {
      const fam = new ParametricLMRNN({ datasets: standInDatasets(), rnnSize: 16, embedSize: 8, vocabSize: 100, core: 'irnn' });
      const tp = { initializer: { index: tf.scalar(2, 'int32'), init_scale: tf.scalar(1.3) } };
      check(fam.taskFn(tp), file.rnn_irnn);
      tf.dispose(tp as any);
    });

    test('ParametricLMTransformer (2 heads, 2 layers, d_model 16, dropout 0.1)', () => {
      const fam = new ParametricLMTransformer({ datasets: standInDatasets(), vocabSize: 100, numHeads: 2, numLayers: 2, dModel: 16 });
      check(fam.taskFn(fam.sample(random.PRNGKey(0))), file.transformer);
    });
  });
}
