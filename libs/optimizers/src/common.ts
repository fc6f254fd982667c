/**
 * Shared pieces written once: hyper-parameter values that may be per task, momentum / RMS /
 * Adafactor-style accumulators (reference `learned_optimizers/common.py`: `vec_rolling_mom`,
 * `vec_rolling_rms`, `vec_factored_rolling`), second-moment normalisation, value clipping, the tanh
 * step embedding, haiku's Linear and LSTM step on stacked rows, and small pytree helpers.
 *
 * Batched convention: in the `*Batch` methods every params leaf has a leading task axis N; a
 * hyper-parameter is then a number, a scalar tensor or an `[N]` tensor (one value per task, from a
 * `thetaIsVector` learned optimizer) that `bcast` reshapes to `[N, 1, ..., 1]`.
 */
import * as tf from '@tensorflow/tfjs';
import { treeFlatten, treeMap, treeUnflatten, type PyTree } from '@lopt/core';
import type { Linear } from './per_param_mlp';

/** A hyper-parameter evaluated lazily inside the optimizer's `tf.tidy` (learnable optimizers use it
 * so that `exp(theta.log_lr)` & co. are neither leaked nor computed outside the update). */
export class LazyHyper {
  constructor(readonly fn: () => tf.Tensor) {}
}

/** A hyper-parameter: a number, a tensor (`[]`, or `[N]` per task in the batched form), or lazy. */
export type Hyper = number | tf.Tensor | LazyHyper;

/** A hyper-parameter's value now (a lazy one is evaluated). */
export function resolveHyper(h: Hyper): number | tf.Tensor {
  return h instanceof LazyHyper ? h.fn() : h;
}

/** Whether the update works on one task or on N stacked tasks. */
export interface BatchCtx {
  batched: boolean;
}

/**
 * Shape a resolved hyper-parameter so that it broadcasts against a leaf of rank `rank`.
 * `[N]` tensors are only allowed in the batched form and become `[N, 1, ..., 1]`;
 * `[N, k]` tensors (per-task vectors, e.g. learnable decays) become `[N, 1, ..., 1, k]`.
 */
export function bcast(h: number | tf.Tensor, rank: number, ctx: BatchCtx, trailing = 0): number | tf.Tensor {
  if (typeof h === 'number' || h.rank === trailing) return h;
  if (!ctx.batched) {
    throw new Error(
      `per-task hyper-parameter of shape [${h.shape}] in a single-task update; use initBatch/updateBatch ` +
        '(thetaIsVector optimizers work on stacked tasks only)',
    );
  }
  if (h.rank !== trailing + 1) throw new Error(`hyper-parameter of shape [${h.shape}]: expected [N] or scalar`);
  const shape = [h.shape[0], ...new Array(rank - 1 - trailing).fill(1), ...h.shape.slice(1)];
  return h.reshape(shape);
}

/** Leading task axis of a batched params tree. */
export function numTasks(params: PyTree): number {
  const [leaves] = treeFlatten<tf.Tensor>(params);
  if (leaves.length === 0) throw new Error('batched params tree has no leaves (cannot find the task axis N)');
  if (leaves[0].rank === 0) throw new Error('batched params leaves need a leading task axis N');
  return leaves[0].shape[0];
}

/** A fresh int32 counter: `[]` for one task, `[N]` batched (or `[...extra]` / `[N, ...extra]`). */
export function zerosCounter(ctx: BatchCtx, n: number, extra: number[] = []): tf.Tensor {
  return tf.zeros(ctx.batched ? [n, ...extra] : extra, 'int32');
}

/** Copy every tensor leaf (cheap: data is shared and ref-counted) so a state never aliases its inputs. */
export function treeClone<T extends PyTree>(tree: T): T {
  if (tree === undefined) return null as unknown as T;
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.clone(x) : x), tree) as T;
}

/** Expand (axis 0) every tensor leaf: one task as a stack of one. */
export function treeExpand(tree: PyTree): any {
  return treeMap((x: tf.Tensor) => tf.expandDims(x, 0), tree);
}
/** Squeeze the leading task axis (of size 1) off every tensor leaf. */
export function treeSqueeze(tree: PyTree): any {
  return treeMap((x: tf.Tensor) => tf.squeeze(x, [0]), tree);
}

/** A number or tensor as a float32 tensor (numbers become scalars). */
export function toFloatTensor(x: number | tf.Tensor): tf.Tensor {
  return typeof x === 'number' ? tf.scalar(x) : x.dtype === 'float32' ? x : x.toFloat();
}

// ------------------------------------------------------------------------------------------------
// Element-wise pieces.

/** `clip(g, -c, c)` on every leaf (GradientClipOptimizer). */
export function clipTree(tree: PyTree, c: number): PyTree {
  return treeMap((x: tf.Tensor) => tf.clipByValue(x, -c, c), tree);
}

/** `x · rsqrt(eps + mean(x², axes, keepdims))` — per-channel second-moment normalisation. */
export function secondMomentNormalize(x: tf.Tensor, axes: number[], eps = 1e-5): tf.Tensor {
  return tf.mul(x, tf.rsqrt(tf.add(eps, tf.mean(tf.square(x), axes, true))));
}

/** `rsqrt(max(x, 1e-9))` (common.safe_rsqrt). */
export function safeRsqrt(x: tf.Tensor): tf.Tensor {
  return tf.rsqrt(tf.maximum(x, 1e-9));
}

/** The time scales of the tanh step-count features (learned_optimization/learned_optimizers/common.py / adafac_mlp_lopt.py, `_tanh_embedding`). */
export const TIME_SCALES = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000];

/** `tanh(n / τ − 1)` for the 11 time scales: `[]` -> `[11]`, `[N]` -> `[N, 11]`. */
export function tanhEmbedding(iteration: tf.Tensor): tf.Tensor {
  const n = tf.expandDims(toFloatTensor(iteration), -1);
  return tf.tanh(tf.sub(tf.div(n, tf.tensor1d(TIME_SCALES)), 1));
}

/**
 * `hk.Linear` on rows `x [N, R, in]` of N stacked tasks: shared `w [in, out]`, `b [out]` (one 2-D
 * matMul over all N·R rows), or per task `w [N, in, out]`, `b [N, out]` (thetaIsVector).
 */
export function linear(x: tf.Tensor, l: Linear, perTask: boolean): tf.Tensor {
  if (perTask) return tf.add(tf.matMul(x, l.w), tf.expandDims(l.b, 1));
  const [N, R, In] = x.shape as number[];
  return tf.reshape(tf.add(tf.matMul(tf.reshape(x, [N * R, In]), l.w), l.b), [N, R, -1]);
}

/**
 * One step of haiku's `hk.LSTM` on rows `x [N, R, in]` with state `prev` (`[N, R, H]` each): gates
 * i, g, f, o from one Linear on `[x, h]`; forget bias +1.
 * ```
 * c' = σ(f + 1)·c + σ(i)·tanh(g)      h' = σ(o)·tanh(c')
 * ```
 */
export function lstmStep(x: tf.Tensor, prev: { hidden: tf.Tensor; cell: tf.Tensor }, l: Linear, perTask: boolean): { hidden: tf.Tensor; cell: tf.Tensor } {
  const [N, R, H] = prev.hidden.shape as number[];
  const gated = linear(tf.concat([x, prev.hidden], 2), l, perTask);
  // slices, not tf.split / tf.unstack: their gradients fail when only some outputs reach the loss
  // (e.g. a leaf whose update does not reach the meta-loss)
  const [gi, gg, gf, go] = [0, 1, 2, 3].map((j) => tf.slice(gated, [0, 0, j * H], [N, R, H]));
  const cell = tf.add(tf.mul(tf.sigmoid(tf.add(gf, 1)), prev.cell), tf.mul(tf.sigmoid(gi), tf.tanh(gg)));
  const hidden = tf.mul(tf.sigmoid(go), tf.tanh(cell));
  return { hidden, cell };
}

// ------------------------------------------------------------------------------------------------
// Accumulators over several decays at once (decay axis last), as common.vec_rolling_mom/rms.

/** Momentum accumulators for several decays at once (learned_optimization/learned_optimizers/common.py, `vec_rolling_mom`). */
export interface MomAccumulator {
  /** per leaf: `leaf.shape + [k]` */
  m: PyTree;
  /** `[k]` int32 (batched `[N, k]`) */
  t: tf.Tensor;
}
/** Second-moment accumulators for several decays at once (learned_optimization/learned_optimizers/common.py, `vec_rolling_rms`). */
export interface RMSAccumulator {
  rms: PyTree;
  t: tf.Tensor;
}

function decaysFor(decays: tf.Tensor, leafRank: number, ctx: BatchCtx): tf.Tensor {
  // decays: [k] shared, or [N, k] per task; the accumulator leaf has rank leafRank + 1.
  return bcast(decays, leafRank + 1, ctx, 1) as tf.Tensor;
}

function initAccum(params: PyTree, k: number, ctx: BatchCtx): { acc: PyTree; t: tf.Tensor } {
  const acc = treeMap((p: tf.Tensor) => tf.zeros([...p.shape, k]), params);
  const n = ctx.batched ? numTasks(params) : 0;
  return { acc, t: zerosCounter(ctx, n, [k]) };
}

/**
 * `β m + (1 − β) g` for shared decays `[k]` as two plain matMuls, `m[:, k] · diag(β)` and the outer
 * product `g ⊗ (1 − β)`: bit-identical to the broadcast form (each output is one product plus
 * zeros), but on wasm a broadcast multiply against `[k]` is a slow generic loop (~6x a same-shape
 * multiply) while these are XNNPACK calls: 1.09 -> 0.30 ms for a [4, 64, 32, 6] accumulator.
 */
/** `a @ b` for rank-3 operands: the BatchMatMul kernel directly (tf.matMul adds reshapes around it). */
export function batchMatMul3(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel('BatchMatMul', { a, b }, { transposeA: false, transposeB: false }) as tf.Tensor;
}

function rollingMomMatMul(m: tf.Tensor, g: tf.Tensor, diag3: tf.Tensor, mix3: tf.Tensor, k: number): tf.Tensor {
  const mm = batchMatMul3;
  const scaled = mm(tf.reshape(m, [1, -1, k]), diag3);
  const fresh = mm(tf.reshape(g, [1, -1, 1]), mix3);
  return tf.reshape(tf.add(scaled, fresh), m.shape);
}

/** `count + 1` keeping an int32 counter int32 (`tf.add(int32, 1)` would upcast it to float32). */
export function incCounter(count: tf.Tensor): tf.Tensor {
  return tf.add(count, tf.scalar(1, 'int32'));
}

/** `m ← β m + (1 − β) g` for every decay β (no bias correction), `t += 1`. */
export const vecRollingMom = {
  init(params: PyTree, k: number, ctx: BatchCtx): MomAccumulator {
    const { acc, t } = initAccum(params, k, ctx);
    return { m: acc, t };
  },
  update(state: MomAccumulator, grad: PyTree, decays: tf.Tensor, ctx: BatchCtx): MomAccumulator {
    const [ms, def] = treeFlatten<tf.Tensor>(state.m);
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const k = decays.shape[decays.rank - 1];
    const viaMatMul = decays.rank === 1 && tf.getBackend() === 'wasm';
    // diag(β) [1, k, k] and (1 − β) [1, 1, k], once for all leaves
    const diag3 = viaMatMul ? tf.reshape(tf.diag(decays), [1, k, k]) : null;
    const mix3 = viaMatMul ? tf.reshape(tf.sub(1, decays), [1, 1, k]) : null;
    const out = ms.map((m, i) => {
      if (viaMatMul) return rollingMomMatMul(m, gs[i], diag3!, mix3!, k);
      const d = decaysFor(decays, gs[i].rank, ctx);
      return tf.add(tf.mul(d, m), tf.mul(tf.sub(1, d), tf.expandDims(gs[i], -1)));
    });
    return { m: treeUnflatten(def, out), t: incCounter(state.t) };
  },
};

/** `v ← clip(β,0,1) v + (1 − clip(β,0,1)) g²` for every decay β, `t += 1`. */
export const vecRollingRms = {
  init(params: PyTree, k: number, ctx: BatchCtx): RMSAccumulator {
    const { acc, t } = initAccum(params, k, ctx);
    return { rms: acc, t };
  },
  update(state: RMSAccumulator, grad: PyTree, decays: tf.Tensor, ctx: BatchCtx): RMSAccumulator {
    const [vs, def] = treeFlatten<tf.Tensor>(state.rms);
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const out = vs.map((v, i) => {
      const d = tf.clipByValue(decaysFor(decays, gs[i].rank, ctx), 0, 1);
      return tf.add(tf.mul(d, v), tf.mul(tf.sub(1, d), tf.expandDims(tf.square(gs[i]), -1)));
    });
    return { rms: treeUnflatten(def, out), t: incCounter(state.t) };
  },
};

/** Adafactor-style accumulators (common.FactoredAccum), decay axis last. */
export interface FactoredAccum {
  vCol: PyTree;
  vRow: PyTree;
  vDiag: PyTree;
}

/**
 * `factored_dims(shape)`: `null` for rank < 2, else `[d1, d0]` = the axes of the second-largest and
 * largest dimension (stable order on ties, like numpy's argsort on short arrays).
 */
export function factoredDims(shape: number[]): [number, number] | null {
  if (shape.length < 2) return null;
  const order = shape.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[1]);
  return [order[order.length - 2], order[order.length - 1]];
}

function without(shape: number[], axis: number): number[] {
  return shape.filter((_, i) => i !== axis);
}

/** Adafactor-style factored second moments for several decays at once (learned_optimization/learned_optimizers/common.py, `vec_factored_rolling`). */
export const vecFactoredRolling = {
  init(params: PyTree, k: number, ctx: BatchCtx): FactoredAccum {
    const [leaves, def] = treeFlatten<tf.Tensor>(params);
    const lead = ctx.batched ? 1 : 0;
    const rows: tf.Tensor[] = [];
    const cols: tf.Tensor[] = [];
    const diags: tf.Tensor[] = [];
    for (const p of leaves) {
      const pre = p.shape.slice(0, lead);
      const s = p.shape.slice(lead);
      const f = factoredDims(s);
      if (f) {
        const [d1, d0] = f;
        rows.push(tf.zeros([...pre, ...without(s, d0), k]));
        cols.push(tf.zeros([...pre, ...without(s, d1), k]));
        diags.push(tf.zeros([...pre, 0, k]));
      } else {
        rows.push(tf.zeros([...pre, 0, k]));
        cols.push(tf.zeros([...pre, 0, k]));
        diags.push(tf.zeros([...pre, ...s, k]));
      }
    }
    return { vRow: treeUnflatten(def, rows), vCol: treeUnflatten(def, cols), vDiag: treeUnflatten(def, diags) };
  },
  /**
   * Returns the new accumulators and the preconditioned gradient `fac_g` (`leaf.shape + [k]`), or
   * null for it with `withFacG` false (a caller that computes it later, e.g. in a native kernel,
   * from the factors: `facGrad`).
   */
  update(state: FactoredAccum, grad: PyTree, decays: tf.Tensor, ctx: BatchCtx, epsilon = 1e-30, withFacG = true): [FactoredAccum, PyTree | null] {
    const [gs, def] = treeFlatten<tf.Tensor>(grad);
    const rows = treeFlatten<tf.Tensor>(state.vRow)[0];
    const cols = treeFlatten<tf.Tensor>(state.vCol)[0];
    const diags = treeFlatten<tf.Tensor>(state.vDiag)[0];
    const lead = ctx.batched ? 1 : 0;
    const nr: tf.Tensor[] = [];
    const nc: tf.Tensor[] = [];
    const nd: tf.Tensor[] = [];
    const ys: tf.Tensor[] = [];
    gs.forEach((g, i) => {
      const s = g.shape.slice(lead);
      const decay = tf.clipByValue(decaysFor(decays, g.rank, ctx), 0, 1); // broadcasts vs [..., k]
      const mixing = tf.sub(1, decay);
      const gsq = tf.add(tf.square(g), epsilon);
      const f = factoredDims(s);
      if (f) {
        const [d1, d0] = f;
        // The row / col accumulators have rank g.rank (one axis reduced, decay axis added).
        const dRed = decaysFor(decays, g.rank - 1, ctx);
        const decayR = tf.clipByValue(dRed, 0, 1);
        const mixR = tf.sub(1, decayR);
        const newRow = tf.add(tf.mul(decayR, rows[i]), tf.mul(mixR, tf.expandDims(tf.mean(gsq, d0 + lead), -1)));
        const newCol = tf.add(tf.mul(decayR, cols[i]), tf.mul(mixR, tf.expandDims(tf.mean(gsq, d1 + lead), -1)));
        if (withFacG) ys.push(facGrad(g, { ...factoredFactors(newRow, newCol, d0, d1, lead), d0, d1 }, null, lead));
        nr.push(newRow);
        nc.push(newCol);
        nd.push(tf.clone(diags[i]));
      } else {
        const newV = tf.add(tf.mul(decay, diags[i]), tf.mul(mixing, tf.expandDims(gsq, -1)));
        if (withFacG) ys.push(facGrad(g, null, newV, lead));
        nr.push(tf.clone(rows[i]));
        nc.push(tf.clone(cols[i]));
        nd.push(newV);
      }
    });
    return [
      { vRow: treeUnflatten(def, nr), vCol: treeUnflatten(def, nc), vDiag: treeUnflatten(def, nd) },
      withFacG ? treeUnflatten(def, ys) : null,
    ];
  },
};

/**
 * The Adafactor row and column factors of a factored leaf's accumulators (`vec_factored_rolling`):
 * `safe_rsqrt(row / (mean of row over the leaf's axis d1 + 1e-9))` and `safe_rsqrt(col)`, the
 * shapes of `row` (the leaf without axis d0, decay axis last) and `col` (without d1); `lead`: 1
 * with a leading task axis.
 */
export function factoredFactors(row: tf.Tensor, col: tf.Tensor, d0: number, d1: number, lead: number): { rowFactor: tf.Tensor; colFactor: tf.Tensor } {
  const reducedD1 = d1 > d0 ? d1 - 1 : d1;
  const rowColMean = tf.mean(row, reducedD1 + lead, true);
  return { rowFactor: safeRsqrt(tf.div(row, tf.add(rowColMean, 1e-9))), colFactor: safeRsqrt(col) };
}

/**
 * The preconditioned gradient `fac_g` of one leaf `g` (`vec_factored_rolling`), `g.shape + [k]`:
 * `g · rowFactor · colFactor` (each broadcast along the axis it lacks) for a factored leaf, else
 * `g · safe_rsqrt(v + 1e-9)` with `v` its diagonal accumulator.
 */
export function facGrad(g: tf.Tensor, f: { rowFactor: tf.Tensor; colFactor: tf.Tensor; d0: number; d1: number } | null, v: tf.Tensor | null, lead: number): tf.Tensor {
  const g1 = tf.expandDims(g, -1);
  if (f) return tf.mul(tf.mul(g1, tf.expandDims(f.rowFactor, f.d0 + lead)), tf.expandDims(f.colFactor, f.d1 + lead));
  return tf.mul(g1, safeRsqrt(tf.add(v!, 1e-9)));
}

/** `tf.tidy` for plain-object states (keeps every tensor in the returned tree). */
export function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as unknown as T;
}
