/**
 * ResNet tasks beyond the golden values: every name registered (fixed tasks, family, dataset
 * functions), the max pool against tf.maxPool (values and gradients, cpu), stacked tasks (N = 2)
 * equal each task alone with state threaded through, the family's per-row activations and
 * normalizer, v1 blocks without bottleneck, and no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, random, registry, treeLeaves } from '@lopt/core';
import { useTestBackend } from './helpers';
import {
  DATASET_FUNCTIONS,
  FIXED_RESNET_TASKS,
  maxPool3x3Stride2Same,
  ParametricImageResNet,
  resnetForward,
  resnetHaikuInit,
  ResnetTask,
  SplitDatasets,
  TensorBatchStream,
  type ResNetSpec,
  type SplitName,
} from '../index';

beforeAll(async () => {
  await useTestBackend();
});

/** A tiny 8x8x1 dataset of 8 examples (no files). */
function tinyDatasets() {
  const load = () => ({
    image: tf.tidy(() => random.uniform(random.PRNGKey(3), [8, 8, 8, 1])),
    label: tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'),
  });
  const abstract = { image: { shape: [8, 8, 1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, 4, abstract, i)]));
  return new SplitDatasets(streams as Record<SplitName, TensorBatchStream>, { num_classes: 10 });
}

test('every resnet.py name, the Fashion-MNIST twins, the family and the dataset functions are registered', () => {
  const names = FIXED_RESNET_TASKS.map((t) => t.name);
  for (let i = 0; i < 11; i++) expect(names).toContain(`Resnet_MultiRuntime_${i}`);
  expect(names).toContain('Resnet_FashionMnist_MultiRuntime_0');
  for (const n of [...names, 'ResnetTask']) expect(registry.has('task', n)).toBe(true);
  expect(registry.has('task_family', 'ParametricImageResNet')).toBe(true);
  expect(DATASET_FUNCTIONS.mnist_datasets).toBe('mnist');
  expect(DATASET_FUNCTIONS.imagenet16_datasets).toBe('imagenet16');
  const t = registry.create<ResnetTask>('task', 'Resnet_MultiRuntime_7', {});
  expect(t.spec.channelsPerGroup).toEqual([256, 512, 512, 1024]);
  expect(t.imageShape).toEqual([32, 32, 3]);
  expect(t.spec.numClasses).toBe(1000);
});

test.each([[8, 8], [7, 5], [1, 1], [6, 3]])('max pool 3x3/2 SAME of a %ix%i map = tf.maxPool, values and gradients', (h, w) => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.tensor4d(Array.from({ length: 2 * h * w * 3 }, (_, i) => Math.sin(i * 1.3)), [2, h, w, 3]);
    const up = tf.tensor4d(Array.from({ length: 2 * Math.ceil(h / 2) * Math.ceil(w / 2) * 3 }, (_, i) => Math.cos(i * 0.7)), [2, Math.ceil(h / 2), Math.ceil(w / 2), 3]);
    const a = maxPool3x3Stride2Same(x);
    const b = tf.maxPool(x, 3, 2, 'same');
    expect(a.shape).toEqual(b.shape);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    const ga = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(maxPool3x3Stride2Same(v as tf.Tensor4D), up)))(x);
    const gb = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 3, 2, 'same'), up)))(x);
    expect(tf.max(tf.abs(tf.sub(ga, gb))).dataSync()[0]).toBeLessThan(1e-6);
  });
  expect(tf.memory().numTensors).toBe(before);
});

test('v1 blocks without bottleneck: parameter names, shapes and a finite forward', () => {
  const spec: ResNetSpec = {
    blocksPerGroup: [1, 1, 1, 1], channelsPerGroup: [4, 4, 8, 8], useProjection: [false, true, true, true], bottleneck: false, resnetV2: false,
    initialConvChannels: 4, initialConvKernelSize: 3, initialConvStride: 1, maxPool: false, numClasses: 3, inChannels: 1,
  };
  const before = tf.memory().numTensors;
  const p = haikuInit(random.PRNGKey(0), (hk) => resnetHaikuInit(spec, hk));
  expect(Object.keys(p)).toContain('res_net/~/initial_batchnorm');
  expect(p['res_net/~/block_group_0/~/block_0/~/shortcut_conv']).toBeUndefined();
  expect(p['res_net/~/block_group_1/~/block_0/~/shortcut_conv'].w.shape).toEqual([1, 1, 4, 4]);
  expect(p['res_net/~/block_group_1/~/block_0/~/conv_0'].w.shape).toEqual([3, 3, 4, 4]);
  expect(p['res_net/~/block_group_1/~/block_0/~/batchnorm_2']).toBeUndefined();
  const out = tf.tidy(() => resnetForward(spec, p, null, random.uniform(random.PRNGKey(1), [2, 8, 8, 1]) as tf.Tensor4D));
  expect(out.logits.shape).toEqual([2, 3]);
  expect(Object.keys(out.state)).toContain('res_net/~/initial_batchnorm/~/mean_ema');
  tf.dispose([out.logits, ...treeLeaves<tf.Tensor>(out.state), ...treeLeaves<tf.Tensor>(p)]);
  expect(tf.memory().numTensors).toBe(before);
});

test('N = 2 stacked ResnetTasks equal each task alone; state threads through two steps; no leaks', () => {
  const task = new ResnetTask({ datasets: tinyDatasets(), channelsPerGroup: [4, 8, 8, 8], initialConvKernelSize: 3 });
  tf.dispose(task.datasets!.split('train').next([2]) as any); // loads the split (kept by the stream)
  const before = tf.memory().numTensors;
  const keys = [random.PRNGKey(0), random.PRNGKey(5)];
  const [params, state] = task.initWithStateBatch(keys);
  const data = task.datasets!.split('train').next([2]) as { image: tf.Tensor; label: tf.Tensor };
  const stacked = task.valueAndGradBatch(params, state, null, data);
  const stacked2 = task.valueAndGradBatch(params, stacked.state, null, data);
  keys.forEach((k, n) => tf.tidy(() => {
    const [p1, s1] = task.initWithState(k);
    const batch = { image: tf.slice(data.image, [n], [1]).squeeze([0]), label: tf.slice(data.label, [n], [1]).squeeze([0]) };
    const one = task.valueAndGrad(p1, s1, null, batch);
    expect(Math.abs(one.loss.dataSync()[0] - stacked.loss.dataSync()[n])).toBeLessThan(1e-5);
    const g1 = (one.grad as any)['res_net/~/initial_conv'].w as tf.Tensor;
    const gN = tf.slice((stacked.grad as any)['res_net/~/initial_conv'].w, [n], [1]).squeeze([0]);
    expect(tf.max(tf.abs(tf.sub(g1, gN))).dataSync()[0]).toBeLessThan(1e-5);
    // the second step's state: counter 2 in every EMA
    const c = (stacked2.state as any)['res_net/~/final_batchnorm/~/mean_ema'].counter as tf.Tensor;
    expect(Array.from(c.dataSync())).toEqual([2, 2]);
  }));
  tf.dispose([params, state, data, stacked, stacked2] as any);
  expect(tf.memory().numTensors).toBe(before);
});

test('ParametricImageResNet: stacked rows use their own activations; normalizer; init reads a train batch', () => {
  const family = new ParametricImageResNet({ datasets: tinyDatasets(), initialConvChannels: 4, channelsPerGroup: [4, 4, 8, 8], maxPool: true });
  const keys = [random.PRNGKey(1), random.PRNGKey(2)];
  const tp = { activation: { index: tf.tensor1d([0, 4], 'int32') } };
  const task = family.taskFn(tp);
  const train = family.datasets!.split('train');
  const pos = train.getState().position;
  const [params, state] = task.initWithStateBatch(keys);
  expect(train.getState().position).toBe(pos + 1);
  const data = train.next([2]) as { image: tf.Tensor; label: tf.Tensor };
  const both = task.lossWithStateBatch(params, state, null, data);
  const relu = family.taskFn({ activation: { index: tf.tensor1d([0, 0], 'int32') } }).lossWithStateBatch(params, state, null, data);
  const tanh = family.taskFn({ activation: { index: tf.tensor1d([4, 4], 'int32') } }).lossWithStateBatch(params, state, null, data);
  const l = both.loss.dataSync();
  expect(Math.abs(l[0] - relu.loss.dataSync()[0])).toBeLessThan(1e-6);
  expect(Math.abs(l[1] - tanh.loss.dataSync()[1])).toBeLessThan(1e-6);
  const norm = task.normalizer(tf.tensor1d([Math.log(20), 100, -1, NaN]));
  expect(Array.from(norm.dataSync()).map((v) => Math.round(v * 1e5) / 1e5)).toEqual([10, 10, 0, 10]);
  tf.dispose([tp, params, state, data, both, relu, tanh, norm] as any);
});
