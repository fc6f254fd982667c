/**
 * The gradient-estimator interface (reference `outer_trainers/gradient_learner.py`,
 * `GradientEstimator`) and the records it uses and returns (`WorkerWeights`, `UnrollInfo`,
 * `GradientEstimatorOut` in the same file).
 */
import * as tf from '@tensorflow/tfjs';
import type { PRNGKey, PyTree } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import type { OuterState } from './truncation_schedule';

/** What the learner sends a worker. */
export interface WorkerWeights {
  theta: Theta;
  thetaModelState: PyTree | null;
  outerState: OuterState;
}

/** The positive branch's trajectory: `loss` `[T, N]` on the backend, counters on the host. */
export interface UnrollInfo {
  loss: tf.Tensor;
  iteration: Int32Array[];
  taskParam: PyTree[];
  isDone: Int32Array[];
}

/** An estimator's metrics by name (aggregation prefixes as in @lopt/core's `Metrics`). */
export type Metrics = Record<string, tf.Tensor | number>;

/** What `computeGradient` returns (learned_optimization/outer_trainers/gradient_learner.py, `GradientEstimatorOut`). */
export interface GradientEstimatorOut<S = any> {
  /** Scalar tensor (read back once by the worker). */
  meanLoss: tf.Tensor;
  grad: Theta;
  unrollState: S;
  unrollInfo: UnrollInfo | null;
}

/** Estimates dL/dθ from unrolls of tasks (learned_optimization/outer_trainers/gradient_learner.py, `GradientEstimator`). */
export interface GradientEstimator<S = any> {
  readonly truncatedStep?: unknown;
  /**
   * True when the estimate is computed in other threads or processes (the calling thread only
   * waits): `gradientWorkerCompute({concurrent: true})` starts such estimators first, so that
   * estimators computed in the calling thread overlap with them.
   */
  readonly runsOffThread?: boolean;
  initWorkerState(workerWeights: WorkerWeights, key: PRNGKey): Promise<S>;
  /**
   * One meta-gradient estimate. The input state is *donated*: tensors it holds that the new state
   * does not are disposed (like JAX's donate_argnums), so a loop that replaces its state never leaks.
   */
  computeGradientEstimate(
    workerWeights: WorkerWeights,
    key: PRNGKey,
    state: S,
    opts?: { withSummary?: boolean; datasList?: PyTree[] },
  ): Promise<[GradientEstimatorOut<S>, Metrics]>;
  taskName(): string;
  cfgName(): string;
}
