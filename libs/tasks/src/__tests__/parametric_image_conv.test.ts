/**
 * ParametricImageConv beyond the golden values: registered, N stacked tasks with different
 * activations and initializers equal N single tasks, and a bad layer spec is refused.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeUnstack } from '@lopt/core';
import { ParametricImageConv } from '../index';

const K = random.PRNGKey;

test('registered; N stacked tasks equal N single tasks (init, loss, gradient)', () => {
  expect(registry.list('task_family').map((e) => e.name)).toContain('ParametricImageConv');
  const fam = new ParametricImageConv({ batchSize: 2, imageSize: [6, 6], hiddenSizes: [3, 4], kernelSizes: [[3, 3], [3, 3]], strides: [2, 1] });
  const keys = [K(0), K(1), K(2)];
  const tp = fam.sampleBatch(keys) as any;
  expect(new Set(Array.from(tp.activation.index.dataSync())).size).toBeGreaterThan(1);
  const task = fam.taskFn(tp);
  const params = task.initBatch(keys);
  const data = { image: tf.randomUniform([3, 2, 6, 6, 1], 0, 1, 'float32', 5), label: tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32') };
  const out = task.valueAndGradBatch(params, null, null, data);
  const rows = treeUnstack(params as any) as any[];
  const grads = treeUnstack(out.grad as any) as any[];
  keys.forEach((k, i) => {
    const single = fam.taskFn(fam.sample(k));
    const p = single.init(k);
    treeLeaves<tf.Tensor>(p).forEach((l, j) => expect(tf.max(tf.abs(tf.sub(l, treeLeaves<tf.Tensor>(rows[i])[j]))).dataSync()[0]).toBe(0));
    const d = { image: data.image.slice([i], [1]).squeeze([0]), label: data.label.slice([i], [1]).squeeze([0]) };
    const o = single.valueAndGrad(p, null, null, d);
    expect(Math.abs(o.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5);
    treeLeaves<tf.Tensor>(o.grad).forEach((l, j) => expect(tf.max(tf.abs(tf.sub(l, treeLeaves<tf.Tensor>(grads[i])[j]))).dataSync()[0]).toBeLessThan(1e-5));
  });
});

test('layer lists must line up', () => {
  expect(() => registry.parseConfig('task_family', 'ParametricImageConv', { hiddenSizes: [4, 5], kernelSizes: [[3, 3]], strides: [1, 1] })).toThrow(/kernelSizes/);
});

test('datasetName picks Fashion-MNIST, MNIST, CIFAR-10/100 or imagenet16 (files read on the first batch); numClasses defaults to the dataset\'s', () => {
  const c100 = registry.create('task_family', 'ParametricImageConv', { datasetName: 'cifar100', batchSize: 4 }) as ParametricImageConv;
  expect([c100.numClasses, c100.channels, (c100.datasets!.split('train').abstractBatch() as any).image.shape]).toEqual([100, 3, [4, 8, 8, 3]]);
  const fm = registry.create('task_family', 'ParametricImageMLP', {}) as any;
  expect(fm.numClasses).toBe(10);
  const inet = registry.create('task_family', 'ParametricImageConv', { datasetName: 'imagenet16', batchSize: 4 }) as ParametricImageConv;
  expect([inet.numClasses, inet.channels]).toEqual([1000, 3]);
  expect(() => registry.parseConfig('task_family', 'ParametricImageMLPAE', { datasetName: 'svhn' })).toThrow(/datasetName.*fashion_mnist.*cifar10.*cifar100|fashion_mnist.*cifar10.*cifar100/);
});
