import * as tf from '@tensorflow/tfjs';
import { random, treeMap, treeMapN, type PyTree } from '@lopt/core';
import { FixedDimQuadraticFamily, FixedDimQuadraticFamilyData, ImageMLPTask, QuadraticTask, SplitDatasets, TensorBatchStream, type SplitName } from '@lopt/tasks';
import type { LearnedOptimizer, Optimizer, OptState } from '@lopt/optimizers';
import { multiTaskTrainingCurves, singleTaskTrainingCurves } from '../training';

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

/** A tiny SGD (params -= lr · g) for these tests only. lr may be a [N] tensor (one per task). */
function sgd(lr: number | tf.Tensor): Optimizer {
  const clone = (t: PyTree) => treeMap((x: tf.Tensor) => tf.clone(x), t);
  const step = (s: OptState, g: PyTree, batched: boolean): OptState =>
    tf.tidy(() => ({
      params: treeMapN((p: tf.Tensor, gr: tf.Tensor) => {
        const l = typeof lr === 'number' || !batched ? lr : tf.reshape(lr, [-1, ...p.shape.slice(1).map(() => 1)]);
        return tf.sub(p, tf.mul(gr, l));
      }, s.params, g),
      iteration: tf.add(s.iteration as tf.Tensor, 1),
    }) as unknown as tf.TensorContainer) as unknown as OptState;
  return {
    name: 'TestSGD',
    init: (p) => ({ params: clone(p), iteration: tf.scalar(0, 'int32') }),
    initBatch: (p) => ({ params: clone(p), iteration: tf.zeros([(p as any).shape?.[0] ?? 1], 'int32') }),
    update: (s, g) => step(s, g, false),
    updateBatch: (s, g) => step(s, g, true),
    getParams: (s) => s.params,
    getState: () => null,
  };
}

const learnedSGD: LearnedOptimizer = {
  name: 'LearnedTestSGD',
  init: () => ({ lr: tf.scalar(0.1) }),
  optFn: (theta: any) => sgd(theta.lr),
};

test('single task curves on a quadratic: lengths, loss falls, eval keys', async () => {
  const task = new QuadraticTask({ dim: 10 });
  const before = tf.memory().numTensors;
  const r = await singleTaskTrainingCurves(task, sgd(0.1), 30, random.PRNGKey(0), { evalEvery: 10, evalBatches: 2, lastEvalBatches: 3 });
  expect(r['train/xs']).toHaveLength(31);
  expect(r['train/loss']).toHaveLength(31);
  expect(r['eval/xs']).toEqual([0, 10, 20, 30]);
  for (const s of ['train', 'outer_valid', 'test']) {
    expect(r[`eval/${s}/loss`]).toHaveLength(4);
    expect(r[`eval/${s}/loss_normalized`]).toEqual(r[`eval/${s}/loss`]);
  }
  // loss Σp², lr 0.1: p <- 0.8 p, loss <- 0.64 loss
  expect(r['train/loss'][1] / r['train/loss'][0]).toBeCloseTo(0.64, 4);
  expect(r['eval/train/loss'][0]).toBeCloseTo(r['train/loss'][0], 4);
  expect(tf.memory().numTensors).toBe(before);
});

test('single task curves with data and aux (FixedDimQuadraticFamilyData task)', async () => {
  const fam = new FixedDimQuadraticFamilyData({ dim: 4 });
  const task = fam.taskFn(fam.sample(random.PRNGKey(1)));
  const r = await singleTaskTrainingCurves(task, sgd(0.1), 5, random.PRNGKey(0), { evalEvery: 5, evalBatches: 2, lastEvalBatches: 2 });
  expect(r['eval/xs']).toEqual([0, 5]);
  expect(r['eval/test/l2']).toHaveLength(2);
  expect(r['eval/test/l1']).toHaveLength(2);
});

test('multi task curves on the quadratic family: all tasks in one stack', async () => {
  const fam = new FixedDimQuadraticFamily({ dim: 10 });
  const theta = learnedSGD.init(random.PRNGKey(0));
  const before = tf.memory().numTensors;
  const r = await multiTaskTrainingCurves(fam, learnedSGD, theta, 4, { key: random.PRNGKey(3), steps: 20, evalEvery: 10, splits: ['train', 'test'] });
  expect(r['train/loss']).toHaveLength(4);
  expect(r['train/loss'][0]).toHaveLength(20);
  expect(r['eval/xs'][0]).toEqual([0, 10, 20]);
  expect(r['eval/test/loss']).toHaveLength(4);
  expect(r['eval/test/loss'][2]).toHaveLength(3);
  for (const row of r['train/loss']) expect(row[1] / row[0]).toBeCloseTo(0.64, 4);
  expect(r['eval/train/norm_loss']).toEqual(r['eval/train/loss']);
  expect(tf.memory().numTensors).toBe(before);
});

test('single task curves on an image MLP with data (synthetic) bring the loss down', async () => {
  const n = 256;
  const load = () =>
    tf.tidy(() => {
      const x = random.uniform(random.PRNGKey(0), [n, 4, 4, 1]);
      const label = tf.argMax(tf.reshape(x, [n, 16]).slice([0, 0], [n, 10]), -1).toInt();
      return { image: x, label };
    });
  const ab = { image: { shape: [4, 4, 1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const ds = new SplitDatasets(
    Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, 32, ab, i)])) as Record<SplitName, TensorBatchStream>,
    { num_classes: 10 },
  );
  const task = new ImageMLPTask({ datasets: ds, imageSize: [4, 4], hiddenSizes: [16] });
  const r = await singleTaskTrainingCurves(task, sgd(0.5), 100, random.PRNGKey(0), { evalEvery: 50, evalBatches: 2, lastEvalBatches: 4 });
  const tl = r['train/loss'];
  expect(tl[0]).toBeGreaterThan(2);
  expect(r['eval/test/loss'][2]).toBeLessThan(r['eval/test/loss'][0]);
  expect(r['eval/test/loss_normalized'][0]).toBeLessThanOrEqual(1.5 * Math.log(10) + 1e-6);
});
