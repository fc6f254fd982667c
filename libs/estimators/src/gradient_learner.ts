/**
 * Learners (reference `outer_trainers/gradient_learner.py`): the worker computation that averages
 * several estimators' meta-gradients (`gradient_worker_compute`), the central `GradientLearner`
 * that applies them with a meta-optimizer, and the `SingleMachineGradientLearner` that does both
 * in one process.
 *
 * State is donated: `update` and `gradientWorkerCompute` dispose the tensors of the state they
 * are given that the returned state no longer holds, so `state = await learner.update(state, ...)`
 * runs with a flat tensor count.
 */
import * as tf from '@tensorflow/tfjs';
import {
  random,
  PRNGKey,
  PyTree,
  treeMap,
  treeMapN,
  treeLeavesWithPath,
  treeLeaves,
  treeSize,
  aggregateMetricList,
  loadParams,
  readCheckpointDir,
  disposeReplaced,
} from '@lopt/core';
import type { LearnedOptimizer, Optimizer, OptState, Theta } from '@lopt/optimizers';
import type { GradientEstimator, WorkerWeights, Metrics } from './gradient_estimator';

/**
 * A file reader of @lopt/core, which its browser build does not have (it is undefined there): the
 * option that asked for it is named in a clear error instead of "is not a function".
 */
function nodeOnly<F>(fn: F | undefined, option: string): F {
  if (typeof fn !== 'function') throw new Error(`${option} reads files, which needs Node (@lopt/core in a browser has no file access)`);
  return fn;
}

/** The learner's state: the meta-optimizer's state over θ (learned_optimization/outer_trainers/gradient_learner.py, `GradientLearnerState`). */
export interface GradientLearnerState {
  thetaOptState: OptState;
}

/** What a worker sends back to the learner: host numbers for the loss, θ-shaped gradient tensors. */
export interface AggregatedGradient {
  thetaGrads: Theta;
  thetaModelState: PyTree | null;
  meanLoss: number;
}

/** What `gradientWorkerCompute` returns (learned_optimization/outer_trainers/gradient_learner.py, `WorkerComputeOut`). */
export interface WorkerComputeOut {
  toPut: AggregatedGradient;
  unrollStates: any[];
  metrics: Record<string, number | number[]>;
  /** One sampled step of each estimator's trajectory, on the host (task-param leaves flattened to Float32Array). */
  eventInfo: Array<{ loss: number[]; taskParam: PyTree; iteration: number[]; outerIteration: number }>;
  /**
   * What the clipping hid (lopt-ts's addition): the mean loss before a non-finite one became
   * `clipNanLossToValue`, and how many of the gradient's elements were non-finite (zeroed).
   */
  health: { rawMeanLoss: number; nonFiniteGradElements: number; gradElements: number };
}

/** Anything that makes an initial θ from a key. */
export interface MetaInit {
  init(key: PRNGKey): Theta;
}

/** Anything with `init(key) -> θ` can seed the learner; in practice the learned optimizer. */
export type MetaInitializer = MetaInit | LearnedOptimizer;

function outerIterationOf(state: OptState): number {
  const it = state.iteration;
  return it instanceof tf.Tensor ? Number(it.dataSync()[0]) : Number(it ?? 0);
}

/**
 * The learner state inside a checkpoint tree: `{thetaOptState}` (the distributed learner's
 * checkpoints) or `{learnerState: {thetaOptState}}` (a `lopt run` checkpoint).
 */
function thetaOptStateIn(tree: any, source: string): OptState {
  const st = tree?.thetaOptState ?? tree?.learnerState?.thetaOptState;
  if (!st || typeof st !== 'object') throw new Error(`${source} holds no learner state (thetaOptState)`);
  return st as OptState;
}

/** Options of `GradientLearner`: where to start θ and the meta-optimizer state from. */
export interface GradientLearnerOptions {
  /** θ from a `params_<n>` checkpoint directory or a tree file (reference: `init_theta_from_path`). */
  initThetaFromPath?: string | null;
  /** The meta-optimizer state from a `checkpoint_<n>` directory (reference: `init_outer_state_from_path`). */
  initOuterStateFromPath?: string | null;
  resetOuterIteration?: boolean;
  numSteps?: number | null;
  initSeed?: number | null;
}

/** The central learner: applies workers' meta-gradients to θ with the meta-optimizer (learned_optimization/outer_trainers/gradient_learner.py, `GradientLearner`). */
export class GradientLearner {
  constructor(
    readonly metaInit: MetaInitializer,
    readonly thetaOpt: Optimizer,
    readonly opts: GradientLearnerOptions = {},
  ) {}

  async init(key: PRNGKey): Promise<GradientLearnerState> {
    if (this.opts.initSeed !== undefined && this.opts.initSeed !== null) key = random.PRNGKey(this.opts.initSeed);
    let theta = this.metaInit.init(key);
    if (this.opts.initThetaFromPath) {
      const { theta: loaded } = await nodeOnly(loadParams, 'initThetaFromPath')(this.opts.initThetaFromPath);
      assertSameTree(theta, loaded, this.opts.initThetaFromPath);
      disposeReplaced(theta, {});
      theta = loaded;
    }
    let thetaOptState = this.thetaOpt.init(theta, { numSteps: this.opts.numSteps ?? null });
    // The optimizer's state holds its own copy of θ (optax-style init clones): the drawn θ is ours to free.
    disposeReplaced(theta, thetaOptState);
    if (this.opts.initOuterStateFromPath) {
      const { tree } = await nodeOnly(readCheckpointDir, 'initOuterStateFromPath')(this.opts.initOuterStateFromPath);
      const loaded = thetaOptStateIn(tree, this.opts.initOuterStateFromPath);
      assertSameTree(thetaOptState, loaded, this.opts.initOuterStateFromPath);
      disposeReplaced(thetaOptState, {});
      disposeReplaced(tree, loaded);
      thetaOptState = loaded;
      if (this.opts.resetOuterIteration) {
        const it = thetaOptState.iteration;
        thetaOptState = { ...thetaOptState, iteration: it instanceof tf.Tensor ? tf.zerosLike(it) : 0 };
        if (it instanceof tf.Tensor) it.dispose();
      }
    }
    return { thetaOptState };
  }

  getMetaParams(state: GradientLearnerState): Theta {
    return this.thetaOpt.getParams(state.thetaOptState);
  }

  getMetaModelState(state: GradientLearnerState): PyTree | null {
    return this.thetaOpt.getState(state.thetaOptState) ?? null;
  }

  /** θ, its model state and the outer iteration (the meta-optimizer's step counter). Shares θ with `state`. */
  getStateForWorker(state: GradientLearnerState): WorkerWeights {
    return {
      theta: this.getMetaParams(state),
      thetaModelState: this.getMetaModelState(state),
      outerState: { outerIteration: outerIterationOf(state.thetaOptState) },
    };
  }

  /**
   * Unweighted mean of the workers' gradients, one meta-optimizer step. Donates `state` and the
   * gradients in `gradsList`.
   */
  async update(
    state: GradientLearnerState,
    gradsList: AggregatedGradient[],
    opts: { key?: PRNGKey; withMetrics?: boolean } = {},
  ): Promise<[GradientLearnerState, Record<string, number>]> {
    if (gradsList.length === 0) throw new Error('GradientLearner.update needs at least one gradient');
    const key = opts.key ?? random.PRNGKey(0);
    const [key1] = random.split(key);
    const losses = gradsList.map((g) => g.meanLoss);
    const meanLoss = losses.reduce((a, b) => a + b, 0) / losses.length;
    const minLoss = Math.min(...losses);
    const grads = tf.tidy(() =>
      treeMapN((...gs: tf.Tensor[]) => tf.div(tf.addN(gs), gs.length), ...gradsList.map((g) => g.thetaGrads)),
    );
    const metrics: Record<string, number> = {
      'none||mean_loss': meanLoss,
      'none||best_of_mean_loss': minLoss,
    };
    if (opts.withMetrics) {
      const [sq, abs] = tf.tidy(() => {
        const leaves = treeLeaves<tf.Tensor>(grads);
        return [tf.addN(leaves.map((l) => tf.sum(tf.square(l)))), tf.addN(leaves.map((l) => tf.sum(tf.abs(l))))];
      });
      const [sqv, absv] = [(await sq.data())[0], (await abs.data())[0]];
      sq.dispose();
      abs.dispose();
      metrics['none||theta_grad_norm'] = Math.sqrt(sqv);
      metrics['none||theta_grad_abs_mean'] = absv / treeSize(grads);
    }
    const thetaOptState = this.thetaOpt.update(state.thetaOptState, grads, { loss: meanLoss, key: key1 });
    const next = { thetaOptState };
    disposeReplaced(grads, next);
    for (const g of gradsList) disposeReplaced(g.thetaGrads, next);
    disposeReplaced(state, next);
    return [next, metrics];
  }
}

function assertSameTree(expected: PyTree, got: PyTree, path: string): void {
  // compared as sorted (path, shape) lists: key order of a loaded tree may differ
  const shapes = (t: PyTree) =>
    JSON.stringify(treeLeavesWithPath<unknown>(t).map(([p, l]) => [p, l instanceof tf.Tensor ? l.shape : typeof l]));
  if (shapes(expected) !== shapes(got)) {
    throw new Error(`checkpoint ${path} does not match this learner: expected ${shapes(expected)}, found ${shapes(got)}`);
  }
}

/** Options of `gradientWorkerCompute` (key, metrics, NaN-loss clipping). */
export interface WorkerComputeOptions {
  key: PRNGKey;
  withMetrics?: boolean;
  clipNanLossToValue?: number | null;
  extraMetrics?: boolean;
  /**
   * Start every estimator before awaiting the first (results are still taken in order, with the
   * same keys, so the values are those of the sequential loop). For estimators that await other
   * threads (ThreadedPES): one estimator's main-thread work (data, perturbations, PES arithmetic)
   * overlaps another's unroll in the worker threads. Per-estimator times then overlap.
   */
  concurrent?: boolean;
}

/**
 * Runs every estimator once, averages their gradients (equal weight per estimator), zeroes
 * non-finite gradient elements and maps a non-finite loss to `clipNanLossToValue` (20), counting
 * both in the metrics. Donates `unrollStates`. All values are read back in one transfer.
 */
export async function gradientWorkerCompute(
  workerWeights: WorkerWeights,
  gradientEstimators: GradientEstimator[],
  unrollStates: any[],
  opts: WorkerComputeOptions,
): Promise<WorkerComputeOut> {
  if (gradientEstimators.length !== unrollStates.length) {
    throw new Error(`gradientWorkerCompute: ${gradientEstimators.length} estimators but ${unrollStates.length} unroll states`);
  }
  const withMetrics = opts.withMetrics ?? false;
  const clipNan = opts.clipNanLossToValue === undefined ? 20 : opts.clipNanLossToValue;
  const extra = opts.extraMetrics ?? true;
  let key = opts.key;
  const newStates: any[] = [];
  const lossTensors: tf.Tensor[] = [];
  const grads: Theta[] = [];
  const perEstimator: Array<{ metrics: Metrics; family: string; cfg: string; time: number }> = [];
  const eventPicks: Array<{ loss: tf.Tensor; taskParam: PyTree; iteration: number[] }> = [];

  const rngs: PRNGKey[] = [];
  for (let i = 0; i < gradientEstimators.length; i++) {
    const [k, rng] = random.split(key);
    key = k;
    rngs.push(rng);
  }
  const start = (i: number) => {
    const t0 = performance.now();
    return gradientEstimators[i]
      .computeGradientEstimate(workerWeights, rngs[i], unrollStates[i], { withSummary: withMetrics })
      .then((r) => ({ r, time: (performance.now() - t0) / 1000 }));
  };
  // Off-thread estimators first: an estimator computed in this thread runs synchronously up to its
  // end once started, and should overlap with them rather than delay them. Each estimator has its
  // own key and state, so the start order does not change any value.
  let started: Array<ReturnType<typeof start>> | null = null;
  if (opts.concurrent) {
    started = new Array(gradientEstimators.length);
    const order = gradientEstimators.map((_, i) => i).sort((a, b) => Number(!!gradientEstimators[b].runsOffThread) - Number(!!gradientEstimators[a].runsOffThread));
    for (const i of order) started[i] = start(i);
    started.forEach((p) => p.catch(() => undefined)); // a failure is reported by the await below
  }

  for (let i = 0; i < gradientEstimators.length; i++) {
    const est = gradientEstimators[i];
    const rng = rngs[i];
    const { r, time } = await (started ? started[i] : start(i));
    const [out, m] = r;
    newStates.push(out.unrollState);
    lossTensors.push(out.meanLoss);
    grads.push(out.grad);
    if (out.unrollInfo) {
      const info = out.unrollInfo;
      const t = info.iteration.length;
      const idx = random.randintArray(random.foldIn(rng, 7), 1, 0, Math.max(1, t))[0];
      eventPicks.push({
        loss: tf.tidy(() => info.loss.slice([idx], [1]).reshape([-1])),
        taskParam: info.taskParam[idx] ?? null,
        iteration: Array.from(info.iteration[idx] ?? []),
      });
      info.loss.dispose();
      info.taskParam.forEach((tp, j) => {
        if (j !== idx) disposeReplaced(tp, {});
      });
    }
    perEstimator.push({ metrics: m, family: est.taskName(), cfg: est.cfgName(), time });
  }

  // Average, clean, and read every scalar back at once.
  const blockStart = performance.now();
  const { thetaGrads, scalars } = tf.tidy(() => {
    const sum = treeMapN((...gs: tf.Tensor[]) => tf.div(tf.addN(gs), gs.length), ...grads);
    const leaves = treeLeaves<tf.Tensor>(sum);
    const nonFinite = tf.addN(leaves.map((l) => tf.sum(tf.logicalNot(tf.isFinite(l)).asType('float32'))));
    const clean = treeMap((l: tf.Tensor) => tf.where(tf.isFinite(l), l, tf.zerosLike(l)), sum);
    const parts: tf.Tensor[] = [tf.stack(lossTensors.map((l) => l.reshape([]))), nonFinite.reshape([1])];
    if (withMetrics) {
      grads.forEach((g) => {
        const gl = treeLeaves<tf.Tensor>(g);
        const size = gl.reduce((n, l) => n + l.size, 0);
        parts.push(tf.addN(gl.map((l) => tf.sum(tf.abs(l)))).div(size).reshape([1]));
        parts.push(tf.sqrt(tf.addN(gl.map((l) => tf.sum(tf.square(l))))).reshape([1]));
      });
    }
    eventPicks.forEach((e) => {
      parts.push(e.loss.asType('float32'));
      for (const l of treeLeaves<tf.Tensor>(e.taskParam)) parts.push(l.reshape([-1]).asType('float32'));
    });
    return { thetaGrads: clean, scalars: tf.concat(parts) };
  });
  const values = await scalars.data();
  scalars.dispose();
  const blockTime = (performance.now() - blockStart) / 1000;
  grads.forEach((g) => disposeReplaced(g, {}));
  lossTensors.forEach((l) => l.dispose());

  let at = 0;
  const estLosses = Array.from(values.slice(0, gradientEstimators.length));
  at += gradientEstimators.length;
  const nonFiniteGrads = values[at++];
  const gradStats: Array<[number, number]> = [];
  if (withMetrics) for (let i = 0; i < grads.length; i++) gradStats.push([values[at++], values[at++]]);
  const eventInfo: WorkerComputeOut['eventInfo'] = eventPicks.map((e) => {
    const n = e.loss.size;
    const loss = Array.from(values.slice(at, at + n));
    at += n;
    e.loss.dispose();
    const taskParam = treeMap((l: tf.Tensor) => {
      const host = values.slice(at, at + l.size);
      at += l.size;
      l.dispose();
      return host;
    }, e.taskParam);
    return { loss, taskParam, iteration: e.iteration, outerIteration: workerWeights.outerState.outerIteration };
  });

  let meanLoss = estLosses.reduce((a, b) => a + b, 0) / estLosses.length;
  const rawMeanLoss = meanLoss;
  const nonFiniteLoss = Number.isFinite(meanLoss) ? 0 : 1;
  if (clipNan && !Number.isFinite(meanLoss)) meanLoss = clipNan;

  const metricDicts: Array<Record<string, any>> = [];
  perEstimator.forEach((pe, i) => {
    const d: Record<string, any> = {};
    if (extra) {
      if (withMetrics) {
        for (const [k, v] of Object.entries(pe.metrics)) {
          const [agg, name] = k.split('||');
          const val = v instanceof tf.Tensor ? Array.from(v.dataSync()) : v;
          d[`${agg}||${pe.family}/${name}`] = val;
          d[`${agg}||${pe.cfg}/${name}`] = val;
        }
        d[`mean||${pe.family}/grad_mean_abs`] = gradStats[i][0];
        d[`mean||${pe.family}/grad_norm`] = gradStats[i][1];
        d[`mean||${pe.cfg}/grad_mean_abs`] = gradStats[i][0];
        d[`mean||${pe.cfg}/grad_norm`] = gradStats[i][1];
      }
      d[`mean||${pe.family}/mean_loss`] = estLosses[i];
      d[`mean||${pe.cfg}/mean_loss`] = estLosses[i];
      d[`sample||${pe.family}/time`] = pe.time;
      d[`sample||${pe.cfg}/time`] = pe.time;
    }
    for (const v of Object.values(pe.metrics)) if (v instanceof tf.Tensor) v.dispose();
    metricDicts.push(d);
  });
  const metrics = aggregateMetricList(metricDicts, { key: random.foldIn(opts.key, 1) }) as Record<string, number | number[]>;
  metrics['mean||block_time'] = blockTime;
  metrics['mean||nonfinite_grad_elements'] = nonFiniteGrads;
  metrics['mean||nonfinite_loss'] = nonFiniteLoss;

  return {
    toPut: { thetaGrads, thetaModelState: workerWeights.thetaModelState, meanLoss },
    unrollStates: newStates,
    metrics,
    eventInfo,
    health: { rawMeanLoss, nonFiniteGradElements: nonFiniteGrads, gradElements: treeSize(thetaGrads) },
  };
}

/** The single-machine learner's state: the learner's and every estimator's (learned_optimization/outer_trainers/gradient_learner.py, `SingleMachineState`). */
export interface SingleMachineState {
  gradientLearnerState: GradientLearnerState;
  gradientEstimatorStates: any[];
}

/** A learner and its estimators in one process (learned_optimization/outer_trainers/gradient_learner.py, `SingleMachineGradientLearner`). */
export class SingleMachineGradientLearner {
  readonly gradientLearner: GradientLearner;

  constructor(
    readonly metaInit: MetaInitializer,
    readonly gradientEstimators: GradientEstimator[],
    readonly thetaOpt: Optimizer,
    opts: { numSteps?: number | null } = {},
  ) {
    this.gradientLearner = new GradientLearner(metaInit, thetaOpt, { numSteps: opts.numSteps ?? null });
  }

  async init(key: PRNGKey): Promise<SingleMachineState> {
    const [key1, key2] = random.split(key);
    const gradientLearnerState = await this.gradientLearner.init(key1);
    const workerWeights = this.gradientLearner.getStateForWorker(gradientLearnerState);
    const keys = random.split(key2, this.gradientEstimators.length);
    const gradientEstimatorStates = [];
    for (let i = 0; i < this.gradientEstimators.length; i++) {
      gradientEstimatorStates.push(await this.gradientEstimators[i].initWorkerState(workerWeights, keys[i]));
    }
    return { gradientLearnerState, gradientEstimatorStates };
  }

  /** One outer step; `loss` is the mean meta-loss of the θ *before* the update. Donates `state`. */
  async update(
    state: SingleMachineState,
    key: PRNGKey,
    opts: { withMetrics?: boolean } = {},
  ): Promise<[SingleMachineState, number, Record<string, number | number[]>]> {
    const [key1, key2] = random.split(key);
    const workerWeights = this.gradientLearner.getStateForWorker(state.gradientLearnerState);
    const out = await gradientWorkerCompute(workerWeights, this.gradientEstimators, state.gradientEstimatorStates, {
      key: key1,
      withMetrics: opts.withMetrics ?? false,
    });
    const [gradientLearnerState, learnerMetrics] = await this.gradientLearner.update(state.gradientLearnerState, [out.toPut], {
      key: key2,
      withMetrics: opts.withMetrics ?? false,
    });
    return [
      { gradientLearnerState, gradientEstimatorStates: out.unrollStates },
      out.toPut.meanLoss,
      { ...out.metrics, ...learnerMetrics },
    ];
  }

  getMetaParams(state: SingleMachineState): Theta {
    return this.gradientLearner.getMetaParams(state.gradientLearnerState);
  }
}
