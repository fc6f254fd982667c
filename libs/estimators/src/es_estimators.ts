/**
 * TruncatedES (reference `outer_trainers/truncated_es.py`, `TruncatedES`) and FullES
 * (`outer_trainers/full_es.py`, `FullES`): antithetic evolution strategies over a
 * truncation that continues from the positive branch, and over full-length unrolls of fresh tasks.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, PRNGKey, PyTree, treeFlatten, treeUnflatten, registerPlugin, disposeReplaced, parseOptions } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import type { GradientEstimator, GradientEstimatorOut, Metrics, WorkerWeights } from './gradient_estimator';
import type { TruncatedStep, TruncatedUnrollState } from './truncated_step';
import { cloneState } from './unroll_state';
import { vectorSamplePerturbations, maybeStackedEsUnroll, concatYs, disposeYs, hostMatrix, UnrollYs } from './common';
import { NeverEndingTruncationSchedule, TruncationSchedule } from './truncation_schedule';

/** grad = mean_i Δ_i ε_i / (2σ²) with Δ `[N]` on the backend. */
export function esGrad(delta: tf.Tensor, eps: Theta, std: number): Theta {
  return tf.tidy(() => {
    const [leaves, def] = treeFlatten<tf.Tensor>(eps);
    const n = delta.shape[0];
    return treeUnflatten(
      def,
      leaves.map((e) => tf.mul(tf.mean(tf.mul(e, delta.reshape([n, ...new Array(e.rank - 1).fill(1)])), 0), 1 / (2 * std * std))),
    ) as any;
  });
}

function maskedMeanOverTime(loss: tf.Tensor, mask: Float32Array): tf.Tensor {
  const [t, n] = loss.shape;
  return tf.tidy(() => {
    const m = tf.tensor(mask, [t, n]);
    return tf.div(tf.sum(tf.mul(loss, m), 0), tf.sum(m, 0));
  });
}

/**
 * Unrolls the positive and negative branches together for `numChunks` chunks of `stepsPerJit`
 * steps (one key per chunk, each followed by one unused draw), on fresh batches unless `datasList`
 * gives them (those stay the caller's). Each replaced state is disposed except `keep` (the
 * caller's); returns the final states and each branch's outputs concatenated over time.
 */
function unrollAntithetic(
  est: { truncatedStep: TruncatedStep; stepsPerJit: number; stackAntitheticSamples: boolean },
  rng: random.PRNGSequence,
  posTheta: Theta,
  negTheta: Theta,
  p: TruncatedUnrollState,
  q: TruncatedUnrollState,
  numChunks: number,
  outerState: WorkerWeights['outerState'],
  opts: { datasList?: PyTree[]; keep?: TruncatedUnrollState; overrideNumSteps?: number } = {},
): { pState: TruncatedUnrollState; nState: TruncatedUnrollState; pYs: UnrollYs; nYs: UnrollYs } {
  const pc: UnrollYs[] = [];
  const nc: UnrollYs[] = [];
  for (let c = 0; c < numChunks; c++) {
    const datas = opts.datasList ? opts.datasList[c] : est.truncatedStep.getBatch(est.stepsPerJit);
    const k = rng.next();
    rng.next();
    const out = maybeStackedEsUnroll(est.truncatedStep, est.stepsPerJit, est.stackAntitheticSamples, posTheta, negTheta, p, q, k, datas, outerState, opts.overrideNumSteps ?? null);
    if (!opts.datasList) disposeReplaced(datas, {});
    if (p !== opts.keep) disposeReplaced(p, out.pState);
    if (q !== opts.keep) disposeReplaced(q, out.nState);
    p = out.pState;
    q = out.nState;
    pc.push(out.pYs);
    nc.push(out.nYs);
  }
  return { pState: p, nState: q, pYs: concatYs(pc), nYs: concatYs(nc) };
}

function applySign(delta: tf.Tensor, s: number | null): tf.Tensor {
  if (!s) return delta;
  return tf.tidy(() => tf.mul(tf.sign(delta), s));
}

const esCommon = {
  std: z.number().positive().default(0.01),
  stepsPerJit: z.number().int().positive().default(10),
  stackAntitheticSamples: z.boolean().default(false),
  signDeltaLossScalar: z.number().nullable().default(null),
};

/** TruncatedES's options and their defaults (the reference's `TruncatedES.__init__`). */
export const TruncatedESSchema = z
  .object({ unrollLength: z.number().int().positive().default(20), ...esCommon })
  .strict()
  .refine((c) => c.unrollLength % c.stepsPerJit === 0, (c) => ({ message: `unrollLength (${c.unrollLength}) must be a multiple of stepsPerJit (${c.stepsPerJit})`, path: ['unrollLength'] }));
/** The options `new TruncatedES(step, opts)` takes (see `TruncatedESSchema`). */
export type TruncatedESOptions = z.input<typeof TruncatedESSchema>;

/** Antithetic ES on truncated unrolls, without PES's accumulator (learned_optimization/outer_trainers/truncated_es.py, `TruncatedES`). */
export class TruncatedES implements GradientEstimator<TruncatedUnrollState> {
  readonly unrollLength: number;
  readonly stepsPerJit: number;
  readonly std: number;
  readonly stackAntitheticSamples: boolean;
  readonly signDeltaLossScalar: number | null;

  constructor(readonly truncatedStep: TruncatedStep, opts: TruncatedESOptions = {}) {
    const c = parseOptions(TruncatedESSchema, opts, 'TruncatedES');
    this.unrollLength = c.unrollLength;
    this.stepsPerJit = c.stepsPerJit;
    this.std = c.std;
    this.stackAntitheticSamples = c.stackAntitheticSamples;
    this.signDeltaLossScalar = c.signDeltaLossScalar;
  }

  taskName(): string {
    return this.truncatedStep.taskName();
  }
  cfgName(): string {
    return 'default_cfg';
  }

  async initWorkerState(workerWeights: WorkerWeights, key: PRNGKey): Promise<TruncatedUnrollState> {
    return this.truncatedStep.initStepState(workerWeights.theta, workerWeights.outerState, key, { thetaIsVector: false });
  }

  async computeGradientEstimate(workerWeights: WorkerWeights, key: PRNGKey, state: TruncatedUnrollState, opts: { withSummary?: boolean; datasList?: PyTree[] } = {}): Promise<[GradientEstimatorOut<TruncatedUnrollState>, Metrics]> {
    const rng = new random.PRNGSequence(key);
    const n = state.innerStep.shape[0];
    const { eps, posTheta, negTheta } = vectorSamplePerturbations(workerWeights.theta, rng.next(), this.std, n);
    // Both branches start from the same current state.
    const numChunks = this.unrollLength / this.stepsPerJit;
    const { pState: p, nState: q, pYs, nYs } = unrollAntithetic(this, rng, posTheta, negTheta, state, cloneState(state), numChunks, workerWeights.outerState, {
      datasList: opts.datasList,
      keep: state,
    });
    const mask = hostMatrix(pYs.mask);
    const { grad, meanLoss } = tf.tidy(() => {
      const pos = maskedMeanOverTime(pYs.loss, mask);
      const neg = maskedMeanOverTime(nYs.loss, mask);
      const delta = applySign(tf.sub(pos, neg), this.signDeltaLossScalar);
      return { grad: esGrad(delta, eps, this.std), meanLoss: tf.mean(tf.div(tf.add(pos, neg), 2)) } as any;
    }) as { grad: Theta; meanLoss: tf.Tensor };
    disposeYs(nYs);
    disposeReplaced(q, {});
    disposeReplaced({ eps, posTheta, negTheta }, {});
    // The next state is the *positive* branch's (reference quirk: the trajectory drifts along θ+ε).
    disposeReplaced(state, p);
    return [{ meanLoss, grad, unrollState: p, unrollInfo: { loss: pYs.loss, iteration: pYs.iteration, taskParam: pYs.taskParam, isDone: pYs.isDone } }, {}];
  }
}

/** How FullES turns a trajectory's losses into one meta-loss (learned_optimization/outer_trainers/full_es.py, `loss_type`). */
export type FullEsLossType = 'avg' | 'min' | 'last' | 'last_recompute';

/** FullES's options and their defaults (the reference's `FullES.__init__`). */
export const FullESSchema = z
  .object({
    ...esCommon,
    lossType: z.enum(['avg', 'min', 'last', 'last_recompute']).default('avg'),
    recomputeSamples: z.number().int().positive().default(50),
    clipLossDiff: z.number().positive().nullable().default(null),
  })
  .strict();
/** The options `new FullES(step, opts)` takes (see `FullESSchema`). */
export type FullESOptions = z.input<typeof FullESSchema>;


/** Requires the inner schedule to be NeverEnding: FullES sets every trajectory's length itself. */
export function assertNeverEnding(step: TruncatedStep, who: string): void {
  const sched = step.truncSched;
  if (sched && !(sched instanceof NeverEndingTruncationSchedule)) {
    throw new Error(`${who} needs a truncated step whose truncation schedule is NeverEndingTruncationSchedule (it sets trajectory lengths itself); got ${sched.name}`);
  }
}

/** Antithetic ES on whole trajectories (learned_optimization/outer_trainers/full_es.py, `FullES`). */
export class FullES implements GradientEstimator<Record<string, never>> {
  readonly std: number;
  readonly stepsPerJit: number;
  readonly lossType: FullEsLossType;
  readonly recomputeSamples: number;
  readonly clipLossDiff: number | null;
  readonly stackAntitheticSamples: boolean;
  readonly signDeltaLossScalar: number | null;

  constructor(readonly truncatedStep: TruncatedStep, readonly truncationSchedule: TruncationSchedule, opts: FullESOptions = {}) {
    assertNeverEnding(truncatedStep, 'FullES');
    const c = parseOptions(FullESSchema, opts, 'FullES');
    this.std = c.std;
    this.stepsPerJit = c.stepsPerJit;
    this.lossType = c.lossType;
    this.recomputeSamples = c.recomputeSamples;
    this.clipLossDiff = c.clipLossDiff;
    this.stackAntitheticSamples = c.stackAntitheticSamples;
    this.signDeltaLossScalar = c.signDeltaLossScalar;
  }

  taskName(): string {
    return this.truncatedStep.taskName();
  }
  /** The learned optimizer's name, which is null for the base lopts: "None" (reference quirk). */
  cfgName(): string {
    const lopt = (this.truncatedStep as any).learnedOpt;
    return lopt && lopt.name ? String(lopt.name) : 'None';
  }

  async initWorkerState(): Promise<Record<string, never>> {
    return {};
  }

  async computeGradientEstimate(workerWeights: WorkerWeights, key: PRNGKey, _state: Record<string, never>, opts: { withSummary?: boolean } = {}): Promise<[GradientEstimatorOut<Record<string, never>>, Metrics]> {
    const rng = new random.PRNGSequence(key);
    const n = this.truncatedStep.numTasks;
    const { eps, posTheta, negTheta } = vectorSamplePerturbations(workerWeights.theta, rng.next(), this.std, n);
    const initKey = rng.next();
    const sampled = this.truncationSchedule.init(initKey, workerWeights.outerState).length ?? this.stepsPerJit;
    const length = Math.max(Math.floor(sampled / this.stepsPerJit) * this.stepsPerJit, this.stepsPerJit);
    // Same key for both branches: same sampled tasks and inner inits.
    const p0 = this.truncatedStep.initStepState(posTheta, workerWeights.outerState, initKey, { thetaIsVector: true, numStepsOverride: length });
    const q0 = this.truncatedStep.initStepState(negTheta, workerWeights.outerState, initKey, { thetaIsVector: true, numStepsOverride: length });
    const { pState: p, nState: q, pYs, nYs } = unrollAntithetic(this, rng, posTheta, negTheta, p0, q0, length / this.stepsPerJit, workerWeights.outerState, {
      overrideNumSteps: length,
    });
    let pos: tf.Tensor;
    let neg: tf.Tensor;
    if (this.lossType === 'last_recompute') {
      const data = this.truncatedStep.getOuterBatch(this.recomputeSamples);
      const ps: tf.Tensor[] = [];
      const ns: tf.Tensor[] = [];
      const keys = random.split(rng.next(), this.recomputeSamples);
      for (let s = 0; s < this.recomputeSamples; s++) {
        const d = data ? (tf.tidy(() => sliceLeading(data, s) as any) as PyTree) : null;
        ps.push(this.truncatedStep.metaLossBatch(posTheta, p, keys[s], d, workerWeights.outerState, { thetaIsVector: true }));
        ns.push(this.truncatedStep.metaLossBatch(negTheta, q, keys[s], d, workerWeights.outerState, { thetaIsVector: true }));
        if (d) disposeReplaced(d, {});
      }
      if (data) disposeReplaced(data, {});
      pos = tf.tidy(() => tf.mean(tf.stack(ps), 0));
      neg = tf.tidy(() => tf.mean(tf.stack(ns), 0));
      ps.concat(ns).forEach((t) => t.dispose());
    } else {
      const reduce = (l: tf.Tensor) =>
        tf.tidy(() => {
          if (this.lossType === 'avg') return tf.mean(l, 0); // unmasked (reference quirk)
          if (this.lossType === 'min') return tf.min(l, 0);
          return tf.squeeze(l.slice([l.shape[0] - 1], [1]), [0]);
        });
      pos = reduce(pYs.loss);
      neg = reduce(nYs.loss);
    }
    const { grad, meanLoss } = tf.tidy(() => {
      let delta = tf.sub(pos, neg);
      delta = tf.where(tf.isFinite(delta), delta, tf.zerosLike(delta));
      if (this.clipLossDiff) delta = tf.clipByValue(delta, -this.clipLossDiff, this.clipLossDiff);
      delta = applySign(delta, this.signDeltaLossScalar);
      return { grad: esGrad(delta, eps, this.std), meanLoss: tf.mean(tf.div(tf.add(pos, neg), 2)) } as any;
    }) as { grad: Theta; meanLoss: tf.Tensor };
    pos.dispose();
    neg.dispose();
    disposeYs(nYs);
    const endStep = p.innerStep;
    const metrics: Metrics = opts.withSummary ? { 'sample||end_inner_step': Number(endStep.dataSync()[0]) } : {};
    disposeReplaced(p, {});
    disposeReplaced(q, {});
    disposeReplaced({ eps, posTheta, negTheta }, {});
    return [{ meanLoss, grad, unrollState: {}, unrollInfo: { loss: pYs.loss, iteration: pYs.iteration, taskParam: pYs.taskParam, isDone: pYs.isDone } }, metrics];
  }
}

function sliceLeading(data: PyTree, s: number): PyTree {
  const [leaves, def] = treeFlatten<tf.Tensor>(data);
  return treeUnflatten(def, leaves.map((l) => tf.squeeze(l.slice([s], [1]), [0])));
}

registerPlugin({
  kind: 'gradient_estimator',
  name: 'TruncatedES',
  description: 'antithetic ES over short truncations, continuing from the positive branch',
  schema: TruncatedESSchema,
  create: (c, deps) => new TruncatedES(deps.truncatedStep, c),
  traits: { antithetic: true },
  cls: TruncatedES,
});

registerPlugin({
  kind: 'gradient_estimator',
  name: 'FullES',
  description: 'antithetic ES over full-length unrolls of fresh tasks (avg/min/last/last_recompute loss)',
  schema: FullESSchema,
  create: (c, deps) => new FullES(deps.truncatedStep, deps.truncationSchedule, c),
  traits: { antithetic: true, fullUnroll: true },
  cls: FullES,
});
