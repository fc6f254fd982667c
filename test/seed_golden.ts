/**
 * The seed notebook's part 1 from PRNGKey(0), against the real learned_optimization
 * (test/golden/<mode>/seed_part1.json, tools/reference/make_golden.py): the whole initial
 * SingleMachineGradientLearner state of both estimators (θ, inner params, truncation lengths and
 * offsets), and the first 3 outer updates of the quadratic estimator alone (losses and θ). Shared by
 * seed_golden.test.ts (cpu) and seed_golden.wasm.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { Adam, MLPLOpt } from '@lopt/optimizers';
import { FixedDimQuadraticFamily, ImageMLP_FashionMnist8_Relu32, singleTaskToFamily, type TaskFamily } from '@lopt/tasks';
import { LogUniformLengthSchedule, SingleMachineGradientLearner, TruncatedPES, VectorizedLOptTruncatedStep } from '@lopt/estimators';
import { golden, goldenDiff, MODES, treeDiff } from './golden';

/** The notebook's part 1, over the given task families. */
export function seedLearner(families: TaskFamily[]): SingleMachineGradientLearner {
  const lopt = new MLPLOpt();
  const sched = new LogUniformLengthSchedule({ minLength: 100, maxLength: 300 });
  const estimators = families.map(
    (f) => new TruncatedPES(new VectorizedLOptTruncatedStep(f, lopt, sched, { numTasks: 4, randomInitialIterationOffset: 300 }), { truncLength: 50 }),
  );
  return new SingleMachineGradientLearner(lopt, estimators, new Adam(1e-3));
}

/** jax keystr of the reference's state → lopt-ts's names: attributes become camelCase. */
const camel = (keystr: string) => keystr.replace(/\.([a-z0-9_]+)/g, (_, a: string) => '.' + a.replace(/_([a-z0-9])/g, (__, c: string) => c.toUpperCase()));

export function describeSeedGolden(backend: string): void {
  describe.each(MODES)(`seed part 1 = reference from PRNGKey(0), %s mode, ${backend}`, (mode) => {
    const cfg = { threefryPartitionable: mode === 'partitionable' };
    beforeAll(() => random.configure(cfg));
    afterAll(() => random.configure({ threefryPartitionable: false }));

    test('SingleMachineGradientLearner.init: θ, Adam state, and both estimators (inner params, lengths, offsets)', async () => {
      const want = golden(mode, 'seed_part1.json')['init_state(both estimators)'];
      const learner = seedLearner([new FixedDimQuadraticFamily(10), singleTaskToFamily(new ImageMLP_FashionMnist8_Relu32())]);
      const state = await learner.init(random.PRNGKey(0));
      const d = treeDiff(state, want, camel);
      expect(d.leaves).toBe(Object.keys(want).length);
      expect({ worstLeaf: d.worst, within1e6: d.maxAbs <= 1e-6 }).toEqual({ worstLeaf: d.worst, within1e6: true });
      // the integer parts are exact: truncation lengths and random offsets of both estimators
      for (const est of [0, 1]) {
        for (const leaf of ['truncation_state.length', 'inner_step']) {
          const k = `.gradient_estimator_states[${est}].pos_state.${leaf}`;
          const got = camel(k).split('.').filter(Boolean).reduce((t: any, p) => {
            const m = /^(\w+)\[(\d+)\]$/.exec(p);
            return m ? t[m[1]][Number(m[2])] : t[p];
          }, state) as tf.Tensor;
          expect(Array.from(got.dataSync())).toEqual(want[k].values);
        }
      }
      tf.dispose(treeLeaves(state as any));
    });

    test('3 outer updates of the quadratic estimator, the key reused as in the notebook: losses to 1e-5 relative, θ', async () => {
      const want = golden(mode, 'seed_part1.json').quadratic_only_updates as { loss: number; theta: any }[];
      const learner = seedLearner([new FixedDimQuadraticFamily(10)]);
      const key = random.PRNGKey(0);
      let state = await learner.init(key);
      for (const step of want) {
        let loss: number;
        [state, loss] = await learner.update(state, key, { withMetrics: false });
        expect(Math.abs(loss - step.loss) / Math.abs(step.loss)).toBeLessThanOrEqual(1e-5);
        const theta = state.gradientLearnerState.thetaOptState.params;
        for (const [k, g] of Object.entries(step.theta)) {
          const leaf = k.match(/\['([^']*)'\]/g)!.map((s) => s.slice(2, -2)).reduce((t: any, p) => t[p], theta);
          expect(goldenDiff(leaf, g as any).maxAbs).toBeLessThanOrEqual(2e-6);
        }
      }
      tf.dispose(treeLeaves(state as any));
    });
  });
}
