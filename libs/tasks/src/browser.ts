/**
 * @lopt/tasks for any JavaScript host (a browser bundle included): the task and family interfaces,
 * in-memory datasets and batch streams, the quadratic tasks and families, task augmentation, the
 * configurable-object machinery and the language-model building blocks. The package's `browser`
 * export condition resolves `@lopt/tasks` here; in Node, `@lopt/tasks` is this plus node.ts.
 */
export { SPLITS } from './base';
export type { Params, ModelState, Batch, SplitName, BatchStream, Datasets, LossWithState, LossAndGrad, Task, TaskFamily, HostLossAndGrad } from './base';
export { expandTree, squeezeTree, tidyTree, stackedSample, stackedNormal, stackedUniform, stopGradient, softmaxCrossEntropy, BaseTask, BaseTaskFamily, singleTaskToFamily, requireKeys } from './task';
export { SplitNameError, checkSplit, SplitDatasets } from './datasets/splits';
export type { StreamState, AbstractLeaf } from './datasets/splits';
export { stableOrderByBits, permutation, TensorBatchStream, NoiseBatchStream } from './datasets/batch_streams';
export { cachedDatasets, clearDatasetCache } from './datasets/cache';
export { resizeBilinearHalfPixel, preprocessImages } from './datasets/image_preprocessing';
export { QuadraticTask, LogQuadraticTask, SumQuadraticTask, NoisyMeanQuadraticTask, noiseDatasets, batchDatasets, BatchQuadraticTask, FixedDimQuadraticTask, FixedDimQuadraticFamily, FixedDimQuadraticDataTask, FixedDimQuadraticFamilyData, NoisyQuadraticTask, NoisyQuadraticFamily } from './quadratics';
export { LOPT_GATHER_ROWS_KERNEL, LOPT_IMAGE_MLP_KERNEL, gatherRowsNative, imageMlpNative } from './native';
export type { TasksAddon } from './native';
export { LogFeature, CFGObject, cfgToPlain, registerConfigurable, objectFromConfig } from './parametric/cfgobject';
export type { CFGValue } from './parametric/cfgobject';
export { choice, logInt, logFloat, SAMPLE_ACTIVATIONS, sampleActivation, sampleInitializer, SAMPLE_INITIALIZERS, sampledInitializer, SAMPLE_IMAGE_DATASETS, sampleImageDataset } from './parametric/parametric_utils';
export type { InitializerConfig } from './parametric/parametric_utils';
export { taskKind, taskFamilyFromEntry } from './task_entries';
export { ReparamWeights, REPARAM_LEVELS, ReparamWeightsFamily, ReparamWeightsFamilySchema } from './task_augmentation';
export type { ParamScale, ReparamLevel } from './task_augmentation';
export { param, initEmbed, embed, linear, linearOf, RNN_CORES, RNN_CORE_CLASS, rnnStateSizes, initRnnCore, unrollRnn, KEY_SIZE, initTransformer, layerNorm, gelu, dropout, transformerForward, foldVocab, maskedTokenLoss } from './lm_modules';
export type { RnnCore, TransformerShape } from './lm_modules';
