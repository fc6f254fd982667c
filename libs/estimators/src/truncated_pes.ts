/**
 * TruncatedPES: persistent evolution strategies (Vicol et al. 2021); reference
 * `outer_trainers/truncated_pes.py`, `TruncatedPES` and `compute_pes_grad`.
 *
 * Two persistent inner states (θ+ε and θ−ε branches) advance T steps per call; a per-task
 * accumulator A_i sums the perturbations since the trajectory began, so the estimate stays
 * unbiased across truncations. A reset inside the truncation splits the losses in an "old"
 * part (weighted by A+ε) and a "new" part (weighted by ε alone).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, PRNGKey, PyTree, treeFlatten, treeUnflatten, treeMap, registerPlugin, disposeReplaced, parseOptions } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import type { GradientEstimator, GradientEstimatorOut, Metrics, WorkerWeights } from './gradient_estimator';
import type { TruncatedStep, TruncatedUnrollState } from './truncated_step';
import { cloneState, selectRows } from './unroll_state';
import { vectorSamplePerturbations, maybeStackedEsUnroll, concatYs, disposeYs, hostMatrix, UnrollYs } from './common';

/** TruncatedPES's per-worker state: the two antithetic unrolls and the PES accumulator (learned_optimization/outer_trainers/truncated_pes.py, `PESWorkerState`). */
export interface PESWorkerState {
  posState: TruncatedUnrollState;
  negState: TruncatedUnrollState;
  /** θ-shaped with a leading task axis N. */
  accumulator: Theta;
}

/** TruncatedPES's options and their defaults (the reference's `TruncatedPES.__init__`). */
export const TruncatedPESSchema = z
  .object({
    truncLength: z.number().int().positive().default(10),
    std: z.number().positive().default(0.01),
    stepsPerJit: z.number().int().positive().default(10),
    stackAntitheticSamples: z.boolean().default(false),
    signDeltaLossScalar: z.number().nullable().default(null),
  })
  .strict()
  .refine((c) => c.truncLength % c.stepsPerJit === 0, (c) => ({ message: `truncLength (${c.truncLength}) must be a multiple of stepsPerJit (${c.stepsPerJit})`, path: ['truncLength'] }));
/** The options `new TruncatedPES(step, opts)` takes (see `TruncatedPESSchema`). */
export type TruncatedPESOptions = z.input<typeof TruncatedPESSchema>;

/** The inputs of the PES gradient: losses of both branches per step and task, masks, the accumulator and perturbations. */
export interface PesGradInputs {
  lossPos: tf.Tensor; // [T, N]
  lossNeg: tf.Tensor; // [T, N]
  mask: Float32Array; // [T, N] row-major
  isDone: Float32Array; // [T, N]
  numTasks: number;
  accumulator: Theta; // leaves [N, ...]
  eps: Theta; // leaves [N, ...]
  std: number;
  signDeltaLossScalar?: number | null;
}

/** The PES gradient, the new accumulator, the mean loss and the per-step loss differences (learned_optimization/outer_trainers/truncated_pes.py, `compute_pes_grad`). */
export interface PesGradOut {
  grad: Theta;
  newAccumulator: Theta;
  meanLoss: tf.Scalar;
  delta: tf.Tensor; // [T, N]
}

/** The PES arithmetic (reference `compute_pes_grad`), on the backend except the host-known masks. */
export function computePesGrad(inp: PesGradInputs): PesGradOut {
  const n = inp.numTasks;
  const t = inp.mask.length / n;
  // hf[t,i] = (cumsum_t isDone) > 0; D_i = Σ_t mask; weights for the old and new parts.
  const wOld = new Float32Array(t * n);
  const wNew = new Float32Array(t * n);
  const wAvg = new Float32Array(t * n);
  const hfLast = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let s = 0; s < t; s++) d += inp.mask[s * n + i];
    let seen = 0;
    for (let s = 0; s < t; s++) {
      seen += inp.isDone[s * n + i];
      const hf = seen > 0 ? 1 : 0;
      const m = inp.mask[s * n + i];
      wOld[s * n + i] = ((1 - hf) * m) / d;
      wNew[s * n + i] = (hf * m) / d;
      wAvg[s * n + i] = m / d;
    }
    hfLast[i] = seen > 0 ? 1 : 0;
  }
  return tf.tidy(() => {
    let delta = tf.sub(inp.lossPos, inp.lossNeg);
    if (inp.signDeltaLossScalar) {
      // sign of the plain mean over T of Δ·mask, per task
      const maskT = tf.tensor(inp.mask, [t, n]);
      const sgn = tf.sign(tf.mean(tf.mul(delta, maskT), 0));
      delta = tf.mul(tf.broadcastTo(sgn, [t, n]), inp.signDeltaLossScalar);
    }
    const lOld = tf.sum(tf.mul(delta, tf.tensor(wOld, [t, n])), 0); // [N]
    const lNew = tf.sum(tf.mul(delta, tf.tensor(wNew, [t, n])), 0);
    const scale = 1 / (2 * inp.std * inp.std);
    const [accLeaves, def] = treeFlatten<tf.Tensor>(inp.accumulator);
    const [epsLeaves] = treeFlatten<tf.Tensor>(inp.eps);
    const grads: tf.Tensor[] = [];
    const newAcc: tf.Tensor[] = [];
    accLeaves.forEach((a, j) => {
      const e = epsLeaves[j];
      const bshape = [n, ...new Array(a.rank - 1).fill(1)];
      const aNew = tf.add(a, e);
      const g = tf.add(tf.mul(aNew, lOld.reshape(bshape)), tf.mul(e, lNew.reshape(bshape)));
      grads.push(tf.mul(tf.mean(g, 0), scale));
      // a task whose unroll ended restarts its accumulator at ε (row selection: no mask tiled to the leaf)
      const acc = selectRows(hfLast, e, aNew);
      newAcc.push(acc === e ? e.clone() : acc);
    });
    const wAvgT = tf.tensor(wAvg, [t, n]);
    const pos = tf.sum(tf.mul(inp.lossPos, wAvgT), 0);
    const neg = tf.sum(tf.mul(inp.lossNeg, wAvgT), 0);
    const meanLoss = tf.mean(tf.div(tf.add(pos, neg), 2)) as tf.Scalar;
    return { grad: treeUnflatten(def, grads), newAccumulator: treeUnflatten(def, newAcc), meanLoss, delta } as any;
  }) as PesGradOut;
}

/** Persistent evolution strategies over truncated unrolls (learned_optimization/outer_trainers/truncated_pes.py, `TruncatedPES`). */
export class TruncatedPES implements GradientEstimator<PESWorkerState> {
  readonly truncLength: number;
  readonly std: number;
  readonly stepsPerJit: number;
  readonly stackAntitheticSamples: boolean;
  readonly signDeltaLossScalar: number | null;

  constructor(readonly truncatedStep: TruncatedStep, opts: TruncatedPESOptions = {}) {
    const c = parseOptions(TruncatedPESSchema, opts, 'TruncatedPES');
    this.truncLength = c.truncLength;
    this.std = c.std;
    this.stepsPerJit = c.stepsPerJit;
    this.stackAntitheticSamples = c.stackAntitheticSamples;
    this.signDeltaLossScalar = c.signDeltaLossScalar;
  }

  taskName(): string {
    return this.truncatedStep.taskName();
  }

  cfgName(): string {
    return 'default_cfg';
  }

  async initWorkerState(workerWeights: WorkerWeights, key: PRNGKey): Promise<PESWorkerState> {
    const posState = this.truncatedStep.initStepState(workerWeights.theta, workerWeights.outerState, key, { thetaIsVector: false });
    // neg is an identical copy (own handles, shared data)
    const negState = cloneState(posState);
    const n = this.truncatedStep.numTasks;
    const accumulator = treeMap((l: tf.Tensor) => tf.zeros([n, ...l.shape]), workerWeights.theta);
    return { posState, negState, accumulator };
  }

  /**
   * The T-step unroll of both antithetic branches from `state` (not consumed), chunk by chunk
   * (`truncLength / stepsPerJit` chunks; two keys drawn from `rng` per chunk: the unroll key and
   * the reference's summary key). Returns the new branch states and the stacked outputs. A
   * subclass may run the branches elsewhere (worker threads) with the same data and keys.
   */
  protected async unrollBranches(
    workerWeights: WorkerWeights,
    posTheta: Theta,
    negTheta: Theta,
    state: PESWorkerState,
    rng: random.PRNGSequence,
    datasList?: PyTree[],
  ): Promise<{ posState: TruncatedUnrollState; negState: TruncatedUnrollState; pYs: UnrollYs; nYs: UnrollYs }> {
    let p = state.posState;
    let q = state.negState;
    const pChunks: UnrollYs[] = [];
    const nChunks: UnrollYs[] = [];
    const chunks = this.truncLength / this.stepsPerJit;
    for (let c = 0; c < chunks; c++) {
      const datas = datasList ? datasList[c] : this.truncatedStep.getBatch(this.stepsPerJit);
      const unrollKey = rng.next();
      rng.next(); // the reference's summary key
      const out = maybeStackedEsUnroll(this.truncatedStep, this.stepsPerJit, this.stackAntitheticSamples, posTheta, negTheta, p, q, unrollKey, datas, workerWeights.outerState);
      if (!datasList) disposeReplaced(datas, {});
      if (p !== state.posState) disposeReplaced(p, out.pState);
      if (q !== state.negState) disposeReplaced(q, out.nState);
      p = out.pState;
      q = out.nState;
      pChunks.push(out.pYs);
      nChunks.push(out.nYs);
    }
    return { posState: p, negState: q, pYs: concatYs(pChunks), nYs: concatYs(nChunks) };
  }

  async computeGradientEstimate(
    workerWeights: WorkerWeights,
    key: PRNGKey,
    state: PESWorkerState,
    opts: { withSummary?: boolean; datasList?: PyTree[] } = {},
  ): Promise<[GradientEstimatorOut<PESWorkerState>, Metrics]> {
    const rng = new random.PRNGSequence(key);
    const n = this.truncatedStep.numTasks;
    const { eps, posTheta, negTheta } = vectorSamplePerturbations(workerWeights.theta, rng.next(), this.std, n);
    const { posState: p, negState: q, pYs, nYs } = await this.unrollBranches(workerWeights, posTheta, negTheta, state, rng, opts.datasList);
    const res = computePesGrad({
      lossPos: pYs.loss,
      lossNeg: nYs.loss,
      mask: hostMatrix(pYs.mask),
      isDone: hostMatrix(pYs.isDone),
      numTasks: n,
      accumulator: state.accumulator,
      eps,
      std: this.std,
      signDeltaLossScalar: this.signDeltaLossScalar,
    });
    disposeYs(nYs);
    disposeReplaced({ eps, posTheta, negTheta }, {});

    const metrics: Metrics = {};
    if (opts.withSummary) {
      const absDelta = tf.abs(res.delta);
      const flat = absDelta.reshape([-1]);
      const idx = random.randintArray(rng.next(), 1, 0, flat.shape[0])[0];
      metrics['sample||delta_loss_sample'] = tf.tidy(() => flat.slice([idx], [1]).reshape([]));
      metrics['mean||delta_loss_mean'] = tf.mean(absDelta);
      absDelta.dispose();
      flat.dispose();
      const steps = pYs.iteration.length ? pYs.iteration[pYs.iteration.length - 1] : new Int32Array(1);
      metrics['sample||inner_step'] = steps[0];
      metrics['sample||end_inner_step'] = steps[0];
    }
    res.delta.dispose();

    // Donate the input state.
    const newState: PESWorkerState = { posState: p, negState: q, accumulator: res.newAccumulator };
    disposeReplaced(state, newState);

    return [
      {
        meanLoss: res.meanLoss,
        grad: res.grad,
        unrollState: newState,
        unrollInfo: { loss: pYs.loss, iteration: pYs.iteration, taskParam: pYs.taskParam, isDone: pYs.isDone },
      },
      metrics,
    ];
  }
}

registerPlugin({
  kind: 'gradient_estimator',
  name: 'TruncatedPES',
  description: 'persistent antithetic ES over truncations with per-task perturbation accumulators',
  schema: TruncatedPESSchema,
  create: (c, deps) => new TruncatedPES(deps.truncatedStep, c),
  traits: { antithetic: true, threadedBranches: true },
  cls: TruncatedPES,
});
