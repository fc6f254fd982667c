/**
 * TruncatedGrad (reference `outer_trainers/truncated_grad.py`, `TruncatedGrad`) and FullGrad
 * (`outer_trainers/full_grad.py`, `FullGrad`): backpropagation through the unroll with
 * `tf.valueAndGrads`, second-order through the inner gradient (tfjs supports nested gradients).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, PRNGKey, PyTree, treeFlatten, treeUnflatten, treeLeaves, registerPlugin, disposeReplaced, parseOptions } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import type { GradientEstimator, GradientEstimatorOut, Metrics, WorkerWeights } from './gradient_estimator';
import type { TruncatedStep, TruncatedUnrollState } from './truncated_step';
import { truncatedUnroll, hostMatrix, UnrollYs } from './common';
import { assertNeverEnding } from './es_estimators';
import type { TruncationSchedule } from './truncation_schedule';

/** mean_i( Σ_t mask·loss / Σ_t mask ) for one chunk's stacked losses. */
function maskedSums(loss: tf.Tensor, mask: Float32Array): [tf.Tensor, tf.Tensor] {
  const m = tf.tensor(mask, loss.shape);
  return [tf.sum(tf.mul(loss, m), 0), tf.sum(m, 0)];
}

/**
 * Differentiates `fn(theta)` w.r.t. every θ leaf. `fn` returns the scalar loss; tensors it wants
 * to keep past the gradient computation (the new state) it must `tf.keep`. A θ leaf the loss does
 * not depend on gets a zero gradient, as under jax.grad (e.g. NNAdam's or RNNMLPLOpt's LSTM start
 * state, used only by init, in a truncation that starts mid-trajectory); tf.valueAndGrads would
 * throw.
 */
function valueAndGradTheta(theta: Theta, fn: (theta: Theta) => tf.Scalar): { value: tf.Scalar; grad: Theta } {
  const [leaves, def] = treeFlatten<tf.Tensor>(theta);
  const { value, grads } = tf.engine().gradients(() => fn(treeUnflatten(def, leaves)), leaves, undefined, true);
  if (value.rank !== 0) throw new Error(`the meta-loss must be a scalar, got shape [${value.shape}]`);
  return { value: value as tf.Scalar, grad: treeUnflatten(def, grads.map((g, i) => g ?? tf.zerosLike(leaves[i]))) };
}

function keepTree(t: PyTree): void {
  for (const l of treeLeaves<unknown>(t)) if (l instanceof tf.Tensor) tf.keep(l);
}

/** TruncatedGrad's options and their defaults (the reference's `TruncatedGrad.__init__`; loss_type is accepted and ignored, as there). */
export const TruncatedGradSchema = z
  .object({ unrollLength: z.number().int().positive().default(20), stepsPerJit: z.number().int().positive().default(10), lossType: z.string().default('avg') })
  .strict()
  .refine((c) => c.unrollLength % c.stepsPerJit === 0, (c) => ({ message: `unrollLength (${c.unrollLength}) must be a multiple of stepsPerJit (${c.stepsPerJit})`, path: ['unrollLength'] }));
/** The options `new TruncatedGrad(step, opts)` takes (see `TruncatedGradSchema`). */
export type TruncatedGradOptions = z.input<typeof TruncatedGradSchema>;

/** FullGrad's options and their defaults. */
export const FullGradSchema = z.object({ lossType: z.enum(['avg', 'last']).default('avg') }).strict();
/** The options `new FullGrad(step, opts)` takes (see `FullGradSchema`). */
export type FullGradOptions = z.input<typeof FullGradSchema>;


/** Backpropagation through truncated unrolls (learned_optimization/outer_trainers/truncated_grad.py, `TruncatedGrad`). */
export class TruncatedGrad implements GradientEstimator<TruncatedUnrollState> {
  readonly unrollLength: number;
  readonly stepsPerJit: number;
  /** Accepted and ignored, as in the reference (quirk). */
  readonly lossType: string;

  constructor(readonly truncatedStep: TruncatedStep, opts: TruncatedGradOptions = {}) {
    const c = parseOptions(TruncatedGradSchema, opts, 'TruncatedGrad');
    this.unrollLength = c.unrollLength;
    this.stepsPerJit = c.stepsPerJit;
    this.lossType = c.lossType;
  }
  taskName(): string {
    return this.truncatedStep.taskName();
  }
  cfgName(): string {
    return 'default_cfg';
  }
  async initWorkerState(ww: WorkerWeights, key: PRNGKey): Promise<TruncatedUnrollState> {
    return this.truncatedStep.initStepState(ww.theta, ww.outerState, key, { thetaIsVector: false });
  }

  async computeGradientEstimate(ww: WorkerWeights, key: PRNGKey, state: TruncatedUnrollState, opts: { datasList?: PyTree[] } = {}): Promise<[GradientEstimatorOut<TruncatedUnrollState>, Metrics]> {
    const chunks = this.unrollLength / this.stepsPerJit;
    const datas = Array.from({ length: chunks }, (_, c) => (opts.datasList ? opts.datasList[c] : this.truncatedStep.getBatch(this.stepsPerJit)));
    let finalState: TruncatedUnrollState = state;
    let info: UnrollYs[] = [];
    const { value, grad } = valueAndGradTheta(ww.theta, (theta) => {
      let cur = state;
      const sums: tf.Tensor[] = [];
      const counts: tf.Tensor[] = [];
      info = [];
      for (let c = 0; c < chunks; c++) {
        const [, k2] = random.split(random.foldIn(key, c));
        const [next, ys] = truncatedUnroll(this.truncatedStep, this.stepsPerJit, false, theta, k2, cur, datas[c], ww.outerState, null, false);
        const [s, n] = maskedSums(ys.loss, hostMatrix(ys.mask));
        sums.push(s);
        counts.push(n);
        info.push(ys);
        cur = next;
      }
      keepTree(cur);
      finalState = cur;
      info.forEach((ys) => tf.keep(ys.loss));
      return tf.mean(tf.div(tf.addN(sums), tf.addN(counts))) as tf.Scalar;
    });
    if (!opts.datasList) datas.forEach((d) => disposeReplaced(d, {}));
    disposeReplaced(state, finalState);
    const loss = tf.concat(info.map((i) => i.loss), 0);
    info.forEach((i) => i.loss.dispose());
    return [
      {
        meanLoss: value,
        grad,
        unrollState: finalState,
        unrollInfo: { loss, iteration: info.flatMap((i) => i.iteration), isDone: info.flatMap((i) => i.isDone), taskParam: [] },
      },
      {},
    ];
  }
}

/** Backpropagation through whole trajectories (learned_optimization/outer_trainers/full_grad.py, `FullGrad`). */
export class FullGrad implements GradientEstimator<Record<string, never>> {
  readonly lossType: 'avg' | 'last';
  constructor(readonly truncatedStep: TruncatedStep, readonly truncationSchedule: TruncationSchedule, opts: FullGradOptions = {}) {
    assertNeverEnding(truncatedStep, 'FullGrad');
    this.lossType = parseOptions(FullGradSchema, opts, 'FullGrad').lossType;
  }
  taskName(): string {
    return this.truncatedStep.taskName();
  }
  cfgName(): string {
    return 'default_cfg';
  }
  async initWorkerState(): Promise<Record<string, never>> {
    return {};
  }

  async computeGradientEstimate(ww: WorkerWeights, key: PRNGKey): Promise<[GradientEstimatorOut<Record<string, never>>, Metrics]> {
    const length = this.truncationSchedule.init(key, ww.outerState).length ?? 1;
    const data = this.truncatedStep.getBatch(length);
    const [key1, key2] = random.split(key, 3);
    const { value, grad } = valueAndGradTheta(ww.theta, (theta) => {
      const s0 = this.truncatedStep.initStepState(theta, ww.outerState, key1, { numStepsOverride: length });
      const [, ys] = truncatedUnroll(this.truncatedStep, length, false, theta, key2, s0, data, ww.outerState, length, false);
      if (this.lossType === 'last') return tf.mean(ys.loss.slice([length - 1], [1])) as tf.Scalar;
      const [s, n] = maskedSums(ys.loss, hostMatrix(ys.mask));
      return tf.div(tf.sum(s), tf.sum(n)) as tf.Scalar;
    });
    disposeReplaced(data, {});
    return [{ meanLoss: value, grad, unrollState: {}, unrollInfo: null }, {}];
  }
}

registerPlugin({
  kind: 'gradient_estimator',
  name: 'TruncatedGrad',
  description: 'truncated backprop through unrollLength inner steps',
  schema: TruncatedGradSchema,
  create: (c, deps) => new TruncatedGrad(deps.truncatedStep, c),
  cls: TruncatedGrad,
});

registerPlugin({
  kind: 'gradient_estimator',
  name: 'FullGrad',
  description: 'backprop through a full-length unroll (exact gradient of the full objective)',
  schema: FullGradSchema,
  create: (c, deps) => new FullGrad(deps.truncatedStep, deps.truncationSchedule, c),
  traits: { fullUnroll: true },
  cls: FullGrad,
});
