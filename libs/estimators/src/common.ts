/**
 * Shared machinery of the gradient estimators (reference `outer_trainers/common.py`:
 * `sample_perturbations`, `vector_sample_perturbations`, `truncated_unroll`,
 * `maybe_stacked_es_unroll`): perturbations, K-step unrolls and the antithetic pair run on
 * identical data and keys.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, PRNGKey, PyTree, treeFlatten, treeUnflatten, treeLeaves } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import type { StepwiseData, TruncatedStep, TruncatedUnrollState } from './truncated_step';
import { concatStates, dataAt, sliceState, stateRows } from './unroll_state';
import { hostValues } from './host_ints';
import type { OuterState } from './truncation_schedule';

/** ε_i, θ+ε_i, θ−ε_i for N tasks, stacked on a leading axis: `[N, ...leaf]`. */
export function vectorSamplePerturbations(theta: Theta, key: PRNGKey, std: number, numSamples: number): { eps: Theta; posTheta: Theta; negTheta: Theta } {
  const keys = random.split(key, numSamples);
  const [leaves, def] = treeFlatten<tf.Tensor>(theta);
  const perSample = keys.map((k) => random.split(k, leaves.length));
  return tf.tidy(() => {
    const eps = leaves.map((l, j) => {
      const size = l.size;
      const buf = new Float32Array(size * numSamples);
      for (let i = 0; i < numSamples; i++) buf.set(random.normalArray(perSample[i][j], size), i * size);
      return tf.mul(tf.tensor(buf, [numSamples, ...l.shape]), std);
    });
    const pos = leaves.map((l, j) => tf.add(l, eps[j]));
    const neg = leaves.map((l, j) => tf.sub(l, eps[j]));
    return {
      eps: treeUnflatten(def, eps),
      posTheta: treeUnflatten(def, pos),
      negTheta: treeUnflatten(def, neg),
    } as any;
  }) as { eps: Theta; posTheta: Theta; negTheta: Theta };
}

/** Stacked per-step outputs of an unroll: `[T, N]` losses on the backend, counters on the host. */
export interface UnrollYs {
  loss: tf.Tensor; // [T, N]
  mask: Int32Array[]; // T x [N]
  isDone: Int32Array[];
  iteration: Int32Array[];
  taskParam: PyTree[]; // T x [N, ...]
}

function isStepwise(d: unknown): d is StepwiseData {
  return typeof d === 'object' && d !== null && typeof (d as StepwiseData).at === 'function' && typeof (d as StepwiseData).all === 'function';
}

/**
 * Run K unroll steps from `state` (not consumed), keys `split(key, K)`; `datas` has leaves
 * `[K, N, ...]`, or is a function giving step k's data (leaves `[N, ...]`, owned by the unroll),
 * or a StepwiseData. Where the step has `hostRun`, runs of steps without a reset go through it
 * (one native kernel per run); the other steps through `unrollStep`.
 */
export function truncatedUnroll(
  step: TruncatedStep,
  numSteps: number,
  thetaIsVector: boolean,
  theta: Theta,
  key: PRNGKey,
  state: TruncatedUnrollState,
  datas: PyTree | ((k: number) => PyTree) | StepwiseData,
  outerState: OuterState | null,
  overrideNumSteps: number | null = null,
  keepTaskParams = true,
): [TruncatedUnrollState, UnrollYs] {
  const keys = random.split(key, numSteps);
  let cur = state;
  const losses: tf.Tensor[] = [];
  const ys: UnrollYs = { loss: null as unknown as tf.Tensor, mask: [], isDone: [], iteration: [], taskParam: [] };
  const opts = { thetaIsVector, overrideNumSteps };
  const advance = (next: TruncatedUnrollState) => {
    if (cur !== state) disposeReplaced(cur, next);
    cur = next;
  };
  // host runs: while they apply (one that cannot run without a reset pending means none will);
  // they read the chunk's data at once (asked for once, only when a run goes ahead)
  let host = typeof step.hostRun === 'function' && typeof datas !== 'function';
  let whole: PyTree | undefined;
  const source: StepwiseData | null =
    datas === null || datas === undefined || typeof datas === 'function'
      ? null
      : isStepwise(datas)
        ? { at: (k) => datas.at(k), all: () => (whole ??= datas.all()) }
        : { at: (k) => dataAt(datas, k), all: () => datas };
  for (let k = 0; k < numSteps; ) {
    if (host) {
      const run = step.hostRun!(theta, cur, keys, source, k, outerState, opts, keepTaskParams);
      if (run) {
        advance(run.state);
        losses.push(run.loss);
        ys.mask.push(...run.mask);
        ys.isDone.push(...run.isDone);
        ys.iteration.push(...run.iteration);
        ys.taskParam.push(...run.taskParam);
        k += run.steps;
        continue;
      }
      host = hostValues(cur.isDone).some((d) => d !== 0);
    }
    const data = typeof datas === 'function' ? datas(k) : isStepwise(datas) ? datas.at(k) : dataAt(datas, k);
    const [next, out] = step.unrollStep(theta, cur, keys[k], data, outerState, opts);
    if (data) for (const l of treeLeaves<tf.Tensor>(data)) l.dispose();
    advance(next);
    losses.push(out.loss);
    ys.mask.push(out.mask);
    ys.isDone.push(out.isDone);
    ys.iteration.push(out.iteration);
    if (keepTaskParams) ys.taskParam.push(out.taskParam);
    else for (const l of treeLeaves<tf.Tensor>(out.taskParam)) l.dispose();
    k++;
  }
  // one step's loss is [N], a host run's [steps, N]
  ys.loss = tf.tidy(() => (losses.every((l) => l.rank === 1) ? tf.stack(losses) : tf.concat(losses.map((l) => (l.rank === 1 ? l.expandDims(0) : l)), 0)));
  losses.forEach((l) => l.dispose());
  if (whole !== undefined) disposeReplaced(whole, {});
  return [cur, ys];
}

/**
 * The antithetic pair on identical data and per-task keys. With `stack`, both branches run as one
 * 2N batch (one set of ops); otherwise two calls. Returns the new p/n states and both ys.
 */
export function maybeStackedEsUnroll(
  step: TruncatedStep,
  numSteps: number,
  stack: boolean,
  posTheta: Theta,
  negTheta: Theta,
  pState: TruncatedUnrollState,
  nState: TruncatedUnrollState,
  key: PRNGKey,
  datas: PyTree,
  outerState: OuterState | null,
  overrideNumSteps: number | null = null,
): { pState: TruncatedUnrollState; nState: TruncatedUnrollState; pYs: UnrollYs; nYs: UnrollYs } {
  if (!stack) {
    const [p, pYs] = truncatedUnroll(step, numSteps, true, posTheta, key, pState, datas, outerState, overrideNumSteps, true);
    const [n, nYs] = truncatedUnroll(step, numSteps, true, negTheta, key, nState, datas, outerState, overrideNumSteps, false);
    return { pState: p, nState: n, pYs, nYs };
  }
  const rows = stateRows(pState);
  const both = concatStates([pState, nState]);
  const theta = tf.tidy(() => {
    const [pl, def] = treeFlatten<tf.Tensor>(posTheta);
    const nl = treeLeaves<tf.Tensor>(negTheta);
    return treeUnflatten(def, pl.map((l, i) => tf.concat([l, nl[i]], 0))) as any;
  });
  const [out, ys] = truncatedUnroll(step, numSteps, true, theta, key, both, datas, outerState, overrideNumSteps, true);
  for (const l of treeLeaves<tf.Tensor>(theta)) l.dispose();
  const p = sliceState(out, 0, rows);
  const n = sliceState(out, rows, 2 * rows);
  disposeReplaced(out, {});
  disposeReplaced(both, {});
  const split = (y: UnrollYs, from: number, to: number, withParams: boolean): UnrollYs => ({
    loss: y.loss.slice([0, from], [-1, to - from]),
    mask: y.mask.map((m) => m.slice(from, to)),
    isDone: y.isDone.map((m) => m.slice(from, to)),
    iteration: y.iteration.map((m) => m.slice(from, to)),
    taskParam: withParams ? y.taskParam.map((tp) => tf.tidy(() => sliceTree(tp, from, to))) : [],
  });
  const pYs = split(ys, 0, rows, true);
  const nYs = split(ys, rows, 2 * rows, false);
  ys.loss.dispose();
  ys.taskParam.forEach((tp) => disposeReplaced(tp, {}));
  return { pState: p, nState: n, pYs, nYs };
}

function sliceTree(tree: PyTree, from: number, to: number): any {
  const [leaves, def] = treeFlatten<tf.Tensor>(tree);
  return treeUnflatten(def, leaves.map((l) => l.slice([from], [to - from])));
}

/** Concatenate chunk outputs along time. Consumes the chunks' loss tensors. */
export function concatYs(chunks: UnrollYs[]): UnrollYs {
  const loss = tf.concat(chunks.map((c) => c.loss), 0);
  chunks.forEach((c) => c.loss.dispose());
  return {
    loss,
    mask: chunks.flatMap((c) => c.mask),
    isDone: chunks.flatMap((c) => c.isDone),
    iteration: chunks.flatMap((c) => c.iteration),
    taskParam: chunks.flatMap((c) => c.taskParam),
  };
}

/** Frees the tensors an unroll's per-step outputs hold. */
export function disposeYs(ys: UnrollYs): void {
  ys.loss.dispose();
  ys.taskParam.forEach((tp) => disposeReplaced(tp, {}));
}

/** [T][N] host arrays as one Float32Array in row-major [T, N]. */
export function hostMatrix(rows: Int32Array[]): Float32Array {
  const t = rows.length;
  const n = t ? rows[0].length : 0;
  const out = new Float32Array(t * n);
  rows.forEach((r, i) => out.set(r, i * n));
  return out;
}
