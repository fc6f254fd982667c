import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, treeDispose } from '@lopt/core';
import {
  computePesGrad,
  ConstantTruncationSchedule,
  LogUniformLengthSchedule,
  NeverEndingTruncationSchedule,
  VectorizedLOptTruncatedStep,
  TruncatedPES,
  TruncatedES,
  FullES,
  TruncatedGrad,
  FullGrad,
  hostTensor,
  truncatedUnroll,
  type TruncationSchedule,
} from '../index';
import { FakeQuadFamily, FakeSgdLOpt } from './fakes';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('computePesGrad', () => {
  test('matches a hand computation of compute_pes_grad (outer_trainers/truncated_pes.py) for N=1, T=3', () => {
    const sigma = 0.1;
    const a = tf.tensor([[0.3, -0.2]]);
    const e = tf.tensor([[0.05, 0.01]]);
    const out = computePesGrad({
      lossPos: tf.tensor([[1], [2], [0]]),
      lossNeg: tf.tensor([[0.5], [1], [0]]),
      mask: Float32Array.from([1, 1, 0]),
      isDone: Float32Array.from([0, 1, 0]),
      numTasks: 1,
      accumulator: { w: a },
      eps: { w: e },
      std: sigma,
    });
    // hf=[0,1,1], D=2, Lold=0.25, Lnew=0.5 → grad = (0.25(a+e) + 0.5e)/(2σ²); new acc = e; mean loss 1.125
    const expected = [0.3, -0.2].map((av, i) => (0.25 * (av + [0.05, 0.01][i]) + 0.5 * [0.05, 0.01][i]) / (2 * sigma * sigma));
    const g = (out.grad as any).w.arraySync();
    expect(g[0]).toBeCloseTo(expected[0], 4);
    expect(g[1]).toBeCloseTo(expected[1], 4);
    expect((out.newAccumulator as any).w.arraySync()[0][0]).toBeCloseTo(0.05, 6);
    expect((out.newAccumulator as any).w).not.toBe(e); // its own tensor, not the caller's ε
    expect(out.meanLoss.arraySync()).toBeCloseTo(1.125, 6);
  });

  test('the accumulator restarts at ε only for the tasks whose unroll ended (N=3)', () => {
    const a = tf.tensor([[1, 2], [3, 4], [5, 6]]);
    const e = tf.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]);
    const out = computePesGrad({
      lossPos: tf.tensor([[1, 1, 1], [1, 1, 1]]),
      lossNeg: tf.tensor([[0, 0, 0], [0, 0, 0]]),
      mask: Float32Array.from([1, 1, 1, 1, 1, 1]),
      isDone: Float32Array.from([0, 1, 0, 0, 0, 1]), // task 1 ends at step 0, task 2 at step 1
      numTasks: 3,
      accumulator: { w: a },
      eps: { w: e },
      std: 1,
    });
    const acc = (out.newAccumulator as any).w.arraySync() as number[][];
    [[1.1, 2.2], [0.3, 0.4], [0.5, 0.6]].forEach((row, i) => row.forEach((v, j) => expect(acc[i][j]).toBeCloseTo(v, 6)));
  });

  test('without a reset the accumulator keeps growing and sign mode replaces Δ', () => {
    const out = computePesGrad({
      lossPos: tf.tensor([[1], [3]]),
      lossNeg: tf.tensor([[2], [1]]),
      mask: Float32Array.from([1, 1]),
      isDone: Float32Array.from([0, 0]),
      numTasks: 1,
      accumulator: { w: tf.tensor([[1]]) },
      eps: { w: tf.tensor([[0.5]]) },
      std: 1,
      signDeltaLossScalar: 2,
    });
    // Δ=[-1,2]: mean(Δ·mask)=0.5>0 → Δ:=[2,2]; Lold = 2, A' = 1.5 → grad = 2*1.5/2 = 1.5
    expect((out.grad as any).w.arraySync()[0]).toBeCloseTo(1.5, 6);
    expect((out.newAccumulator as any).w.arraySync()[0][0]).toBeCloseTo(1.5, 6);
  });
});

describe('truncation schedules', () => {
  test('LogUniform lengths stay in [min, max) with a log-uniform histogram', () => {
    const s = new LogUniformLengthSchedule({ minLength: 100, maxLength: 300 });
    const keys = random.split(random.PRNGKey(3), 4000);
    const lengths = keys.map((k) => s.init(k, null).length as number);
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...lengths)).toBeLessThan(300);
    // P(L < sqrt(100*300)=173.2) = 0.5 under log-uniform; P(L < 200) = ln2/ln3 = 0.631
    const below = (x: number) => lengths.filter((l) => l < x).length / lengths.length;
    expect(below(173.2)).toBeGreaterThan(0.47);
    expect(below(173.2)).toBeLessThan(0.53);
    expect(below(200)).toBeGreaterThan(0.6);
    expect(below(200)).toBeLessThan(0.66);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeGreaterThan(178);
    expect(mean).toBeLessThan(185);
  });

  test('LogUniform re-samples the moment a trajectory ends; Constant does not', () => {
    const s = new LogUniformLengthSchedule({ minLength: 10, maxLength: 100 });
    const [st, done] = s.nextState({ length: 20 }, 20, random.PRNGKey(1), null);
    expect(done).toBe(true);
    expect(st.length).toBe(s.init(random.PRNGKey(1), null).length);
    const constant: TruncationSchedule = new ConstantTruncationSchedule(5);
    expect(constant.nextState({ length: 5 }, 4, random.PRNGKey(0), null)[1]).toBe(false);
    expect(constant.nextState({ length: 5 }, 5, random.PRNGKey(0), null)[1]).toBe(true);
  });
});

describe('VectorizedLOptTruncatedStep', () => {
  test('reproduces the inner-step / mask timeline printed by the reference notebook Part3_Truncation_TruncatedStep', () => {
    const step = new VectorizedLOptTruncatedStep(new FakeQuadFamily(), new FakeSgdLOpt(), new ConstantTruncationSchedule(5), { numTasks: 3 });
    const theta = new FakeSgdLOpt().init();
    let state = step.initStepState(theta, null, random.PRNGKey(0));
    state.innerStep.dispose();
    state = { ...state, innerStep: hostTensor([2, 4, 4]) };
    const inner: number[][] = [];
    const masks: number[][] = [];
    let key = random.PRNGKey(1);
    for (let i = 0; i < 10; i++) {
      const [k1, k2] = random.split(key);
      key = k2;
      const [next, ys] = step.unrollStep(theta, state, k1, null, null);
      inner.push(Array.from(ys.iteration));
      masks.push(Array.from(ys.mask));
      // reset steps report loss 0
      const loss = ys.loss.arraySync() as number[];
      ys.mask.forEach((m, j) => m === 0 && expect(loss[j]).toBe(0));
      expect(Array.from(next.innerStep.dataSync())).toEqual(Array.from(ys.iteration));
      disposeReplaced(state, next);
      ys.loss.dispose();
      treeDispose(ys.taskParam);
      state = next;
    }
    expect(inner).toEqual([[3, 5, 5], [4, 0, 0], [5, 1, 1], [0, 2, 2], [1, 3, 3], [2, 4, 4], [3, 5, 5], [4, 0, 0], [5, 1, 1], [0, 2, 2]]);
    const T = 1, F = 0;
    expect(masks).toEqual([[T, T, T], [T, F, F], [T, T, T], [F, T, T], [T, T, T], [T, T, T], [T, T, T], [T, F, F], [T, T, T], [F, T, T]]);
    treeDispose(state);
  });

  test('random initial offset only moves the truncation counter', () => {
    const step = new VectorizedLOptTruncatedStep(new FakeQuadFamily(), new FakeSgdLOpt(), new ConstantTruncationSchedule(50), { numTasks: 64, randomInitialIterationOffset: 50 });
    const theta = new FakeSgdLOpt().init();
    const state = step.initStepState(theta, null, random.PRNGKey(2));
    const offs = Array.from(state.innerStep.dataSync());
    expect(Math.min(...offs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offs)).toBeLessThan(50);
    expect(new Set(offs).size).toBeGreaterThan(20);
    expect(Array.from((state.innerOptState.iteration as tf.Tensor).dataSync()).every((x) => x === 0)).toBe(true);
    expect(Array.from(state.truncationState.length!.dataSync()).every((x) => x === 50)).toBe(true);
  });
});

/** The deterministic objective f(θ) = mean_i mean_t loss over the first `length` steps from a fixed init. */
function trajectoryObjective(step: VectorizedLOptTruncatedStep, logLr: number, initKey: any, length: number): number {
  const theta = { log_lr: tf.scalar(logLr) };
  const s0 = step.initStepState(theta, null, initKey);
  const [s1, ys] = truncatedUnroll(step, length, false, theta, random.PRNGKey(9), s0, null, null);
  const v = ys.loss.mean().arraySync() as number;
  disposeReplaced(s0, {});
  disposeReplaced(s1, {});
  ys.loss.dispose();
  ys.taskParam.forEach((t) => treeDispose(t));
  return v;
}

describe('ES-type estimators average to the true meta-gradient', () => {
  // A trajectory of length 4 fits one truncation of 4 steps exactly, so the first PES call is
  // unbiased ES on f(θ) = mean of the 4 training losses, whose gradient we get by finite differences.
  const L = 4;
  const logLr = Math.log(0.1);
  const initKey = random.PRNGKey(5);

  function fdGrad(step: VectorizedLOptTruncatedStep): number {
    const h = 1e-3;
    return (trajectoryObjective(step, logLr + h, initKey, L) - trajectoryObjective(step, logLr - h, initKey, L)) / (2 * h);
  }

  async function meanEstimate(make: (step: VectorizedLOptTruncatedStep) => any, step: VectorizedLOptTruncatedStep, reps: number): Promise<number> {
    const est = make(step);
    let sum = 0;
    for (let r = 0; r < reps; r++) {
      const ww = { theta: { log_lr: tf.scalar(logLr) }, thetaModelState: null, outerState: { outerIteration: 0 } };
      const state = await est.initWorkerState(ww, initKey);
      const [out] = await est.computeGradientEstimate(ww, random.PRNGKey(100 + r), state, {});
      sum += (out.grad.log_lr as tf.Tensor).arraySync() as number;
      treeDispose(out.grad);
      out.meanLoss.dispose();
      disposeReplaced(out.unrollState, {});
      if (out.unrollInfo) {
        out.unrollInfo.loss.dispose();
        out.unrollInfo.taskParam.forEach((t: any) => treeDispose(t));
      }
      treeDispose(ww.theta);
    }
    return sum / reps;
  }

  const mkStep = (sched: any) => new VectorizedLOptTruncatedStep(new FakeQuadFamily(3), new FakeSgdLOpt(), sched, { numTasks: 16 });

  test('TruncatedPES (first truncation) ≈ finite differences', async () => {
    const step = mkStep(new ConstantTruncationSchedule(L));
    const target = fdGrad(step);
    const before = tf.memory().numTensors;
    const est = await meanEstimate((s) => new TruncatedPES(s, { truncLength: L, stepsPerJit: 2, std: 0.01 }), step, 40);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(est - target)).toBeLessThan(0.15 * Math.abs(target));
  });

  test('stacked antithetic PES gives the same estimate as two calls', async () => {
    const step = mkStep(new ConstantTruncationSchedule(L));
    const a = await meanEstimate((s) => new TruncatedPES(s, { truncLength: L, stepsPerJit: 2 }), step, 3);
    const b = await meanEstimate((s) => new TruncatedPES(s, { truncLength: L, stepsPerJit: 2, stackAntitheticSamples: true }), step, 3);
    expect(b).toBeCloseTo(a, 3);
  });

  test('TruncatedES ≈ finite differences', async () => {
    const step = mkStep(new ConstantTruncationSchedule(L));
    const target = fdGrad(step);
    const est = await meanEstimate((s) => new TruncatedES(s, { unrollLength: L, stepsPerJit: 2 }), step, 40);
    expect(Math.abs(est - target)).toBeLessThan(0.15 * Math.abs(target));
  });

  test('TruncatedGrad equals finite differences of the same unroll', async () => {
    const step = mkStep(new ConstantTruncationSchedule(L));
    const target = fdGrad(step);
    const est = await meanEstimate((s) => new TruncatedGrad(s, { unrollLength: L, stepsPerJit: 2 }), step, 1);
    expect(est).toBeCloseTo(target, 2);
  });

  test('FullES and FullGrad agree on a never-ending inner schedule', async () => {
    const step = mkStep(new NeverEndingTruncationSchedule());
    const outer = new ConstantTruncationSchedule(L);
    const fullGrad = await meanEstimate((s) => new FullGrad(s, outer), step, 30);
    const fullEs = await meanEstimate((s) => new FullES(s, outer, { stepsPerJit: 2 }), step, 60);
    expect(Math.abs(fullEs - fullGrad)).toBeLessThan(0.2 * Math.abs(fullGrad));
  });

  test('FullES rejects a schedule that is not NeverEnding', () => {
    const step = mkStep(new ConstantTruncationSchedule(L));
    expect(() => new FullES(step, new ConstantTruncationSchedule(L))).toThrow(/NeverEndingTruncationSchedule/);
  });
});
