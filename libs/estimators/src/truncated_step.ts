/**
 * The truncated-step interface (reference `outer_trainers/truncated_step.py`, `TruncatedStep`):
 * what a gradient estimator drives. One call of `unrollStep` trains N stacked tasks one inner step,
 * resetting the ones whose trajectory ended.
 *
 * Layout of the state (every leaf has a leading task axis N, or 2N with both antithetic branches
 * stacked): `{innerOptState, innerStep, truncationState: {length}, taskParam, isDone}`.
 */
import type * as tf from '@tensorflow/tfjs';
import type { PRNGKey, PyTree } from '@lopt/core';
import type { OptState, Theta } from '@lopt/optimizers';
import type { OuterState, TruncationSchedule } from './truncation_schedule';

/** The state of N tasks being unrolled (learned_optimization/outer_trainers/lopt_truncated_step.py, `TruncatedUnrollState`); leaves have a leading task axis. */
export interface TruncatedUnrollState {
  innerOptState: OptState;
  /** [N] int32: the truncation counter (offset by randomInitialIterationOffset at init). */
  innerStep: tf.Tensor;
  /** `{length: [N] int32}`, or `{}` for NeverEnding schedules. */
  truncationState: { length?: tf.Tensor };
  taskParam: PyTree;
  /** [N] bool */
  isDone: tf.Tensor;
}

/** One step's record for N tasks. Counters are host arrays; `loss` stays on the backend. */
export interface TruncatedUnrollOut {
  loss: tf.Tensor; // [N] float32, normalised
  isDone: Int32Array; // [N]
  mask: Int32Array; // [N] 1 = counts toward the meta-loss
  iteration: Int32Array; // [N] inner step after this call
  taskParam: PyTree; // [N,...] the task param the step trained on
}

/** Options of `TruncatedStep.initStepState` and `unrollStep`. */
export interface StepOptions {
  thetaIsVector?: boolean;
  /** FullES / FullGrad: the trajectory length to use instead of the schedule's. */
  overrideNumSteps?: number | null;
}

/** The example indices of one `getBatch(steps)` call (see `TruncatedStep.getBatchIndices`). */
export interface BatchIndices {
  steps: number;
  train: { split: string; indices: Int32Array };
  meta: { split: string; indices: Int32Array } | null;
}

/** Advances N tasks by one inner step and reports losses (learned_optimization/outer_trainers/truncated_step.py, `VectorizedTruncatedStep`). */
export interface TruncatedStep {
  readonly numTasks: number;
  outerInit(key: PRNGKey): Theta;
  initStepState(theta: Theta, outerState: OuterState | null, key: PRNGKey, opts?: StepOptions & { numStepsOverride?: number | null }): TruncatedUnrollState;
  /** Data for `steps` unroll calls: leaves `[steps, N, ...]`, or null for tasks without data. */
  getBatch(steps?: number): PyTree;
  /**
   * `getBatch` as example indices, for a thread that holds its own copy of the datasets
   * (`batchFromIndices` there gives the same batch); null, without moving any stream, when a
   * split's stream is not index-addressable.
   */
  getBatchIndices?(steps?: number): BatchIndices | null;
  /** The batch of `desc` (leaves `[steps, N, ...]`), or with `step` only that step's (leaves `[N, ...]`, one gather, no slice). */
  batchFromIndices?(desc: BatchIndices, step?: number): PyTree;
  /** Optional: lets the data streams do ahead of time what a later `getBatch*` would (see `BatchStream.prefetch`); never changes the data. */
  prefetch?(): void;
  getOuterBatch(steps?: number): PyTree;
  unrollStep(theta: Theta, state: TruncatedUnrollState, key: PRNGKey, data: PyTree, outerState: OuterState | null, opts?: StepOptions): [TruncatedUnrollState, TruncatedUnrollOut];
  /**
   * Optional: steps `from`, `from + 1`, ... of a K-step unroll (keys `keys[k]`, the data of step k
   * `data.at(k)`, of all steps `data.all()`: leaves `[K, N, ...]`; null for tasks without data) at once, with the values `unrollStep` gives step by step (up to float
   * rounding), for as long as it can (at least one step); null where it cannot run step `from`
   * (then `unrollStep` does). See VectorizedLOptTruncatedStep.
   */
  hostRun?(theta: Theta, state: TruncatedUnrollState, keys: PRNGKey[], data: StepwiseData | null, from: number, outerState: OuterState | null, opts: StepOptions, keepTaskParams: boolean): HostRunOut | null;
  /** Normalised loss `[N]` of the current params on `data` (leaves `[N, ...]`). */
  metaLossBatch(theta: Theta, state: TruncatedUnrollState, key: PRNGKey, data: PyTree, outerState: OuterState | null, opts?: StepOptions): tf.Tensor;
  taskName(): string;
  cfgName(): string;
  readonly truncSched?: TruncationSchedule;
}

/** What `TruncatedStep.hostRun` returns: the state after its `steps` steps and their records. */
export interface HostRunOut {
  state: TruncatedUnrollState;
  steps: number;
  /** `[steps, N]` normalised losses */
  loss: tf.Tensor;
  isDone: Int32Array[];
  mask: Int32Array[];
  iteration: Int32Array[];
  /** one per step with `keepTaskParams`, else empty */
  taskParam: PyTree[];
}

/**
 * A K-step unroll's data step by step (`at(k)`: leaves `[N, ...]`, owned by the caller) and all at
 * once (`all()`: leaves `[K, N, ...]`, owned by whoever made it; for host runs, which ask for it only
 * when they go ahead).
 */
export interface StepwiseData {
  at(k: number): PyTree;
  all(): PyTree;
}

