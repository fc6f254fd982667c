/**
 * Meta-training MomentumMLPLOpt with the library's PES on quadratics lowers the meta-loss: the
 * plugin works with the estimators exactly as the built-in learned optimizers do (θ perturbed per
 * task, so `optFn(θ, true, thetaIsVector = true)` with θ leaves `[N, ...]` in every unroll step).
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, type PyTree } from '@lopt/core';
import { Adam, type Theta } from '@lopt/optimizers';
import { FixedDimQuadraticFamily } from '@lopt/tasks';
import { LogUniformLengthSchedule, SingleMachineGradientLearner, TruncatedPES, VectorizedLOptTruncatedStep } from '@lopt/estimators';
import { MomentumMLPLOpt } from '../index';

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}

beforeAll(async () => {
  await useTestBackend();
});

const DIM = 10;
const EVAL_TASKS = 16;
const EVAL_STEPS = 30;

/**
 * The meta-objective, deterministic: mean training loss over EVAL_STEPS inner steps of
 * EVAL_TASKS fixed quadratic tasks (fixed targets and initial params), all tasks in one stack.
 */
function metaObjective(lopt: MomentumMLPLOpt, theta: Theta): { mean: number; first: number } {
  const fam = new FixedDimQuadraticFamily({ dim: DIM });
  const [kt, kp] = random.split(random.PRNGKey(1234));
  const taskParam = fam.sampleBatch(random.split(kt, EVAL_TASKS));
  const task = fam.taskFn(taskParam);
  const opt = lopt.optFn(theta);
  const p0 = task.initBatch(random.split(kp, EVAL_TASKS));
  let state = opt.initBatch(p0);
  const losses: number[] = [];
  for (let t = 0; t < EVAL_STEPS; t++) {
    const out = task.valueAndGradBatch(opt.getParams(state), null, null, null);
    losses.push(tf.tidy(() => tf.mean(out.loss).dataSync()[0]));
    const next = opt.updateBatch(state, out.grad);
    treeDispose(state);
    treeDispose(out as unknown as PyTree);
    state = next;
  }
  [state, p0, taskParam].forEach(treeDispose);
  return { mean: mean(losses), first: losses[0] };
}

test('PES (TruncatedPES + VectorizedLOptTruncatedStep on FixedDimQuadraticFamily) lowers the meta-loss', async () => {
  const lopt = new MomentumMLPLOpt({ stepMult: 0.1 });
  const fam = new FixedDimQuadraticFamily({ dim: DIM });
  const step = new VectorizedLOptTruncatedStep(fam, lopt, new LogUniformLengthSchedule({ minLength: 20, maxLength: 40 }), {
    numTasks: 8,
    randomInitialIterationOffset: 40,
  });
  const pes = new TruncatedPES(step, { truncLength: 10, std: 0.01 });
  const learner = new SingleMachineGradientLearner(lopt, [pes], new Adam(0.02));

  let state = await learner.init(random.PRNGKey(0));
  const theta0 = learner.getMetaParams(state);
  const before = metaObjective(lopt, theta0);

  const OUTER = 60;
  const losses: number[] = [];
  let key = random.PRNGKey(1);
  let tensorsAfterFirst = 0;
  for (let i = 0; i < OUTER; i++) {
    const [k, sub] = random.split(key);
    key = k;
    const [next, loss] = await learner.update(state, sub);
    state = next;
    losses.push(loss);
    // the learner donates the old state: the tensor count stays flat from the second step on
    if (i === 1) tensorsAfterFirst = tf.memory().numTensors;
    if (i > 1) expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
  }
  const after = metaObjective(lopt, learner.getMetaParams(state));
  console.log(`meta-objective ${before.mean.toFixed(3)} -> ${after.mean.toFixed(3)} (loss at step 0: ${before.first.toFixed(3)}); PES mean loss first 10 ${mean(losses.slice(0, 10)).toFixed(3)}, last 10 ${mean(losses.slice(-10)).toFixed(3)}`);
  expect(losses.every(Number.isFinite)).toBe(true);
  // meta-training at least halves the meta-objective, and the trained optimizer descends: its
  // mean loss over the run is well below the loss the tasks start from
  expect(after.mean).toBeLessThan(0.5 * before.mean);
  expect(after.mean).toBeLessThan(0.5 * after.first);
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
