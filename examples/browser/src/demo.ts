/**
 * The two runs of the browser example, with no DOM: meta-training a learnable optimizer on
 * quadratics, and training a tfjs-layers model with the pretrained MLPLOpt beside tf.js's Adam.
 * Bundled by serve.cjs (esbuild, `platform: 'browser'`), so @lopt/* resolve to their browser builds.
 */
import * as tf from '@tensorflow/tfjs';
import { random, deserializeTree } from '@lopt/core';
import { FixedDimQuadraticFamily } from '@lopt/tasks';
import { Adam, LearnableAdam, MLPLOpt, asTfjsOptimizer, type Theta } from '@lopt/optimizers';
import { ConstantTruncationSchedule, SingleMachineGradientLearner, TruncatedPES, VectorizedLOptTruncatedStep } from '@lopt/estimators';

/** Options of the meta-training run. */
export interface MetaTrainOptions {
  /** Outer (meta-training) steps. */
  outerSteps: number;
  /** Tasks drawn per outer step from FixedDimQuadraticFamily(10). */
  numTasks: number;
  /** Inner steps of each unroll (each task is trained this long from its init, then redrawn). */
  unrollLength: number;
  /** Adam's learning rate on θ. */
  metaLearningRate: number;
  /** Seed of the jax-style key. */
  seed: number;
}

/** Defaults: ~60 outer steps, a few seconds on the wasm backend. */
export const META_DEFAULTS: MetaTrainOptions = { outerSteps: 60, numTasks: 16, unrollLength: 20, metaLearningRate: 0.1, seed: 0 };

/**
 * Meta-trains LearnableAdam (learnable log learning rate, betas and epsilon) on
 * FixedDimQuadraticFamily(10) with truncated PES and Adam on θ, the seed notebook's structure
 * (examples/seed-part5.mts) at browser size. `onStep` gets each outer step's meta-loss.
 */
export async function metaTrainOnQuadratics(opts: MetaTrainOptions, onStep: (step: number, loss: number) => void | Promise<void>): Promise<number[]> {
  const lopt = new LearnableAdam();
  const schedule = new ConstantTruncationSchedule(opts.unrollLength);
  const step = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily(10), lopt, schedule, { numTasks: opts.numTasks, randomInitialIterationOffset: 0 });
  const estimator = new TruncatedPES(step, { truncLength: opts.unrollLength });
  const learner = new SingleMachineGradientLearner(lopt, [estimator], new Adam(opts.metaLearningRate));
  const key = random.PRNGKey(opts.seed);
  let state = await learner.init(key);
  const losses: number[] = [];
  for (let i = 0; i < opts.outerSteps; i++) {
    let loss: number;
    [state, loss] = await learner.update(state, random.foldIn(key, i), { withMetrics: false });
    losses.push(loss);
    await onStep(i, loss);
  }
  return losses;
}

/** Reads θ of pretrained/mlp-lopt-seed from the bytes of its theta.tree. */
export function pretrainedTheta(bytes: Uint8Array): Theta {
  return deserializeTree<Theta>(bytes, 'theta.tree');
}

/**
 * Two interleaved spirals (2-D points, 2 classes), in memory: the data the tfjs-layers model
 * learns. Deterministic for a seed (a small LCG, so the example needs no file).
 */
export function spirals(n: number, seed = 1): { x: tf.Tensor2D; y: tf.Tensor2D } {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const t = 0.25 + 2.75 * rand();
    const angle = t * Math.PI + cls * Math.PI;
    xs.push(t * Math.cos(angle) / 3 + 0.05 * (rand() - 0.5), t * Math.sin(angle) / 3 + 0.05 * (rand() - 0.5));
    ys.push(cls === 0 ? 1 : 0, cls === 1 ? 1 : 0);
  }
  return { x: tf.tensor2d(xs, [n, 2]), y: tf.tensor2d(ys, [n, 2]) };
}

function makeModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [2], units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }));
  model.add(tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }));
  model.add(tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
  return model;
}

/** Options of the tfjs-layers comparison. */
export interface CompareOptions {
  /** Training steps (full batch). */
  steps: number;
  /** Points in the spirals data set. */
  points: number;
  /** tf.js Adam's learning rate (the baseline). */
  adamLearningRate: number;
}

/** Defaults: 150 full-batch steps on 256 points, Adam(1e-3) as in pretrained/mlp-lopt-seed's evaluation. */
export const COMPARE_DEFAULTS: CompareOptions = { steps: 150, points: 256, adamLearningRate: 1e-3 };

/**
 * Trains the same tfjs-layers MLP (same initial weights) on the spirals twice: with the pretrained
 * MLPLOpt as a tf.Optimizer (`asTfjsOptimizer`) and with tf.js's Adam. `onStep` gets both losses.
 */
export async function compareOnLayersModel(
  theta: Theta,
  opts: CompareOptions,
  onStep: (step: number, losses: { mlpLOpt: number; adam: number }) => void | Promise<void>,
): Promise<{ mlpLOpt: number[]; adam: number[] }> {
  const { x, y } = spirals(opts.points);
  const models = { mlpLOpt: makeModel(), adam: makeModel() };
  models.adam.setWeights(models.mlpLOpt.getWeights());
  const optimizers: Record<'mlpLOpt' | 'adam', tf.Optimizer> = {
    mlpLOpt: asTfjsOptimizer(new MLPLOpt(), theta, { numSteps: opts.steps }),
    adam: tf.train.adam(opts.adamLearningRate),
  };
  const out = { mlpLOpt: [] as number[], adam: [] as number[] };
  for (let i = 0; i < opts.steps; i++) {
    const now = { mlpLOpt: 0, adam: 0 };
    for (const k of ['mlpLOpt', 'adam'] as const) {
      const model = models[k];
      const loss = optimizers[k].minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true)!;
      now[k] = (await loss.data())[0];
      loss.dispose();
      out[k].push(now[k]);
    }
    await onStep(i, now);
  }
  for (const k of ['mlpLOpt', 'adam'] as const) {
    optimizers[k].dispose();
    models[k].dispose();
  }
  tf.dispose([x, y]);
  return out;
}
