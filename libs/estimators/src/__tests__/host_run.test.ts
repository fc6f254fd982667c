/**
 * Host runs (`VectorizedLOptTruncatedStep.hostRun`): runs of inner steps in one native kernel give
 * the values of `unrollStep` step by step — losses, counters, resets and the state — on the wasm
 * and cpu backends, for the seed's two tasks, with a reset inside a run (the image MLP) or through
 * `unrollStep` (the quadratic's targets); no tensor is left behind.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, initBackend, random, treeLeaves, treeMap, type PyTree } from '@lopt/core';
import { FixedDimQuadraticFamily, ImageMLP_FashionMnist8_Relu32, imageMlpNative, singleTaskToFamily, type TaskFamily } from '@lopt/tasks';
import { MLPLOpt, mlpLoptNative } from '@lopt/optimizers';
import { LogUniformLengthSchedule, SimpleLOptTruncatedStep, VectorizedLOptTruncatedStep, truncatedUnroll, disposeYs, type BatchIndices, type StepwiseData, type TruncatedUnrollState } from '../index';

const built = mlpLoptNative() !== null && imageMlpNative() !== null;
const native = built ? describe : describe.skip;

interface Outcome {
  loss: number[];
  counters: string;
  state: number[];
  hostSteps: number;
}

/** T steps from `state` (kept) on the batches of `idx`, driven step by step (`stepwise`) or with host runs. */
function unroll(step: VectorizedLOptTruncatedStep, theta: PyTree, state: TruncatedUnrollState, T: number, idx: BatchIndices | null, stepwise: boolean): Outcome {
  const data: StepwiseData | ((k: number) => PyTree) | null = idx
    ? stepwise
      ? (k: number) => step.batchFromIndices(idx, k)
      : { at: (k: number) => step.batchFromIndices(idx, k), all: () => step.batchFromIndices(idx) }
    : null;
  let hostSteps = 0;
  const original = step.hostRun.bind(step);
  step.hostRun = (...args: Parameters<VectorizedLOptTruncatedStep['hostRun']>) => {
    const r = original(...args);
    hostSteps += r?.steps ?? 0;
    return r;
  };
  try {
    const [next, ys] = truncatedUnroll(step, T, true, theta, random.PRNGKey(5), state, stepwise && !idx ? () => null : data, null, null, true);
    const out = {
      loss: Array.from(ys.loss.dataSync()),
      counters: JSON.stringify([ys.iteration, ys.isDone, ys.mask].map((rows) => rows.map((r) => Array.from(r)))),
      state: treeLeaves<tf.Tensor>(next.innerOptState).flatMap((l) => Array.from(l.dataSync())),
      hostSteps,
    };
    expect(ys.taskParam).toHaveLength(T);
    disposeReplaced(next, state);
    disposeYs(ys);
    return out;
  } finally {
    step.hostRun = original;
  }
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

// [name, family, N, whether a reset step runs inside a host run (a task without task params)]
const cases: Array<[string, () => TaskFamily, number, boolean]> = [
  ['FixedDimQuadraticFamily(10)', () => new FixedDimQuadraticFamily({ dim: 10 }), 3, false],
  ['ImageMLP_FashionMnist8_Relu32', () => singleTaskToFamily(new ImageMLP_FashionMnist8_Relu32()), 2, true],
];

native.each(['wasm', 'cpu'])('host runs on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  test.each(cases)('%s: the values of unrollStep step by step, through resets; flat tensor counts', (_name, family, N, resetsInside) => {
    // lengths of 5 to 12 steps: every task resets at least once in 30 steps
    const step = new VectorizedLOptTruncatedStep(family(), new MLPLOpt(), new LogUniformLengthSchedule({ minLength: 5, maxLength: 12 }), { numTasks: N, randomInitialIterationOffset: 12 });
    const theta0 = step.outerInit(random.PRNGKey(0));
    // one perturbed θ per task, as PES runs it
    const theta = tf.tidy(() => treeMap((l: tf.Tensor) => tf.add(tf.stack(new Array(N).fill(l)), tf.randomNormal([N, ...l.shape], 0, 0.01, 'float32', 3)), theta0));
    const state = step.initStepState(theta0, null, random.PRNGKey(1), { thetaIsVector: false });
    step.prefetch();
    const T = 30;
    const before = tf.memory().numTensors;
    const idx = step.getBatchIndices(T);
    const byStep = unroll(step, theta, state, T, idx, true);
    const afterOne = tf.memory().numTensors;
    const host = unroll(step, theta, state, T, idx, false);
    expect(tf.memory().numTensors).toBe(afterOne);
    expect(afterOne - before).toBeLessThanOrEqual(8); // the data split, loaded by the first unroll

    expect(byStep.hostSteps).toBe(0);
    expect(host.hostSteps).toBeGreaterThan(T / 2);
    // a reset step: inside the host run, or (task params) through unrollStep
    if (resetsInside) expect(host.hostSteps).toBe(T);
    else expect(host.hostSteps).toBeLessThan(T);
    expect(host.counters).toBe(byStep.counters);
    expect(JSON.parse(host.counters)[1].flat().filter((d: number) => d === 1).length).toBeGreaterThanOrEqual(N);
    expect(maxDiff(host.loss, byStep.loss)).toBeLessThanOrEqual(1e-6 * Math.max(1, ...byStep.loss.map(Math.abs)));
    expect(maxDiff(host.state, byStep.state)).toBeLessThanOrEqual(1e-6 * Math.max(1, ...byStep.state.map(Math.abs)));
    expect(new Set(byStep.loss).size).toBeGreaterThan(T); // the losses move
    disposeReplaced({ theta, theta0, state } as unknown as PyTree, {});
  });

  test('LOPT_HOST_RUNS=off sends every step through unrollStep; a bad value is refused naming the allowed ones', () => {
    const step = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily({ dim: 10 }), new MLPLOpt(), new LogUniformLengthSchedule({ minLength: 5, maxLength: 12 }), { numTasks: 2 });
    const theta0 = step.outerInit(random.PRNGKey(0));
    const theta = tf.tidy(() => treeMap((l: tf.Tensor) => tf.stack([l, l]), theta0));
    const state = step.initStepState(theta0, null, random.PRNGKey(1), { thetaIsVector: false });
    const before = process.env.LOPT_HOST_RUNS;
    try {
      process.env.LOPT_HOST_RUNS = 'off';
      expect(unroll(step, theta, state, 6, null, false).hostSteps).toBe(0);
      process.env.LOPT_HOST_RUNS = 'sometimes';
      expect(() => unroll(step, theta, state, 6, null, false)).toThrow(/LOPT_HOST_RUNS='sometimes': allowed values are auto, off/);
      process.env.LOPT_HOST_RUNS = 'auto';
      expect(unroll(step, theta, state, 6, null, false).hostSteps).toBeGreaterThan(0);
    } finally {
      if (before === undefined) delete process.env.LOPT_HOST_RUNS;
      else process.env.LOPT_HOST_RUNS = before;
    }
    disposeReplaced({ theta, theta0, state } as unknown as PyTree, {});
  });

  test('SimpleLOptTruncatedStep (its own reset rule) never takes a host run', () => {
    const step = new SimpleLOptTruncatedStep(new ImageMLP_FashionMnist8_Relu32(), new MLPLOpt(), { unrollLength: 3 });
    const theta = step.outerInit(random.PRNGKey(0));
    const state = step.initStepState(theta, null, random.PRNGKey(1));
    expect(step.hostRun()).toBeNull();
    disposeReplaced({ theta, state } as unknown as PyTree, {});
  });
});
