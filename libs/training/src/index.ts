/**
 * @lopt/training: meta-training runs as a library. Experiment configs and their presets, the
 * `MetaTrainer` that assembles plugins into a single-machine or learner/worker pipeline, the
 * `train()` loop with checkpoints, TensorBoard summaries and a loss plot, worker threads, and the
 * transport-agnostic learner and worker of distributed runs.
 *
 * ```ts
 * import { resolveRunConfig, train } from '@lopt/training';
 * const config = resolveRunConfig(registry, 'seed-single-machine', { steps: 20 });
 * const run = await train(config, { logdir: 'runs/seed', threads: 2, onEvent: (e) => console.log(e) });
 * ```
 *
 * @packageDocumentation
 */
// The built-in libs register the plugins the experiment presets name; then the presets register.
import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import './presets';

export { MetaTrainingSchema, TaskEntrySchema, LoggingSchema, MAX_SEED, validateMetaTrainingConfig, withRandomMode, deepMerge } from './experiment_config';
export type { MetaTrainingConfig, MetaTrainingInput } from './experiment_config';
export { registerExperiment, seedDefaultSteps } from './presets';
export { MetaTrainer } from './meta_trainer';
export type { MetaTrainerState, MetaTrainerOptions, StepResult } from './meta_trainer';
export { taskKind, makeTaskFamily } from './task_entries';
export { defaultEvalEvery, resolveEvalCurveOptions, makeEvalTask, isTaskFamily, nonFiniteLeaves, seedTrainingCurves } from './evaluation';
export type { EvalCurveOptions, EvalTaskObject } from './evaluation';

export { train, DivergenceError, resolveRunConfig, resolveThreads, resumeHash, recordedRandomMode, defaultLogdir, metricTag, MetricTagger, BACKEND_CHOICES } from './train';
export type { TrainOptions, TrainEvent, TrainResult, RunConfigSources } from './train';

export {
  ConfigError,
  parseOverrideValue,
  applySetOverrides,
  loadConfigFile,
  closestName,
  describeConfigIssues,
  validateExperimentConfig,
  loadExperimentConfig,
} from './config';

export { CheckpointManager } from './checkpoints';
export type { CheckpointPayload, SavedCheckpoint, RestoredCheckpoint, CheckpointManagerOptions } from './checkpoints';

/** TensorBoard event files: a writer (scalars, histograms, SessionLog.START, fsync'd) and a reader. */
export * as tensorboard from './tensorboard';
export { SummaryWriter, readEventFile, listEventFiles, scalarsByTag } from './tensorboard';
export { renderLossPlot, writeLossPlot, niceTicks, logTicks, formatTick, layoutLegend, PALETTE } from './plot';
export type { Series, PlotOptions, RenderedPlot } from './plot';

export { BranchPool, ThreadedPES } from './parallel/threaded_pes';

/** The learner/worker protocol of distributed meta-training (the reference's GradientLearner with workers), transport-agnostic. */
export * as distributed from './distributed';

/** Continuous evaluation (the reference's continuous_eval/): evaluation sets, the eval chief and its workers. */
export * as continuousEval from './continuous_eval';
export { ContinuousEval, EvalChief, ContinuousEvalSchema, evaluationSet } from './continuous_eval';
/** Population-based training (the reference's population/): the controller and its mutators. */
export * as population from './population';
