/**
 * Task and TaskFamily: the inner problems a learned optimizer is trained on (reference
 * `tasks/base.py`, `Task` and `TaskFamily`; `Datasets` from `tasks/datasets/base.py`).
 *
 * Every task works on a *stack* of N parameter sets with a leading task axis, because the
 * estimators run N tasks (and 2N with both antithetic branches) per step. The `*Batch` methods are
 * the real implementations; the single-task methods (`init`, `loss`, ...) are the N=1 case.
 *
 * A family's `taskFn(taskParam)` accepts an unstacked task param (one task) or a stacked one
 * (leading N, one per row): the returned task's batch methods line up row i of the params with
 * row i of the task param. Task params are pytrees of tensors (a dummy scalar 0 for single-task
 * families).
 */
import * as tf from '@tensorflow/tfjs';
import type { HostArray, PRNGKey, PyTree } from '@lopt/core';
import type { StreamState } from './datasets/splits';

/**
 * A task's parameters: a pytree of tensors (reference `tasks/base.py`, `Task.init` output); batch methods
 * stack N sets along a leading task axis.
 */
export type Params = PyTree;
/**
 * A task's non-trainable state (haiku state, e.g. batch-norm statistics), stacked like the params; null for
 * stateless tasks.
 */
export type ModelState = PyTree | null;
/** A batch: a pytree of tensors. Batch methods take it with a leading task axis N. */
export type Batch = PyTree;

/** The four dataset split names, in order (reference `tasks/datasets/base.py`, `Datasets`). */
export const SPLITS = ['train', 'inner_valid', 'outer_valid', 'test'] as const;
/** One of {@link SPLITS}: `train`, `inner_valid`, `outer_valid` or `test`. */
export type SplitName = (typeof SPLITS)[number];

/** An endless stream of batches for one split, kept on the backend. */
export interface BatchStream {
  /** `count` batches stacked along leading axes `shape` (e.g. [K, N]): leaves `[...shape, ...batch]`. */
  next(shape?: number[]): Batch;
  /** Shape/dtype of one batch, e.g. `{image: [128,8,8,1] float32, label: [128] int32}`. */
  abstractBatch(): PyTree;
  /**
   * Index-addressable streams only: the example indices of the next `count` batches (advances the
   * stream exactly as `next` does). With `gather`, another thread holding the same data can build
   * the batches (the stream's position stays with the caller). Offer these only where building
   * the task from the same config gives the same examples in every thread (true for files such as
   * Fashion-MNIST); the runner's branch threads rely on it.
   */
  nextIndices?(count: number): Int32Array;
  /** The batches at `indices` (from `nextIndices`) stacked along `shape`; does not move the stream. */
  gather?(indices: Int32Array, shape: number[]): Batch;
  /**
   * Optional: do now, while the caller would otherwise wait, work that a later `next` /
   * `nextIndices` would do (e.g. the next epoch's shuffle). Never moves the stream or changes
   * what it gives.
   */
  prefetch?(): void;
  /** Position of the stream, so a checkpoint can resume it exactly (JSON: checkpoints save it in their meta). */
  getState(): StreamState;
  /** Moves the stream to a state `getState` gave (or `{seed, epoch: 0, position: 0}` to start over from another seed). */
  setState(s: StreamState): void;
}

/**
 * The datasets of a task: one endless {@link BatchStream} per split, plus free-form `extraInfo` (e.g.
 * `num_classes`, `vocab_size`); reference `tasks/datasets/base.py`, `Datasets`.
 */
export interface Datasets {
  readonly splits: readonly SplitName[];
  /** Throws for any name but train / inner_valid / outer_valid / test (listing the four). */
  split(name: string): BatchStream;
  extraInfo?: Record<string, unknown>;
}

/** Per-task losses `loss` `[N]` and the updated model state, as returned by `Task.lossWithStateBatch`. */
export interface LossWithState {
  loss: tf.Tensor; // [N]
  state: ModelState;
}

/**
 * Value and gradient for N stacked tasks: `loss` `[N]`, `grad` stacked like the params, the new state, and
 * optional aux metrics (each `[N]`).
 */
export interface LossAndGrad {
  loss: tf.Tensor; // [N]
  grad: Params; // stacked like params
  state: ModelState;
  aux?: Record<string, tf.Tensor>; // each [N]
}

/**
 * An inner problem (reference `tasks/base.py`, `Task`): init, loss and gradient for N stacked parameter sets
 * (the `*Batch` methods), the single-task methods as the N=1 case, its datasets and loss normalizer.
 */
export interface Task {
  readonly name: string;
  readonly datasets: Datasets | null;

  // --- batched (leading task axis N on params, state, data and results) ---
  /** Stacked initial params, one key per task; task i's params depend only on keys[i]. */
  initBatch(keys: PRNGKey[]): Params;
  initWithStateBatch(keys: PRNGKey[]): [Params, ModelState];
  /** Per-task losses `[N]`. `keys` may be null for deterministic tasks. */
  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor;
  lossWithStateBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch): LossWithState;
  lossWithStateAndAuxBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch): LossWithState & { aux: Record<string, tf.Tensor> };
  /** Value and gradient of every task's loss w.r.t. its own params, in one set of batched ops. */
  valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts?: { withAux?: boolean }): LossAndGrad;

  // --- single task (the N=1 case; shapes as in the reference) ---
  init(key: PRNGKey): Params;
  initWithState(key: PRNGKey): [Params, ModelState];
  loss(params: Params, key: PRNGKey | null, data: Batch): tf.Scalar;
  lossWithState(params: Params, state: ModelState, key: PRNGKey | null, data: Batch): [tf.Scalar, ModelState];
  lossAndAux(params: Params, key: PRNGKey | null, data: Batch): [tf.Scalar, Record<string, tf.Tensor>];

  /** Elementwise; works on any shape (e.g. `[N]` or `[T, N]`). */
  normalizer(loss: tf.Tensor): tf.Tensor;

  /**
   * Optional: how many values one task's params hold, known without building them (the count of
   * `jax.eval_shape(task.init, key)`). A run checks its memory need with it before it makes
   * anything; tasks without it are measured on a real init.
   */
  numParams?(): number;

  /**
   * Optional: this task's loss and gradient as a function on host memory, for unrolls that run many
   * inner steps in one native kernel (@lopt/estimators `host_unroll.ts`); null where it does not
   * apply now (backend, native kernels, shapes). Only for tasks whose loss draws no randomness and
   * has no model state. `params` and `step` (one step's batch, leaves `[N, ...]`, or null for tasks
   * without data) are examples of what it will be called with.
   */
  hostLossAndGrad?(params: Params, step: Batch | null): HostLossAndGrad | null;
}

/**
 * A task's value and gradient for N stacked tasks on host memory (see `Task.hostLossAndGrad`).
 * Leaves are in `treeFlatten` order; the values equal those of `valueAndGradBatch` and
 * `normalizer` up to float rounding.
 */
export interface HostLossAndGrad {
  /** Tensors `run` reads besides the params and the data (e.g. a quadratic's target), in the order of its `fixed` views. */
  readonly fixed: tf.Tensor[];
  /** loss `[N]` and the gradient leaves at the params leaves, for one step's data leaves. */
  run(fixed: HostArray[], params: Float32Array[], data: HostArray[], loss: Float32Array, grads: Float32Array[]): void;
  /** The task's `normalizer`, in place. */
  normalize(loss: Float32Array): void;
}

/**
 * A distribution over tasks (reference `tasks/base.py`, `TaskFamily`): `sample`/`sampleBatch` draw task
 * params, `taskFn` builds the task they describe.
 */
export interface TaskFamily {
  readonly name: string;
  readonly datasets: Datasets | null;
  /** One task param (unstacked). */
  sample(key: PRNGKey): PyTree;
  /** Stacked task params, row i from keys[i]. */
  sampleBatch(keys: PRNGKey[]): PyTree;
  taskFn(taskParam: PyTree): Task;
  /**
   * Optional: how many values one task's task param and params hold, known from the config alone
   * (the counts of `jax.eval_shape` of `sample` and of the task's `init`). A run checks its memory
   * need with it before it samples anything; families without it are measured on a sampled task.
   */
  valueCounts?(): { taskParam: number; params: number };
}
