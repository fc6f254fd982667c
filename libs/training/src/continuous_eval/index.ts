/** Continuous evaluation of a run's checkpoints (reference `continuous_eval/`). */
export { ContinuousEvalSchema, EvalTaskSchema, evaluationSet, validateEvalSection } from './evaluation_set';
export type { ContinuousEvalConfig, ContinuousEvalInput, EvalTaskConfig } from './evaluation_set';
export { evalMetrics } from './metrics';
export type { EvalJobResult } from './metrics';
export { EvalChief, CHIEF_STATE_FILE } from './chief';
export type { EvalJob, EvalChiefOptions, WrittenGroup } from './chief';
export { EvalJobRunner } from './worker';
export { ContinuousEval } from './single_machine';
export type { ContinuousEvalOptions } from './single_machine';
export { EVAL_SERVICE_NAME, evalCodec, EvalChiefService, hostEvalChief, runEvalWorker } from './remote';
export type { EvalWorkRequest, EvalWorkReply, EvalResultRequest, EvalResultReply, EvalHandler, EvalClient, EvalChiefServiceOptions, HostedEvalOptions, EvalWorkerOptions } from './remote';
