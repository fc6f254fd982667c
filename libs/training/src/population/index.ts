/**
 * Population-based training (reference `population/`): the controller, its three mutators, the
 * hyper-parameter perturbations, the `population:` config section and the in-process driver.
 */
export * from './population';
export { FixedSchedule } from './mutators/fixed_schedule';
export type { FixedScheduleState } from './mutators/fixed_schedule';
export { BranchingSingleMachine } from './mutators/single_worker_explore';
export type { BranchingState, DirectedMutateFn, BranchingSingleMachineOptions, ExplorePhase } from './mutators/single_worker_explore';
export { WinnerTakeAllGenetic } from './mutators/winner_take_all_genetic';
export type { WinnerTakeAllState, RandomMutateFn, WinnerTakeAllGeneticOptions } from './mutators/winner_take_all_genetic';
export { HParamSchema, HParamPerturbation, standardNormal } from './hparams';
export type { HParamSpec, MetaParams } from './hparams';
export { PopulationSchema } from './config';
export type { PopulationConfig } from './config';
export { MUTATOR_ALIASES, SINGLE_MEMBER_MUTATORS, mutatorName } from './plugins';
export { trainPopulation, validatePopulation, makeMutator, applyMetaParams } from './run';
export type { PopulationTrainOptions, PopulationEvent, PopulationResult, PopulationMemberResult, PopulationReport, ValidatedPopulation } from './run';
export { runLearnerMember } from './learner_member';
export { EvalValueWaiter } from './eval_value';
export type { LearnerMemberOptions, LearnerMemberResult } from './learner_member';
