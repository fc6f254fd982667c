/**
 * NNAdam against the real learned_optimization (test/golden/<mode>/nn_adam.json, made by
 * tools/reference/golden_nn_adam.py): init(key) for two configurations, 3 updates from the default
 * θ and from a perturbed θ stored in the file, and the hyper-parameter transforms. Shared by
 * nn_adam.golden.test.ts (cpu) and nn_adam.golden.wasm.test.ts (wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, keyPath, MODES, type GoldenArray } from '../../../../test/golden';
import { NNAdam, nnAdamInverseForward, nnAdamTransforms, type NNAdamOptions } from '../index';
import { describeLearnedOptimizerInits } from './inits_golden';
import { describeOptimizerUpdates } from './updates_golden';
import { expectClose } from './helpers';

const FILE = 'nn_adam.json';
const SMALL: NNAdamOptions = { lstmHiddenSize: 8, initialLearningRate: 3e-3, initialBeta1: 0.8, initialBeta2: 0.99, initialEpsilon: 1e-6, outputScale: 0.1 };
const PERTURBED = 'NNAdam(lstm_hidden_size=8,output_scale=0.5,decay_strength=0.1)+perturbed';

/** A golden keystr-flattened tree as nested tensors. */
export function goldenTree(flat: Record<string, GoldenArray>): any {
  const out: any = {};
  for (const [k, a] of Object.entries(flat)) {
    const path = keyPath(k);
    let t = out;
    for (const p of path.slice(0, -1)) t = t[p] ??= {};
    t[path[path.length - 1]] = tf.tensor((a.values as any) ?? [], a.shape, 'float32');
  }
  return out;
}

const currentMode = () => (random.getConfig().threefryPartitionable ? 'partitionable' : 'legacy');

/**
 * Update tolerance, absolute, on values of O(1). Measured worst (cpu and wasm, both modes): 7.2e-7,
 * on a per_layer_beta1 of the perturbed case (`0.1·log(1 − (1 − exp(10x)))` loses bits to the
 * cancellation, in the reference as here); everything else ≤ 3e-7.
 */
export const NN_ADAM_UPDATE_TOLERANCE = 1e-6;

export function describeNNAdamGolden(backend: string): void {
  describeLearnedOptimizerInits(backend, {
    file: FILE,
    cases: [
      ['NNAdam().init(PRNGKey(0))', () => new NNAdam(), 0],
      ['NNAdam(small).init(PRNGKey(3))', () => new NNAdam(SMALL), 3],
    ],
  });

  describeOptimizerUpdates(backend, {
    file: FILE,
    tolerance: NN_ADAM_UPDATE_TOLERANCE,
    optimizers: [
      ['NNAdam', () => { const l = new NNAdam(); return l.optFn(l.init(random.PRNGKey(0))); }],
      [PERTURBED, () => new NNAdam({ lstmHiddenSize: 8, outputScale: 0.5, decayStrength: 0.1 }).optFn(goldenTree(golden(currentMode(), FILE)[PERTURBED].theta))],
    ],
  });

  describe.each(MODES)(`NNAdam golden extras (${FILE}), %s mode, ${backend}`, (mode) => {
    test('the small configuration is the one the script used', () => {
      const c = golden(mode, FILE).small_config;
      expect(SMALL).toEqual({
        lstmHiddenSize: c.lstm_hidden_size,
        initialLearningRate: c.initial_learning_rate,
        initialBeta1: c.initial_beta1,
        initialBeta2: c.initial_beta2,
        initialEpsilon: c.initial_epsilon,
        outputScale: c.output_scale,
      });
    });

    test.each([
      ['scaled_lr', 'scaledLr'],
      ['scaled_epsilon', 'scaledEpsilon'],
      ['scaled_one_minus_log', 'scaledOneMinusLog'],
    ] as const)('transform %s: inverse and inverse-then-forward (the clip)', (ref, ours) => {
      const g = golden(mode, FILE).transforms;
      const x = tf.tensor1d(g.x);
      const t = nnAdamTransforms[ours];
      const inv = t.inverse(x);
      const invFwd = nnAdamInverseForward(t, x);
      expectClose(Array.from(inv.dataSync()), g[ref].inverse, 0, 2e-6);
      expectClose(Array.from(invFwd.dataSync()), g[ref].inverse_forward, 2e-6, 1e-6);
      tf.dispose([x, inv, invFwd]);
    });
  });
}
