/**
 * ParametricImageMLP beyond the golden values: N stacked tasks with different activations and
 * initializers equal N single tasks, configs from sampleImageMlp build families where lopt-ts has
 * the dataset and say which it lacks otherwise, and bad task params are refused.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeUnstack } from '@lopt/core';
import { CFGObject, LogFeature, objectFromConfig, ParametricImageMLP, parametricImageMlpFromConfig, sampleImageMlp } from '../index';

const K = random.PRNGKey;
const family = () => new ParametricImageMLP({ batchSize: 5, imageSize: [4, 4], hiddenLayers: [6, 7], numClasses: 10 });

/** Three tasks: relu/orth, sin/uniform, gelu/variance-uniform. */
const stacked = () => ({
  activation: { index: tf.tensor1d([0, 6, 10], 'int32') },
  initializer: { index: tf.tensor1d([0, 1, 4], 'int32'), init_scale: tf.tensor1d([0.7, 1.5, 1.1]) },
});
const row = (i: number) => {
  const s = stacked();
  return {
    activation: { index: s.activation.index.slice([i], [1]).reshape([]) },
    initializer: { index: s.initializer.index.slice([i], [1]).reshape([]), init_scale: s.initializer.init_scale.slice([i], [1]).reshape([]) },
  };
};

test('registered as a task family; N stacked tasks = N single tasks (init, loss, gradient)', () => {
  expect(registry.list('task_family').map((e) => e.name)).toContain('ParametricImageMLP');
  const f = family();
  const keys = [K(1), K(2), K(3)];
  const task = f.taskFn(stacked());
  const params = task.initBatch(keys);
  const data = {
    image: tf.randomUniform([3, 5, 4, 4, 1], 0, 1, 'float32', 7),
    label: tf.tensor2d([[1, 2, 3, 4, 5], [0, 9, 8, 7, 6], [2, 2, 2, 2, 2]], [3, 5], 'int32'),
  };
  const out = task.valueAndGradBatch(params, null, null, data);
  const rows = treeUnstack(params as any) as any[];
  for (let i = 0; i < 3; i++) {
    const single = f.taskFn(row(i));
    const p = single.init(keys[i]);
    treeLeaves<tf.Tensor>(p).forEach((l, j) => expect(l.sub(treeLeaves<tf.Tensor>(rows[i])[j]).abs().max().dataSync()[0]).toBe(0));
    const d = { image: data.image.slice([i], [1]).squeeze([0]), label: data.label.slice([i], [1]).squeeze([0]) };
    const o = single.valueAndGrad(p, null, null, d);
    expect(Math.abs(o.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-6);
    const gRow = treeLeaves<tf.Tensor>(treeUnstack(out.grad as any)[i]);
    treeLeaves<tf.Tensor>(o.grad).forEach((l, j) => expect(l.sub(gRow[j]).abs().max().dataSync()[0]).toBeLessThan(1e-6));
  }
});

test('sampled task params drive the task: different keys give different activations/initializers', () => {
  const f = family();
  const tp = f.sampleBatch([K(0), K(1), K(2), K(3)]) as any;
  expect(tp.activation.index.shape).toEqual([4]);
  expect(tp.initializer.init_scale.shape).toEqual([4]);
  const scales = Array.from(tp.initializer.init_scale.dataSync() as Float32Array);
  scales.forEach((s) => expect(s >= 0.5 && s < 2).toBe(true));
  const task = f.taskFn(tp);
  const params = task.initBatch([K(5), K(5), K(5), K(5)]) as any;
  // same init key, different sampled initializers or scales -> different first-layer weights
  const w = params['mlp/~/linear_0'].w as tf.Tensor;
  const diffs = w.sub(w.slice([0], [1])).abs().sum([1, 2]).arraySync() as number[];
  expect(diffs[0]).toBe(0);
  diffs.slice(1).forEach((d) => expect(d).toBeGreaterThan(0));
});

test('bad task params and unknown datasets are refused with the allowed values', () => {
  const f = family();
  const bad = { activation: { index: tf.scalar(12, 'int32') }, initializer: { index: tf.scalar(0, 'int32'), init_scale: tf.scalar(1) } };
  expect(() => f.taskFn(bad)).toThrow(/activation index must be 0\.\.11, got 12/);
  const badInit = { activation: { index: tf.scalar(0, 'int32') }, initializer: { index: tf.scalar(5, 'int32'), init_scale: tf.scalar(1) } };
  expect(() => f.taskFn(badInit).init(K(0))).toThrow(/initializer index must be 0\.\.4, got 5/);
  expect(() => objectFromConfig(new CFGObject('food101_datasets', { batch_size: 4, image_size: new LogFeature([8, 8]) }))).toThrow(
    /'food101_datasets' is not available in lopt-ts \(available: .*cifar100_datasets.*fashion_mnist_datasets/,
  );
});

test('a sample_image_mlp config on Fashion-MNIST builds the family it describes', () => {
  // PRNGKey(i) for the first i whose sampled dataset is fashion_mnist_datasets
  let i = 0;
  while ((sampleImageMlp(K(i)).kwargs.datasets as CFGObject).obj !== 'fashion_mnist_datasets') i++;
  const cfg = sampleImageMlp(K(i));
  const fam = parametricImageMlpFromConfig(cfg);
  const ds = (cfg.kwargs.datasets as CFGObject).kwargs;
  const size = (ds.image_size as LogFeature<number[]>).value;
  expect(fam.hiddenLayers).toEqual((cfg.kwargs.hidden_layers as LogFeature<number[]>).value);
  expect(fam.sizes[0]).toBe(size[0] * size[1]);
  expect(fam.numClasses).toBe(10);
  const ab = fam.datasets!.split('train').abstractBatch() as any;
  expect(ab.image.shape).toEqual([(ds.batch_size as LogFeature<number>).value, size[0], size[1], 1]);
});

test('SampledImageMLP: the family sample_image_mlp(PRNGKey(seed)) describes, named by seed, on any sampled dataset', () => {
  const fam = random.withConfig({ threefryPartitionable: false }, () => registry.create('task_family', 'SampledImageMLP', { seed: 7 })) as ParametricImageMLP;
  // legacy mode, seed 7 (golden sample_image_mlp[7]): hidden [64], fashion_mnist 4x4, batch 33
  expect([fam.name, fam.sizes, fam.numClasses]).toEqual(['SampledImageMLP_7', [16, 64, 10], 10]);
  expect((fam.datasets!.split('train').abstractBatch() as any).image.shape).toEqual([33, 4, 4, 1]);
  // seed 1 samples mnist_datasets (golden sample_image_mlp[1]): built from the config, its files read on the first batch
  const mnistCfg = random.withConfig({ threefryPartitionable: false }, () => sampleImageMlp(K(1)));
  expect((mnistCfg.kwargs.datasets as CFGObject).obj).toBe('mnist_datasets');
  const mnist = random.withConfig({ threefryPartitionable: false }, () => registry.create('task_family', 'SampledImageMLP', { seed: 1 })) as ParametricImageMLP;
  expect(mnist.numClasses).toBe(10);
  expect((mnist.datasets!.split('train').abstractBatch() as any).image.shape.slice(-1)).toEqual([1]);
  // seed 0 samples cifar100_datasets 28x28, batch 5: built from the config, its files read on the first batch
  const cifar = random.withConfig({ threefryPartitionable: false }, () => registry.create('task_family', 'SampledImageMLP', { seed: 0 })) as ParametricImageMLP;
  expect([cifar.sizes, cifar.numClasses]).toEqual([[28 * 28 * 3, 13, 13, 13, 13, 100], 100]);
  expect((cifar.datasets!.split('train').abstractBatch() as any).image.shape).toEqual([5, 28, 28, 3]);
  expect(() => registry.parseConfig('task_family', 'SampledImageMLP', { seed: -1 })).toThrow(/seed/);
});
