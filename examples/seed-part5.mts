// The seed notebook (learned_optimization, "Part 5: Meta-training with GradientLearner"),
// translated to lopt-ts. Run after `npm run build` from the repo root:
//   LOPT_META_TRAIN_LENGTH=20 node examples/dist/seed-part5.mjs
// Environment: LOPT_META_TRAIN_LENGTH (outer steps of each loop, default 500 as in the notebook);
// JAX_THREEFRY_PARTITIONABLE=1 for jax >= 0.5's random numbers (default: jax < 0.5's, as the
// notebook ran); LOPT_SEED_TASKS=quadratic meta-trains on the quadratic family alone, which gives
// the reference's losses for PRNGKey(0) (see docs/reproducibility.md).
import { random, treeShapes, initBackend } from '@lopt/core';
import { FixedDimQuadraticFamily, ImageMLP_FashionMnist8_Relu32, singleTaskToFamily } from '@lopt/tasks';
import { Adam, MLPLOpt } from '@lopt/optimizers';
import { LogUniformLengthSchedule, VectorizedLOptTruncatedStep, TruncatedPES,
         SingleMachineGradientLearner, GradientLearner, gradientWorkerCompute } from '@lopt/estimators';

await initBackend();

const thetaOpt = new Adam(1e-3);
const lopt = new MLPLOpt();
const maxLength = 300;
const truncSched = new LogUniformLengthSchedule({ minLength: 100, maxLength });
const gradEstFn = (taskFamily, numTasks) => new TruncatedPES(
  new VectorizedLOptTruncatedStep(taskFamily, lopt, truncSched,
    { numTasks, randomInitialIterationOffset: maxLength }),
  { truncLength: 50 });
const mlpTaskFamily = singleTaskToFamily(new ImageMLP_FashionMnist8_Relu32());
const quadraticOnly = process.env.LOPT_SEED_TASKS === 'quadratic';
const families = quadraticOnly ? [new FixedDimQuadraticFamily(10)] : [new FixedDimQuadraticFamily(10), mlpTaskFamily];
const estimators = families.map((f) => gradEstFn(f, 4));
const outerTrainer = new SingleMachineGradientLearner(lopt, estimators, thetaOpt);

let key = random.PRNGKey(0);
let state = await outerTrainer.init(key);
console.log(JSON.stringify(treeShapes(state)));
const steps = Number(process.env.LOPT_META_TRAIN_LENGTH ?? 500);
let loss, metrics;
const t0 = Date.now();
const part1Losses: number[] = [];
for (let i = 0; i < steps; i++) {
  [state, loss, metrics] = await outerTrainer.update(state, key, { withMetrics: false });
  part1Losses.push(loss);
}
console.log('single machine losses:', part1Losses.slice(0, 10).map((l) => l.toFixed(6)).join(' '), steps > 10 ? '...' : '');
console.log(loss, metrics);   // metrics: none||mean_loss, none||best_of_mean_loss and, per estimator, mean||<family>/mean_loss, sample||<family>/time, ... (gradient_worker_compute's extra metrics)
console.log(`single machine: ${steps} outer steps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const central = new GradientLearner(lopt, new Adam(1e-3));
let centralState = await central.init(key);
let workerWeights = central.getStateForWorker(centralState);
const workerEstimators = families.map((f) => gradEstFn(f, 16));
let unrollStates = await Promise.all(workerEstimators.map((g, i) => g.initWorkerState(workerWeights, random.foldIn(key, i))));
const losses: number[] = [];
const t1 = Date.now();
for (let i = 0; i < steps; i++) {
  workerWeights = central.getStateForWorker(centralState);
  let key1; [key1, key] = random.split(key);
  const out = await gradientWorkerCompute(workerWeights, workerEstimators, unrollStates, { key: key1, withMetrics: false });
  unrollStates = out.unrollStates;
  [key1, key] = random.split(key);
  [centralState, metrics] = await central.update(centralState, [out.toPut], { key: key1 });
  losses.push(out.toPut.meanLoss);
}
console.log('learner/worker losses:', losses.map((l) => l.toFixed(3)).join(' '));
console.log(`learner/worker: ${steps} outer steps in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
