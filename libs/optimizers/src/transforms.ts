/**
 * Small optax-style gradient transformations: `init(params) -> state`,
 * `update(updates, state, params) -> [updates, state]`, composed with `chain`. Hand-designed
 * optimizers are chains of these, exactly as optax builds them, so their states print like the
 * reference's (`optaxOptState: [{count, mu, nu}, {}]` for Adam).
 *
 * Every piece works on one task or on N stacked tasks (`ctx.batched`); per-task hyper-parameters
 * (`[N]` tensors) broadcast over each task's leaves.
 */
import * as tf from '@tensorflow/tfjs';
import { treeFlatten, treeMap, treeMapN, treeUnflatten, type PyTree } from '@lopt/core';
import { bcast, BatchCtx, Hyper, incCounter, numTasks, resolveHyper, toFloatTensor, zerosCounter } from './common';
import type { ScalarSchedule } from './schedules';

/**
 * What an optax-style transformation's update sees: the batch context plus the `numSteps` the optimizer was
 * initialised with.
 */
export interface TxCtx extends BatchCtx {
  /** `numSteps` given to the optimizer's init (schedules read it as `maxSteps`). */
  numSteps?: number | tf.Tensor | null;
}

/** optax's `GradientTransformation`: `init(params)` and `update(updates, state, params)`. */
export interface GradientTransformation<S = any> {
  init(params: PyTree, ctx: TxCtx): S;
  update(updates: PyTree, state: S, params: PyTree, ctx: TxCtx): [PyTree, S];
}

/** A learning rate: a number, tensor or lazy value, or a schedule of the step. */
export type LearningRate = Hyper | ScalarSchedule;

function isSchedule(x: unknown): x is ScalarSchedule {
  return typeof x === 'function';
}

/** `map(fn)` over leaves with the hyper-parameter broadcast to each leaf's rank. */
function mapWithHyper(tree: PyTree, h: number | tf.Tensor, ctx: BatchCtx, fn: (x: tf.Tensor, h: number | tf.Tensor) => tf.Tensor) {
  return treeMap((x: tf.Tensor) => fn(x, bcast(h, x.rank, ctx)), tree);
}

/**
 * optax's `safe_int32_increment`: `count + 1`, saturating at int32 max. The `1` is an int32 scalar
 * so the counter stays int32 (`tf.add(int32, 1)` would upcast it to float32).
 */
export function incCount(count: tf.Tensor): tf.Tensor {
  return tf.where(tf.less(count, tf.scalar(2147483647, 'int32')), incCounter(count), count);
}

/** `optax.chain`: applies the transformations in order; the state is the list of their states. */
export function chain(...txs: GradientTransformation[]): GradientTransformation<any[]> {
  return {
    init: (params, ctx) => txs.map((t) => t.init(params, ctx)),
    update: (updates, state, params, ctx) => {
      const out: any[] = [];
      let u = updates;
      txs.forEach((t, i) => {
        const [nu, ns] = t.update(u, state[i], params, ctx);
        u = nu;
        out.push(ns);
      });
      return [u, out];
    },
  };
}

/** EmptyState transformation. */
export function identity(): GradientTransformation<Record<string, never>> {
  return { init: () => ({}), update: (u) => [treeMap((x: tf.Tensor) => tf.clone(x), u), {}] };
}

/** `u ← s · u` (s may be per task). */
export function scale(s: Hyper): GradientTransformation<Record<string, never>> {
  return {
    init: () => ({}),
    update: (u, _s, _p, ctx) => [mapWithHyper(u, resolveHyper(s), ctx, (x, h) => tf.mul(x, h)), {}],
  };
}

/** ScaleByScheduleState{count}; the step size is `schedule(count, maxSteps)` on the pre-increment count.
 * `numSteps` (float32, NaN when not given) is kept beside the count: optax schedules close over it. */
export function scaleBySchedule(schedule: ScalarSchedule, sign = -1): GradientTransformation<{ count: tf.Tensor; numSteps: tf.Tensor }> {
  return {
    init: (params, ctx) => {
      if (schedule.needsMaxSteps && (ctx.numSteps === null || ctx.numSteps === undefined)) {
        throw new Error(`numSteps: the learning-rate schedule '${schedule.label ?? 'schedule'}' needs init(params, {numSteps})`);
      }
      const n = ctx.batched ? numTasks(params) : 0;
      const count = zerosCounter(ctx, n);
      const ns = ctx.numSteps ?? NaN;
      const numSteps = tf.add(tf.zeros(count.shape), toFloatTensor(ns));
      return { count, numSteps };
    },
    update: (u, state, _p, ctx) => {
      const lr = tf.mul(schedule(state.count, state.numSteps), sign);
      return [mapWithHyper(u, lr, ctx, (x, h) => tf.mul(x, h)), { count: incCount(state.count), numSteps: tf.clone(state.numSteps) }];
    },
  };
}

/** optax `scale_by_learning_rate`: `u ← −lr · u`; a schedule adds a `{count, numSteps}` state. */
export function scaleByLearningRate(lr: LearningRate): GradientTransformation {
  if (isSchedule(lr)) return scaleBySchedule(lr, -1);
  return {
    init: () => ({}),
    update: (u, _s, _p, ctx) => {
      const h = resolveHyper(lr);
      return [mapWithHyper(u, typeof h === 'number' ? -h : tf.neg(h), ctx, (x, hh) => tf.mul(x, hh)), {}];
    },
  };
}

/** `optax.ScaleByAdamState`: the step count and the first and second moments. */
export interface ScaleByAdamState {
  count: tf.Tensor;
  mu: PyTree;
  nu: PyTree;
}

/**
 * optax `scale_by_adam`: `mu ← β1 mu + (1−β1) g`, `nu ← β2 nu + (1−β2) g²`, `c = count+1`,
 * `u = (mu/(1−β1^c)) / (sqrt(nu/(1−β2^c) + epsRoot) + eps)`.
 */
export function scaleByAdam(b1: Hyper, b2: Hyper, eps: Hyper, epsRoot: Hyper): GradientTransformation<ScaleByAdamState> {
  return {
    init: (params, ctx) => ({
      count: zerosCounter(ctx, ctx.batched ? numTasks(params) : 0),
      mu: treeMap((p: tf.Tensor) => tf.zerosLike(p), params),
      nu: treeMap((p: tf.Tensor) => tf.zerosLike(p), params),
    }),
    update: (u, state, _p, ctx) => {
      const [B1, B2, E, ER] = [b1, b2, eps, epsRoot].map(resolveHyper);
      const mu = treeMapN(
        (g: tf.Tensor, m: tf.Tensor) => {
          const b = bcast(B1, g.rank, ctx);
          return tf.add(tf.mul(tf.sub(1, b), g), tf.mul(b, m));
        },
        u,
        state.mu,
      );
      const nu = treeMapN(
        (g: tf.Tensor, v: tf.Tensor) => {
          const b = bcast(B2, g.rank, ctx);
          return tf.add(tf.mul(tf.sub(1, b), tf.square(g)), tf.mul(b, v));
        },
        u,
        state.nu,
      );
      const count = incCount(state.count);
      const c = count.toFloat();
      const bc1 = tf.sub(1, tf.pow(toFloatTensor(B1), c)); // [] or [N]
      const bc2 = tf.sub(1, tf.pow(toFloatTensor(B2), c));
      const out = treeMapN(
        (m: tf.Tensor, v: tf.Tensor) => {
          const mHat = tf.div(m, bcast(bc1, m.rank, ctx));
          const vHat = tf.div(v, bcast(bc2, v.rank, ctx));
          return tf.div(mHat, tf.add(tf.sqrt(tf.add(vHat, bcast(ER, v.rank, ctx))), bcast(E, v.rank, ctx)));
        },
        mu,
        nu,
      );
      return [out, { count, mu, nu }];
    },
  };
}

/** optax `trace` (TraceState{trace}): `t ← g + decay·t`; update = t, or `g + decay·t` with nesterov. */
export function trace(decay: Hyper, nesterov = false): GradientTransformation<{ trace: PyTree }> {
  return {
    init: (params) => ({ trace: treeMap((p: tf.Tensor) => tf.zerosLike(p), params) }),
    update: (u, state, _p, ctx) => {
      const d = resolveHyper(decay);
      const f = (g: tf.Tensor, t: tf.Tensor) => tf.add(g, tf.mul(bcast(d, g.rank, ctx), t));
      const newTrace = treeMapN(f, u, state.trace);
      const out = nesterov ? treeMapN(f, u, newTrace) : treeMap((x: tf.Tensor) => tf.clone(x), newTrace);
      return [out, { trace: newTrace }];
    },
  };
}

/**
 * optax `scale_by_rms` (ScaleByRmsState{nu}, initial_scale 0, eps inside the square root as in
 * current optax): `nu ← decay·nu + (1−decay) g²`, `u = g · rsqrt(nu + eps)`.
 */
export function scaleByRms(decay: Hyper, eps: Hyper): GradientTransformation<{ nu: PyTree }> {
  return {
    init: (params) => ({ nu: treeMap((p: tf.Tensor) => tf.zerosLike(p), params) }),
    update: (u, state, _p, ctx) => {
      const [D, E] = [decay, eps].map(resolveHyper);
      const nu = treeMapN(
        (g: tf.Tensor, v: tf.Tensor) => {
          const d = bcast(D, g.rank, ctx);
          return tf.add(tf.mul(tf.sub(1, d), tf.square(g)), tf.mul(d, v));
        },
        u,
        state.nu,
      );
      const out = treeMapN((g: tf.Tensor, v: tf.Tensor) => tf.mul(g, tf.rsqrt(tf.add(v, bcast(E, v.rank, ctx)))), u, nu);
      return [out, { nu }];
    },
  };
}

/** optax `add_decayed_weights`: `u ← u + wd · p`. */
export function addDecayedWeights(weightDecay: Hyper): GradientTransformation<Record<string, never>> {
  return {
    init: () => ({}),
    update: (u, _s, params, ctx) => {
      const wd = resolveHyper(weightDecay);
      return [treeMapN((g: tf.Tensor, p: tf.Tensor) => tf.add(g, tf.mul(bcast(wd, p.rank, ctx), p)), u, params), {}];
    },
  };
}

/** `optax.apply_updates`. */
export function applyUpdates(params: PyTree, updates: PyTree): PyTree {
  const [ps, def] = treeFlatten<tf.Tensor>(params);
  const us = treeFlatten<tf.Tensor>(updates)[0];
  return treeUnflatten(def, ps.map((p, i) => tf.add(p, us[i])));
}
