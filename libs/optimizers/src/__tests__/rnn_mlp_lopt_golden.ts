/**
 * RNNMLPLOpt against the real learned_optimization (test/golden/<mode>/rnn_mlp_lopt.json, made by
 * tools/reference/golden_rnn_mlp_lopt.py), in both random modes: init(key) for two keys and
 * configurations, 3 updates of each (golden_common.run_updates), and a sequence that varies the
 * loss and takes validation steps. Shared by rnn_mlp_lopt.golden.test.ts (cpu) and
 * rnn_mlp_lopt.golden.wasm.test.ts (wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves, type PyTree } from '@lopt/core';
import { golden, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { RNNMLPLOpt, type RNNMLPLOptOptions } from '../index';
import { describeLearnedOptimizerInits } from './inits_golden';
import { describeOptimizerUpdates } from './updates_golden';

const FILE = 'rnn_mlp_lopt.json';
/** The golden script's SMALL configuration (every size option changed). */
const SMALL: RNNMLPLOptOptions = { hiddenSize: 8, hiddenLayer: 1, fromMlpSize: 4, fromLstmSize: 5, lstmToFf: 3, lstmHiddenSize: 6 };
const SMALL_NAME = 'RNNMLPLOpt(hidden_size=8,hidden_layer=1,from_mlp_size=4,from_lstm_size=5,lstm_to_ff=3,lstm_hidden_size=6)';

/**
 * Largest |lopt-ts − reference| allowed in a state after an update: float32 rounding only. Reached:
 * at most 4.8e-7 (the LSTM cell state after the 3rd update), cpu and wasm, both modes.
 */
export const RNN_MLP_LOPT_TOLERANCE = 1e-6;

const camel = (keystr: string) => keystr.replace(/\.([a-z0-9_]+)/g, (_, a: string) => '.' + a.replace(/_([a-z0-9])/g, (__, c: string) => c.toUpperCase()));

function tensors(flat: Record<string, GoldenArray>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, a] of Object.entries(flat)) out[/\['([^']*)'\]/.exec(k)![1]] = tf.tensor((a.values as any) ?? [], a.shape, 'float32');
  return out;
}

export function describeRNNMLPLOptGolden(backend: string): void {
  describeLearnedOptimizerInits(backend, {
    file: FILE,
    cases: [
      ['RNNMLPLOpt().init(PRNGKey(0))', () => new RNNMLPLOpt(), 0],
      [`${SMALL_NAME}.init(PRNGKey(3))`, () => new RNNMLPLOpt(SMALL), 3],
      // quirk: the MLP is sized for 5 decays whatever `decays` holds
      [`${SMALL_NAME.slice(0, -1)},decays=(0.9,0.99)).init(PRNGKey(1))`, () => new RNNMLPLOpt({ ...SMALL, decays: [0.9, 0.99] }), 1],
    ],
  });

  describeOptimizerUpdates(backend, {
    file: FILE,
    tolerance: RNN_MLP_LOPT_TOLERANCE,
    optimizers: [
      ['RNNMLPLOpt', () => { const l = new RNNMLPLOpt(); return l.optFn(l.init(random.PRNGKey(0))); }],
      ['RNNMLPLOpt(small)', () => { const l = new RNNMLPLOpt(SMALL); return l.optFn(l.init(random.PRNGKey(3))); }],
    ],
  });

  describe.each(MODES)(`RNNMLPLOpt: varying losses and validation steps = reference (${FILE} mixed), %s mode, ${backend}`, (mode) => {
    test('the whole state after each of the 6 steps', () => {
      const g = golden(mode, FILE);
      random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => {
        const lopt = new RNNMLPLOpt();
        const theta = lopt.init(random.PRNGKey(0));
        const opt = lopt.optFn(theta);
        const grads = (g.grads as Record<string, GoldenArray>[]).map(tensors);
        let state: PyTree = opt.init(tensors(g.params0), { numSteps: 100 });
        const steps = g.mixed.steps as [number, number, boolean][];
        for (const [i, [gi, loss, isValid]] of steps.entries()) {
          const next = opt.update(state as any, grads[gi], { loss, isValid });
          tf.dispose(treeLeaves(state as any));
          state = next;
          const want = g.mixed.states[i] as Record<string, GoldenArray>;
          const d = treeDiff(state, want, camel);
          expect(d.leaves).toBe(Object.keys(want).length);
          expect({ step: i + 1, worstLeaf: d.worst, within: d.maxAbs <= RNN_MLP_LOPT_TOLERANCE }).toEqual({ step: i + 1, worstLeaf: d.worst, within: true });
        }
        tf.dispose([...treeLeaves(state as any), ...grads.flatMap((x) => Object.values(x))] as tf.Tensor[]);
        tf.dispose(treeLeaves(theta) as tf.Tensor[]);
      });
    });
  });
}
