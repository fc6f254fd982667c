/**
 * AdafacNominal (reference MLPNomLOpt) against the real learned_optimization, from
 * test/golden/<mode>/adafac_nominal.json (tools/reference/golden_adafac_nominal.py): `init(key)`
 * for several configurations, and 3 updates of the whole optimizer state for the defaults and for
 * configurations that switch on every other branch of the reference's `_mod`. Shared by
 * adafac_nominal.golden.test.ts (cpu) and adafac_nominal.golden.wasm.test.ts (wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, MODES, treeDiff, type RandomMode } from '../../../../test/golden';
import { AdafacNominal, type AdafacNominalOptions } from '../index';
import { describeLearnedOptimizerInits, type InitCase } from './inits_golden';
import { describeOptimizerUpdates, type OptimizerCase } from './updates_golden';

export const FILE = 'adafac_nominal.json';

const camelKey = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
/** The reference's keyword arguments (as the golden file records them) → AdafacNominal options. */
export function optionsOf(config: Record<string, unknown>): AdafacNominalOptions {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [camelKey(k), v])) as AdafacNominalOptions;
}

const INITS: InitCase[] = [
  ['AdafacNominal().init(PRNGKey(0))', () => new AdafacNominal(), 0],
  ['AdafacNominal().init(PRNGKey(5))', () => new AdafacNominal(), 5],
  ['AdafacNominal(hidden_size=8,hidden_layers=1).init(PRNGKey(3))', () => new AdafacNominal({ hiddenSize: 8, hiddenLayers: 1 }), 3],
  [
    'AdafacNominal(initial_momentum_decays=(0.5, 0.9),initial_rms_decays=(0.99,),initial_adafactor_decays=(0.9,)).init(PRNGKey(1))',
    () => new AdafacNominal({ initialMomentumDecays: [0.5, 0.9], initialRmsDecays: [0.99], initialAdafactorDecays: [0.9] }),
    1,
  ],
  [
    'AdafacNominal(concat_weights=False,make_separate_weights=True,hidden_size=2,hidden_layers=1).init(PRNGKey(0))',
    () => new AdafacNominal({ concatWeights: false, makeSeparateWeights: true, hiddenSize: 2, hiddenLayers: 1 }),
    0,
  ],
];

/** The decay offsets the golden script writes into θ for the non-default update cases. */
export const DECAYS = { momentum_decays: [0.1, -0.2, 0.05], rms_decays: [-0.1], adafactor_decays: [0.2, 0, -0.1] };

const mode = (): RandomMode => (random.getConfig().threefryPartitionable ? 'partitionable' : 'legacy');

/**
 * Every update case of the golden file: the lopt built from the recorded config, θ from lopt-ts's
 * own init of the recorded key (checked against the golden θ first) with the recorded decay offsets.
 */
function updateCases(): OptimizerCase[] {
  const g = golden('legacy', FILE);
  return Object.keys(g)
    .filter((k) => g[k] && typeof g[k] === 'object' && 'states' in g[k])
    .map((name): OptimizerCase => [
      name,
      () => {
        const want = golden(mode(), FILE)[name];
        const lopt = new AdafacNominal(optionsOf(want.config));
        const seed = Number(/PRNGKey\((\d+)\)\)\+decays$/.exec(name)?.[1] ?? 0);
        const theta: any = lopt.init(random.PRNGKey(seed));
        if (name.endsWith('+decays')) {
          for (const [k, v] of Object.entries(DECAYS)) {
            tf.dispose(theta[k]);
            theta[k] = tf.tensor1d(v);
          }
        }
        const d = treeDiff(theta, want.theta);
        expect(d.leaves).toBe(Object.keys(want.theta).length);
        expect(d.maxAbs).toBeLessThanOrEqual(1e-6);
        return lopt.optFn(theta);
      },
    ]);
}

/** The tolerance on the whole state after each update: float rounding of O(1) values (measured: at most 1.2e-7, one float32 ulp at 1, on cpu and wasm in both modes). */
export const UPDATE_TOLERANCE = 5e-7;

export function describeAdafacNominalGolden(backend: string): void {
  describeLearnedOptimizerInits(backend, { file: FILE, cases: INITS });
  describeOptimizerUpdates(backend, { file: FILE, optimizers: updateCases(), tolerance: UPDATE_TOLERANCE });
  describe.each(MODES)(`AdafacNominal quirk, %s mode, ${backend}`, (m) => {
    test('aggregateRegMagnitude cannot init, with the reference message', () => {
      const msg = golden(m, FILE).aggregate_reg_magnitude_init_error as string;
      expect(msg).toMatch(/cannot reshape/);
      expect(() => new AdafacNominal({ aggregateRegMagnitude: true }).init(random.PRNGKey(0))).toThrow(msg);
    });
  });
}
