/**
 * @lopt/optimizers: Optimizer / LearnedOptimizer, hand-designed optax-style optimizers and
 * schedules, learnable-hyper-parameter optimizers, MLPLOpt, AdafacMLPLOpt, AdafacNominal, NNAdam and
 * RNNMLPLOpt. Importing this module registers every optimizer plugin.
 *
 * @packageDocumentation
 */
export type { Params, OptState, InitOptions, UpdateOptions, Optimizer, Theta, LearnedOptimizer, HostUpdate } from './base';
export { BatchedOptimizer, asOneTask } from './batched_optimizer';
export { LazyHyper, resolveHyper, bcast, numTasks, zerosCounter, treeClone, treeExpand, treeSqueeze, toFloatTensor, clipTree, secondMomentNormalize, safeRsqrt, TIME_SCALES, tanhEmbedding, batchMatMul3, incCounter, vecRollingMom, vecRollingRms, factoredDims, vecFactoredRolling, factoredFactors, facGrad, tidy } from './common';
export type { Hyper, BatchCtx, MomAccumulator, RMSAccumulator, FactoredAccum } from './common';
export { cosineSchedule, linearWarmupSchedule, linearRampupSqrtDecaySchedule, piecewiseLinearSchedule, exponentialDecaySchedule } from './schedules';
export type { ScalarSchedule, CosineScheduleOptions, ExponentialDecayOptions } from './schedules';
export { incCount, chain, identity, scale, scaleBySchedule, scaleByLearningRate, scaleByAdam, trace, scaleByRms, addDecayedWeights, applyUpdates } from './transforms';
export type { TxCtx, GradientTransformation, LearningRate, ScaleByAdamState } from './transforms';
export { OptaxOptimizer, SGDSchema, SGDMSchema, AdamSchema, AdamWSchema, RMSPropSchema, SGD, SGDM, Adam, RMSProp, AdamW } from './optax_opts';
export type { OptaxState, SGDMOptions, AdamOptions, RMSPropOptions, AdamWOptions } from './optax_opts';
export { GradientClipOptimizerSchema, GradientWrapper, GradientClipOptimizer } from './wrappers';
export { applyPerParamMLP, applyPerTaskMLPChannelsFirst, applySharedMLPChannelsFirst, fusedMatMul3 } from './per_param_mlp';
export type { Linear } from './per_param_mlp';
export { MLPLOPT_DECAYS, mlpLoptUpdateOps, mlpLoptUpdate, MLPLOpt, MLPLOptOptimizer } from './mlp_lopt';
export type { MLPLOptState, MLPLOptOptions } from './mlp_lopt';
export { mlpLoptNative, mlpLoptKernelApplies, mlpLoptUpdateImpls, mlpLoptHostStep, MLPLOPT_ADDON_PATH } from './native';
export type { OptimizersAddon, MLPLOptHostStep, MLPLOptStepArrays } from './native';
export { PER_PARAM_MLP, perParamMLPNative, perParamNativeUsable } from './per_param_native';
export type { NativeFeature, PerParamNativeLeaf } from './per_param_native';
export { LearnableSGDSchema, LearnableSGDMSchema, LearnableAdamSchema, LearnableSGD, LearnableSGDM, LearnableAdam } from './learnable';
export type { LearnableSGDOptions, LearnableSGDMOptions, LearnableAdamOptions } from './learnable';
export { AdafacMLPLOptSchema, AdafacMLPLOpt, AdafacMLPLOptOptimizer } from './adafac_mlp_lopt';
export type { AdafacMLPLOptState, AdafacMLPLOptOptions } from './adafac_mlp_lopt';
export { AdafacNominalSchema, AdafacNominal, AdafacNominalOptimizer, NOMINAL_GRAD_ESTIMATORS, ADAFAC_NOMINAL_SUMMARY_NAMES } from './adafac_nominal';
export type { AdafacNominalState, AdafacNominalOptions } from './adafac_nominal';
export { LearnedTfjsOptimizer, asTfjsOptimizer } from './tfjs_adapter';
export { NN_ADAM_NUM_FEATURES, NNAdamSchema, nnAdamTransforms, nnAdamInverseForward, NNAdam, NNAdamOptimizer } from './nn_adam';
export type { NNAdamRolling, NNAdamLSTMState, NNAdamState, NNAdamTheta, NNAdamOptions, NNAdamTransform } from './nn_adam';
export { RNNMLPLOptSchema, RNNMLPLOpt, RNNMLPLOptOptimizer } from './rnn_mlp_lopt';
export type { RNNMLPLOptState, RNNMLPLOptOptions, LossNormalizerState, DynamicClipState } from './rnn_mlp_lopt';
export { HyperV2Schema, HyperV2, HyperV2Optimizer, FRACTION_TIMESCALES, VELO_HYPER_V2_OPTIONS, fusedMultiplyAdd } from './hyper_v2';
export type { HyperV2State, HyperV2Options, HyperV2Theta, LossBuffer, LSTMState } from './hyper_v2';
export { loadLearnedOptimizerCheckpoint } from './checkpoint';
export type { LoadedLearnedOptimizer } from './checkpoint';
export { GradientAccumulator, WeightDecayWrapper, VeLO } from './velo';
export type { GradientAccumulatorState, VeLOOptions } from './velo';
