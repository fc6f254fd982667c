/**
 * Optimizer and LearnedOptimizer interfaces (reference `optimizers/base.py`, `Optimizer`, and
 * `learned_optimizers/base.py`, `LearnedOptimizer`).
 *
 * An optimizer is configuration; its state is a plain object that always holds `params` and
 * `iteration`. `init` / `update` work on one task (shapes as in the reference). `initBatch` /
 * `updateBatch` work on N stacked tasks (leading task axis on every params leaf; `iteration` is
 * `[N]` int32) and are what the truncated step calls. For elementwise optimizers the two coincide;
 * MLPLOpt normalises per task and per leaf in the batched form.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostArray, PRNGKey, PyTree } from '@lopt/core';

/**
 * An inner problem's parameters: a pytree of tensors (stacked with a leading task axis in the batched
 * methods).
 */
export type Params = PyTree;
/**
 * An optimizer's state: always `params` and `iteration` (`[]` or `[N]` int32 when batched), the model state,
 * and optimizer-specific fields (reference `optimizers/base.py`, `Optimizer.init` output).
 */
export type OptState = { params: Params; iteration: tf.Tensor | number; state?: PyTree; [k: string]: any };

/**
 * Options of `Optimizer.init`: model state, number of steps the optimizer will run (some learned optimizers
 * use it), and a key.
 */
export interface InitOptions {
  modelState?: PyTree | null;
  numSteps?: number | tf.Tensor | null;
  key?: PRNGKey | null;
}

/**
 * Options of `Optimizer.update`: the loss (for learned optimizers that read it), model state, key, and
 * `isValid`.
 */
export interface UpdateOptions {
  loss?: tf.Tensor | number | null;
  modelState?: PyTree | null;
  key?: PRNGKey | null;
  isValid?: boolean;
}

/**
 * An optimizer (reference `optimizers/base.py`, `Optimizer`): `init`/`update` on one task,
 * `initBatch`/`updateBatch` on N stacked tasks, and accessors for params and model state.
 */
export interface Optimizer {
  readonly name: string;
  init(params: Params, opts?: InitOptions): OptState;
  update(state: OptState, grad: Params, opts?: UpdateOptions): OptState;
  initBatch(params: Params, opts?: InitOptions): OptState;
  updateBatch(state: OptState, grad: Params, opts?: UpdateOptions): OptState;
  getParams(state: OptState): Params;
  getState(state: OptState): PyTree | null;
  /**
   * Optional: this optimizer's batched update as a function on host memory, for unrolls that run
   * many inner steps in one native kernel (@lopt/estimators `host_unroll.ts`); null where it does
   * not apply now (backend, native kernels, shapes, a model state). `state` and `grad` are
   * examples of what it will be called with.
   */
  hostUpdate?(state: OptState, grad: Params): HostUpdate | null;
}

/**
 * An optimizer's batched update on host memory (see `Optimizer.hostUpdate`): the values equal
 * those of `updateBatch` up to float rounding.
 */
export interface HostUpdate {
  /** The state's tensors that every update reads and replaces (float leaves and int32 counters). */
  readonly carried: tf.Tensor[];
  /** Tensors the update reads but never changes (θ). */
  readonly fixed: tf.Tensor[];
  /** Positions in `carried` of the params' leaves, in `treeFlatten` order. */
  readonly paramIndex: number[];
  /** One update: `next` (the carried values after it) from `cur` and the gradient leaves. */
  run(fixed: HostArray[], cur: HostArray[], grads: Float32Array[], next: HostArray[]): void;
  /** The optimizer state around new carried tensors (in `carried` order; the state owns them). */
  rebuild(carried: tf.Tensor[]): OptState;
  /** Another state's tensors in `carried`'s layout (e.g. fresh rows for tasks that reset). */
  carriedOf(state: OptState): tf.Tensor[];
}

/**
 * A learned optimizer's meta-parameters θ: a pytree of tensors (with `thetaIsVector`, a leading task axis on
 * every leaf).
 */
export type Theta = PyTree;

/**
 * A learned optimizer (reference `learned_optimizers/base.py`, `LearnedOptimizer`): `init` makes θ,
 * `optFn(theta)` the {@link Optimizer} it defines.
 */
export interface LearnedOptimizer {
  /** The reference's `name` property (None for the base lopts, which shows in FullES metric keys). */
  readonly name: string | null;
  init(key: PRNGKey): Theta;
  /**
   * The optimizer for these meta-parameters. With `thetaIsVector`, every theta leaf carries a
   * leading axis matching the task axis of the batched state (one perturbed theta per task).
   */
  optFn(theta: Theta, isTraining?: boolean, thetaIsVector?: boolean): Optimizer;
}
