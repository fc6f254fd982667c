/**
 * ReparamWeights / ReparamWeightsFamily beyond the golden values: the function is unchanged (same
 * loss at init), the gradient is the chain rule's, N stacked tasks equal N single tasks at every
 * level, and the registry builds the family around any registered family or task.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeUnstack } from '@lopt/core';
import { FixedDimQuadraticFamily, ParametricImageMLP, REPARAM_LEVELS, ReparamWeights, ReparamWeightsFamily } from '../index';

const K = random.PRNGKey;
const inner = () => new ParametricImageMLP({ batchSize: 3, imageSize: [4, 4], hiddenLayers: [5], numClasses: 10 });
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
const batch = (n: number) => ({
  image: tf.randomUniform([n, 3, 4, 4, 1], 0, 1, 'float32', 3),
  label: tf.tensor2d(Array.from({ length: n * 3 }, (_, i) => i % 10), [n, 3], 'int32'),
});

test('same function, rescaled parameters: loss at init equals the inner task at its init; gradient = s · f\'(w·s)', () => {
  const fam = inner();
  const tp = fam.sample(K(1));
  const base = fam.taskFn(tp);
  const task = new ReparamWeights(base, 7.5);
  const data = { image: tf.randomUniform([3, 4, 4, 1], 0, 1, 'float32', 4), label: tf.tensor1d([1, 2, 3], 'int32') };
  const p0 = base.init(K(2));
  const p = task.init(K(2));
  treeLeaves<tf.Tensor>(p).forEach((l, i) => expect(maxDiff(tf.mul(l, 7.5), treeLeaves<tf.Tensor>(p0)[i])).toBeLessThan(1e-6));
  expect(Math.abs(task.loss(p, null, data).dataSync()[0] - base.loss(p0, null, data).dataSync()[0])).toBeLessThan(1e-5);
  const g = task.valueAndGrad(p, null, null, data).grad;
  const g0 = base.valueAndGrad(p0, null, null, data).grad;
  treeLeaves<tf.Tensor>(g).forEach((l, i) => expect(maxDiff(l, tf.mul(treeLeaves<tf.Tensor>(g0)[i], 7.5))).toBeLessThan(1e-5));
});

test.each(REPARAM_LEVELS.map((l) => [l]))('level %s: N stacked tasks equal N single tasks (scales, init, loss, gradient)', (level) => {
  const fam = new ReparamWeightsFamily(inner(), { level });
  const keys = [K(0), K(1), K(2)];
  const stackedTask = fam.taskFn(fam.sampleBatch(keys));
  const initKeys = [K(10), K(11), K(12)];
  const params = stackedTask.initBatch(initKeys);
  const data = batch(3);
  const out = stackedTask.valueAndGradBatch(params, null, null, data);
  const rows = treeUnstack(params as any) as any[];
  const gradRows = treeUnstack(out.grad as any) as any[];
  keys.forEach((k, i) => {
    const single = fam.taskFn(fam.sample(k));
    const p = single.init(initKeys[i]);
    treeLeaves<tf.Tensor>(p).forEach((l, j) => expect(maxDiff(l, treeLeaves<tf.Tensor>(rows[i])[j])).toBe(0));
    const d = { image: data.image.slice([i], [1]).squeeze([0]), label: data.label.slice([i], [1]).squeeze([0]) };
    const o = single.valueAndGrad(p, null, null, d);
    expect(Math.abs(o.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5);
    treeLeaves<tf.Tensor>(o.grad).forEach((l, j) => expect(maxDiff(l, treeLeaves<tf.Tensor>(gradRows[i])[j])).toBeLessThan(1e-4));
  });
  // the scales differ between tasks and lie in the range
  const s = treeLeaves<tf.Tensor>((stackedTask as ReparamWeights).paramScale as any)[0];
  const v = Array.from(s.dataSync());
  v.forEach((x) => expect(x >= 0.01 && x <= 100).toBe(true));
  expect(new Set(v.slice(0, 3)).size).toBeGreaterThan(1);
});

test('registered: wraps any registered family or single task, named as the reference names it; bad options refused', () => {
  const fam = registry.create('task_family', 'ReparamWeightsFamily', { taskFamily: { name: 'FixedDimQuadraticFamily', config: { dim: 4 } }, level: 'global' });
  expect(fam.name).toBe('ReparamWeightsglobal_FixedDimQuadraticFamily');
  expect((fam as ReparamWeightsFamily).taskFamily).toBeInstanceOf(FixedDimQuadraticFamily);
  const one = registry.create('task_family', 'ReparamWeightsFamily', { taskFamily: { name: 'QuadraticTask' }, level: 'tensor' });
  expect(one.name).toBe('ReparamWeightstensor_QuadraticTask');
  expect(() => registry.parseConfig('task_family', 'ReparamWeightsFamily', { taskFamily: { name: 'QuadraticTask' }, level: 'layer' })).toThrow(/level/);
  expect(() => registry.parseConfig('task_family', 'ReparamWeightsFamily', { taskFamily: { name: 'QuadraticTask' }, level: 'global', paramScaleRange: [10, 1] })).toThrow(
    /paramScaleRange/,
  );
  expect(() => registry.create('task_family', 'ReparamWeightsFamily', { taskFamily: { name: 'Nope' }, level: 'global' })).toThrow(/unknown task or task family 'Nope' \(allowed: .*QuadraticTask/);
});
