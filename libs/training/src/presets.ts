/**
 * Experiment presets, registered as `experiment` plugins: a preset is a partial configuration, and
 * the experiment's schema is the full one with the preset's values as defaults. The built-in ones
 * are the seed notebook's two runs and a fast quadratic run; a plugin package can add more with
 * `registerExperiment`.
 */
import { z } from 'zod';
import { registerPlugin } from '@lopt/core';
import { deepMerge, MetaTrainingSchema, type MetaTrainingConfig, type MetaTrainingInput } from './experiment_config';

/** Steps default for the seed experiments: LOPT_META_TRAIN_LENGTH, as in the seed notebook, else 500. */
export function seedDefaultSteps(): number {
  const v = Number(process.env.LOPT_META_TRAIN_LENGTH);
  return Number.isInteger(v) && v > 0 ? v : 500;
}

/**
 * MLPLOpt meta-trained by Adam(1e-3) with PES: truncations of length LogUniform(minLength, maxLength),
 * `truncLength` inner steps per outer step, each task starting at a random iteration below
 * maxLength (the seed notebook's setup, with its sizes as parameters).
 */
function mlpLOptPes(o: { minLength: number; maxLength: number; truncLength: number; stepsPerJit?: number }) {
  return {
    learnedOptimizer: { name: 'MLPLOpt', config: {} },
    thetaOptimizer: { name: 'Adam', config: { learningRate: 1e-3 } },
    truncationSchedule: { name: 'LogUniformLengthSchedule', config: { minLength: o.minLength, maxLength: o.maxLength } },
    gradientEstimator: { name: 'TruncatedPES', config: { truncLength: o.truncLength, ...(o.stepsPerJit === undefined ? {} : { stepsPerJit: o.stepsPerJit }) } },
    truncatedStep: { name: 'VectorizedLOptTruncatedStep', config: { randomInitialIterationOffset: o.maxLength } },
  };
}

const SEED_BASE = mlpLOptPes({ minLength: 100, maxLength: 300, truncLength: 50 });

/** Registers a preset as an experiment plugin: its schema is the full schema with the preset's defaults. */
export function registerExperiment(name: string, description: string, preset: () => MetaTrainingInput): void {
  registerPlugin({
    kind: 'experiment',
    name,
    description,
    schema: z.preprocess((input) => deepMerge(preset(), input ?? {}), MetaTrainingSchema) as unknown as z.ZodType<MetaTrainingConfig>,
    create: (cfg: MetaTrainingConfig) => cfg,
  });
}

registerExperiment('seed-single-machine', "the seed's SingleMachineGradientLearner: MLPLOpt, Adam(1e-3), PES trunc 50, N=4, quadratic + Fashion-MNIST 8x8 MLP", () => ({
  ...SEED_BASE,
  description: 'SingleMachineGradientLearner meta-training MLPLOpt on FixedDimQuadraticFamily(10) and ImageMLP_FashionMnist8_Relu32',
  mode: 'single-machine',
  steps: seedDefaultSteps(),
  reuseKey: true,
  tasks: [
    { name: 'FixedDimQuadraticFamily', config: { dim: 10 }, numTasks: 4 },
    { name: 'ImageMLP_FashionMnist8_Relu32', config: {}, numTasks: 4 },
  ],
}));

registerExperiment('seed-learner-worker', "the seed's central GradientLearner + gradientWorkerCompute loop, N=16, in one process", () => ({
  ...SEED_BASE,
  description: 'GradientLearner with workers computing PES meta-gradients on FixedDimQuadraticFamily(10) and ImageMLP_FashionMnist8_Relu32',
  mode: 'learner-worker',
  steps: seedDefaultSteps(),
  numWorkers: 1,
  tasks: [
    { name: 'FixedDimQuadraticFamily', config: { dim: 10 }, numTasks: 16 },
    { name: 'ImageMLP_FashionMnist8_Relu32', config: {}, numTasks: 16 },
  ],
}));

registerExperiment('quadratic-pes', 'fast smoke run: MLPLOpt + PES on FixedDimQuadraticFamily(10), trunc 10, LogUniform(20, 60)', () => ({
  description: 'MLPLOpt meta-trained with PES on quadratics only',
  mode: 'single-machine',
  steps: 50,
  ...mlpLOptPes({ minLength: 20, maxLength: 60, truncLength: 10 }),
  tasks: [{ name: 'FixedDimQuadraticFamily', config: { dim: 10 }, numTasks: 4 }],
  logging: { histogramsEvery: 5, metricsEvery: 5, checkpointEverySteps: 10 },
}));

registerExperiment('image-family-pes', 'MLPLOpt + PES on three image-MLP families sampled by sample_image_mlp (seeds 7, 8, 13: Fashion-MNIST, sampled sizes)', () => ({
  ...SEED_BASE,
  description:
    'MLPLOpt meta-trained with PES on ParametricImageMLP families whose hidden sizes, depth, image and batch size come from the reference sampler sample_image_mlp; each task samples its activation and initializer',
  mode: 'single-machine',
  steps: 200,
  tasks: [
    { name: 'SampledImageMLP', config: { seed: 7 }, numTasks: 4 },
    { name: 'SampledImageMLP', config: { seed: 8 }, numTasks: 4 },
    { name: 'SampledImageMLP', config: { seed: 13 }, numTasks: 4 },
  ],
}));

registerExperiment('conv-fmnist-pes', 'MLPLOpt + PES on a ParametricImageConv family on Fashion-MNIST 16x16 (channels 8-16-32, a sampled activation and initializer per task), N=2, trunc 25', () => ({
  description: 'MLPLOpt meta-trained with PES on convnets sampled from ParametricImageConv (tasks/parametric/image_conv.py) on Fashion-MNIST',
  mode: 'single-machine',
  steps: 200,
  ...mlpLOptPes({ minLength: 50, maxLength: 200, truncLength: 25, stepsPerJit: 25 }),
  tasks: [
    {
      name: 'ParametricImageConv',
      config: { imageSize: [16, 16], batchSize: 64, hiddenSizes: [8, 16, 32], kernelSizes: [[3, 3], [3, 3], [3, 3]], strides: [2, 2, 1] },
      numTasks: 2,
    },
  ],
  logging: { histogramsEvery: 50, metricsEvery: 10, checkpointEverySteps: 50 },
}));

registerExperiment(
  'lm-transformer-pes',
  'MLPLOpt + PES on a small ParametricLMTransformer family (1 layer, 2 heads, d_model 32) on the byte-level fortunes corpus, N=4, trunc 20',
  () => ({
    description:
      'MLPLOpt meta-trained with PES on a small decoder-only transformer LM family (tasks/parametric/lm_transformer.py) over the offline byte-level corpus (Debian fortunes), batch 8 x 16 tokens',
    mode: 'single-machine',
    steps: 200,
    ...mlpLOptPes({ minLength: 40, maxLength: 120, truncLength: 20, stepsPerJit: 20 }),
    tasks: [
      {
        name: 'ParametricLMTransformer',
        config: { datasetName: 'fortunes_bytes_datasets', batchSize: 8, sequenceLength: 16, numHeads: 2, numLayers: 1, dModel: 32, dropoutRate: 0 },
        numTasks: 4,
      },
    ],
    logging: { histogramsEvery: 50, metricsEvery: 10, checkpointEverySteps: 50 },
  }),
);
