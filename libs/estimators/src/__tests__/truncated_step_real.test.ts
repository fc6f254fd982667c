/**
 * The truncated step with the real learned optimizer and tasks: SimpleLOptTruncatedStep's
 * fixed-length timeline, MLPLOpt at init training the Fashion-MNIST MLP, and no tensor leak over
 * 1,000 unroll steps with resets.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, loadTree, random, treeDispose, treeLeaves, treeMap } from '@lopt/core';
import {
  FixedDimQuadraticFamily,
  FixedDimQuadraticFamilyData,
  ImageMLPTask,
  ImageMLP_FashionMnist8_Relu32,
  QuadraticTask,
  SplitDatasets,
  TensorBatchStream,
  singleTaskToFamily,
  SYSTEM_FASHION_MNIST_DIR,
  type SplitName,
} from '@lopt/tasks';
import { MLPLOpt } from '@lopt/optimizers';
import {
  SimpleLOptTruncatedStep,
  VectorizedLOptTruncatedStep,
  ConstantTruncationSchedule,
  LogUniformLengthSchedule,
  TruncatedUnrollState,
  hostTensor,
} from '../index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function unroll(step: VectorizedLOptTruncatedStep, theta: any, state: TruncatedUnrollState, n: number, withData: boolean, seed = 1) {
  const losses: number[][] = [];
  const iters: number[][] = [];
  const masks: number[][] = [];
  const dones: number[][] = [];
  let key = random.PRNGKey(seed);
  for (let i = 0; i < n; i++) {
    const [k, next_] = random.split(key);
    key = next_;
    const data = withData ? step.getBatch(1) : null;
    const d1 = data ? tf.tidy(() => ({ image: (data as any).image.squeeze([0]), label: (data as any).label.squeeze([0]) })) : null;
    const [next, ys] = step.unrollStep(theta, state, k, d1, null);
    if (data) treeDispose([data, d1]);
    disposeReplaced(state, next);
    state = next;
    losses.push(Array.from(ys.loss.dataSync()));
    iters.push(Array.from(ys.iteration));
    masks.push(Array.from(ys.mask));
    dones.push(Array.from(ys.isDone));
    ys.loss.dispose();
    treeDispose(ys.taskParam);
  }
  return { state, losses, iters, masks, dones };
}

test('SimpleLOptTruncatedStep trains unrollLength steps, then one reset step (isDone, mask 0, loss 0)', () => {
  const lopt = new MLPLOpt();
  const theta = lopt.init(random.PRNGKey(0));
  const step = new SimpleLOptTruncatedStep(new QuadraticTask({ dim: 4 }), lopt, { unrollLength: 3 });
  const s0 = step.initStepState(theta, null, random.PRNGKey(2));
  const r = unroll(step, theta, s0, 8, false);
  expect(r.iters.map((x) => x[0])).toEqual([1, 2, 3, 0, 1, 2, 3, 0]);
  expect(r.masks.map((x) => x[0])).toEqual([1, 1, 1, 0, 1, 1, 1, 0]);
  expect(r.dones.map((x) => x[0])).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
  expect(r.losses[3][0]).toBe(0);
  treeDispose([r.state, theta]);
});

const hasData = fs.existsSync(`${SYSTEM_FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`) || !!process.env.LOPT_DATA_DIR;
// A randomly initialised MLPLOpt (the reference's θ for PRNGKey(0)) need not descend; the θ
// meta-trained on the seed experiment (pretrained/mlp-lopt-seed) must.
(hasData ? test : test.skip)('the meta-trained MLPLOpt (pretrained/mlp-lopt-seed) lowers the Fashion-MNIST MLP loss over 100 inner steps', async () => {
  const lopt = new MLPLOpt();
  const theta = await loadTree(path.join(__dirname, '../../../../pretrained/mlp-lopt-seed/theta.tree'));
  const step = new VectorizedLOptTruncatedStep(singleTaskToFamily(new ImageMLP_FashionMnist8_Relu32()), lopt, new ConstantTruncationSchedule(1000), { numTasks: 2 });
  const s0 = step.initStepState(theta, null, random.PRNGKey(3));
  const r = unroll(step, theta, s0, 100, true);
  const mean = (rows: number[][]) => rows.flat().reduce((a, b) => a + b, 0) / rows.flat().length;
  const first = mean(r.losses.slice(0, 1));
  const last = mean(r.losses.slice(-10));
  expect(first).toBeGreaterThan(2.0); // ln 10 ≈ 2.30 at init
  expect(last).toBeLessThan(first - 0.5);
  treeDispose([r.state, theta]);
});
if (!hasData) console.warn('Fashion-MNIST files absent: the 100-step MLPLOpt training check is skipped (apt-get install dataset-fashion-mnist)');

test('no tensor leak across 1,000 unroll steps with resets (MLPLOpt, quadratic family)', () => {
  const lopt = new MLPLOpt();
  const theta = lopt.init(random.PRNGKey(0));
  const step = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily(10), lopt, new LogUniformLengthSchedule({ minLength: 5, maxLength: 20 }), { numTasks: 4, randomInitialIterationOffset: 20 });
  const state = step.initStepState(theta, null, random.PRNGKey(4));
  let r = unroll(step, theta, state, 10, false);
  const before = tf.memory().numTensors;
  r = unroll(step, theta, r.state, 1000, false, 7);
  expect(tf.memory().numTensors).toBe(before);
  expect(r.masks.flat().filter((m) => m === 0).length).toBeGreaterThan(100); // many resets happened
  treeDispose([r.state, theta]);
});

test('a task that resets gets the same new task, params and optimizer state whether or not the other tasks reset', () => {
  // Only the resetting rows are sampled and initialised; each row's draws come from its own keys,
  // so rows 1 and 3 of a step where they alone reset equal those rows when all four reset, and
  // rows 0 and 2 equal a step where none resets.
  const lopt = new MLPLOpt();
  const theta = lopt.init(random.PRNGKey(0));
  const step = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamily(10), lopt, new LogUniformLengthSchedule({ minLength: 5, maxLength: 20 }), { numTasks: 4 });
  const s0 = step.initStepState(theta, null, random.PRNGKey(5));
  const run = (flags: number[]) => {
    const isDone = hostTensor(flags, 'bool');
    const [next, ys] = step.unrollStep(theta, { ...s0, isDone }, random.PRNGKey(9), null, null);
    isDone.dispose();
    return { next, ys };
  };
  const all = run([1, 1, 1, 1]);
  const some = run([0, 1, 0, 1]);
  const none = run([0, 0, 0, 0]);
  const rowsOf = (st: TruncatedUnrollState, rows: number[]) => treeLeaves<tf.Tensor>({ o: st.innerOptState, p: st.taskParam, l: st.truncationState }).map((l) => tf.tidy(() => Array.from(tf.gather(l, rows).dataSync())));
  expect(rowsOf(some.next, [1, 3])).toEqual(rowsOf(all.next, [1, 3]));
  expect(rowsOf(some.next, [1, 3])).not.toEqual(rowsOf(none.next, [1, 3])); // they did reset
  expect(rowsOf(some.next, [0, 2])).toEqual(rowsOf(none.next, [0, 2]));
  expect(Array.from(some.ys.loss.dataSync())).toEqual([none.ys.loss.dataSync()[0], 0, none.ys.loss.dataSync()[2], 0]);
  for (const r of [all, some, none]) treeDispose([r.next, r.ys.loss, r.ys.taskParam]);
  treeDispose([s0, theta]);
});

test('getBatchIndices + batchFromIndices (a thread with its own copy of the data) equal getBatch, whole or one step; null for streams without indices', () => {
  // two independent copies of a small image dataset, as two threads would hold
  const datasets = () =>
    new SplitDatasets(
      Object.fromEntries(
        ['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [
          s,
          new TensorBatchStream(
            () => ({ image: tf.reshape(tf.range(0, 40 * 4, 1, 'float32'), [40, 2, 2, 1]), label: tf.tensor1d(Array.from({ length: 40 }, (_, j) => j % 10), 'int32') }),
            4,
            { image: { shape: [2, 2, 1], dtype: 'float32' }, label: { shape: [], dtype: 'int32' } },
            i,
          ),
        ]),
      ) as Record<SplitName, TensorBatchStream>,
      { num_classes: 10 },
    );
  const stepOf = (metaLossSplit: 'outer_valid' | undefined) =>
    new VectorizedLOptTruncatedStep(singleTaskToFamily(new ImageMLPTask({ datasets: datasets(), imageSize: [2, 2] })), new MLPLOpt(), new ConstantTruncationSchedule(5), {
      numTasks: 3,
      metaLossSplit,
    });
  for (const split of [undefined, 'outer_valid'] as const) {
    const main = stepOf(split);
    const twin = stepOf(split);
    for (let i = 0; i < 4; i++) {
      const want = twin.getBatch(2) as any;
      const desc = main.getBatchIndices(2)!;
      expect(desc.steps).toBe(2);
      expect(desc.train.indices.length).toBe(2 * 3 * 4);
      const got = twin.batchFromIndices(desc) as any;
      const flat = (t: any) => (split ? [t.train.image, t.train.label, t.meta.image, t.meta.label] : [t.image, t.label]).map((x: tf.Tensor) => Array.from(x.dataSync()));
      expect(flat(got)).toEqual(flat(want));
      // one step's batch alone (what a branch thread gathers at each step): step k of the whole
      for (const k of [0, 1]) {
        const one = twin.batchFromIndices(desc, k) as any;
        const wantK = tf.tidy(() => treeMap((l: tf.Tensor) => tf.squeeze(tf.slice(l, [k], [1]), [0]), want)) as any;
        expect(treeLeaves<tf.Tensor>(one).map((l) => l.shape)).toEqual(treeLeaves<tf.Tensor>(wantK).map((l) => l.shape));
        expect(flat(one)).toEqual(flat(wantK));
        treeDispose([one, wantK]);
      }
      expect(() => twin.batchFromIndices(desc, 2)).toThrow(/step 2 is not in \[0, 1\]/);
      treeDispose([want, got]);
    }
  }
  // noise streams are not index-addressable: null, and the stream has not moved
  const noisy = new VectorizedLOptTruncatedStep(new FixedDimQuadraticFamilyData(), new MLPLOpt(), new ConstantTruncationSchedule(5), { numTasks: 2 });
  const before = JSON.stringify(noisy.taskFamily.datasets!.split('train').getState());
  expect(noisy.getBatchIndices(3)).toBeNull();
  expect(JSON.stringify(noisy.taskFamily.datasets!.split('train').getState())).toBe(before);
});
