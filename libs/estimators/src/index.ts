/**
 * @lopt/estimators: truncation schedules, truncated steps, gradient estimators and learners
 * (the reference's `outer_trainers/`), and training curves (`training.py`).
 *
 * @packageDocumentation
 */
import './plugin_deps';
export {
  ConstantTruncationSchedule,
  LogUniformLengthSchedule,
  NeverEndingTruncationSchedule,
  ScheduledTruncationSchedule,
  piecewiseLinear,
} from './truncation_schedule';
export type { OuterState, TruncationState, TruncationSchedule, ScalarSchedule } from './truncation_schedule';

export type { TruncatedStep, TruncatedUnrollState, TruncatedUnrollOut, StepOptions, BatchIndices, HostRunOut, StepwiseData } from './truncated_step';
export { VectorizedLOptTruncatedStep, SimpleLOptTruncatedStep, VectorizedLOptTruncatedStepSchema, hostRunsSetting } from './lopt_truncated_step';
export type { VectorizedLOptTruncatedStepOptions } from './lopt_truncated_step';
export { stateRows, concatStates, sliceState, cloneState, dataAt, selectRows, replaceRows } from './unroll_state';
export { vectorSamplePerturbations, truncatedUnroll, maybeStackedEsUnroll, concatYs, disposeYs } from './common';
export type { UnrollYs } from './common';

export type { GradientEstimator, GradientEstimatorOut, WorkerWeights, UnrollInfo, Metrics } from './gradient_estimator';
export { TruncatedPES, TruncatedPESSchema, computePesGrad } from './truncated_pes';
export type { PESWorkerState, TruncatedPESOptions, PesGradInputs, PesGradOut } from './truncated_pes';
export { TruncatedES, TruncatedESSchema, FullES, FullESSchema, esGrad, assertNeverEnding } from './es_estimators';
export type { TruncatedESOptions, FullESOptions, FullEsLossType } from './es_estimators';
export { TruncatedGrad, TruncatedGradSchema, FullGrad, FullGradSchema } from './grad_estimators';
export type { TruncatedGradOptions, FullGradOptions } from './grad_estimators';

export { GradientLearner, SingleMachineGradientLearner, gradientWorkerCompute } from './gradient_learner';
export type {
  GradientLearnerState,
  GradientLearnerOptions,
  AggregatedGradient,
  WorkerComputeOut,
  WorkerComputeOptions,
  SingleMachineState,
  MetaInit,
  MetaInitializer,
} from './gradient_learner';
export { hostTensor, hostValues } from './host_ints';

export { singleTaskTrainingCurves, multiTaskTrainingCurves, EVAL_SPLITS } from './training';
export type { SingleTaskCurvesOptions, MultiTaskCurvesOptions, TrainingCurves, MultiTaskCurves } from './training';
