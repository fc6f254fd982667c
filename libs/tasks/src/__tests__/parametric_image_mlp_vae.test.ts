/**
 * ParametricImageMLPVAE beyond the golden values: N stacked tasks with different switches and
 * activations, each with its own loss key, equal N single tasks (loss, gradient, normalizer on
 * [T, N]); the family is registered; the loss needs its keys.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeUnstack } from '@lopt/core';
import { CFGObject, LogFeature, objectFromConfig, ParametricImageMLPVAE, sampleImageMlpVae } from '../index';

const K = random.PRNGKey;

test('registered; N stacked tasks (every switch differing) equal N single tasks', () => {
  expect(registry.list('task_family').map((e) => e.name)).toContain('ParametricImageMLPVAE');
  const fam = new ParametricImageMLPVAE({ batchSize: 3, imageSize: [4, 4], encHiddenSizes: [5, 4], decHiddenSizes: [6], nZ: 3 });
  // every (center_data, per_dim_loss) combination, each with its own activation and initializer
  const rowsCfg = [
    { act: 0, init: 2, center: false, perDim: false },
    { act: 4, init: 0, center: true, perDim: false },
    { act: 10, init: 1, center: false, perDim: true },
    { act: 7, init: 2, center: true, perDim: true },
  ];
  const keys = rowsCfg.map((_, i) => K(i));
  const paramsOf = (cs: typeof rowsCfg) => ({
    initializer: { index: tf.tensor1d(cs.map((c) => c.init), 'int32'), init_scale: tf.tensor1d(cs.map(() => 0.7), 'float32') },
    activation: { index: tf.tensor1d(cs.map((c) => c.act), 'int32') },
    center_data: tf.tensor1d(cs.map((c) => c.center), 'bool'),
    per_dim_loss: tf.tensor1d(cs.map((c) => c.perDim), 'bool'),
  });
  const task = fam.taskFn(paramsOf(rowsCfg));
  const params = task.initBatch(keys);
  const lossKeys = keys.map((_, i) => K(100 + i));
  const data = { image: tf.randomUniform([keys.length, 3, 4, 4, 1], 0, 1, 'float32', 9), label: tf.zeros([keys.length, 3], 'int32') };
  const out = task.valueAndGradBatch(params, null, lossKeys, data);
  const losses = tf.stack([out.loss, tf.mul(out.loss, 30)]); // [T=2, N]
  const norms = task.normalizer(losses).arraySync() as number[][];
  const rows = treeUnstack(params as any) as any[];
  const grads = treeUnstack(out.grad as any) as any[];
  keys.forEach((_, i) => {
    const single = fam.taskFn(paramsOf([rowsCfg[i]]));
    const d = { image: data.image.slice([i], [1]).squeeze([0]), label: data.label.slice([i], [1]).squeeze([0]) };
    const o = single.valueAndGrad(rows[i], null, lossKeys[i], d);
    expect(Math.abs(o.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(o.loss.dataSync()[0])));
    treeLeaves<tf.Tensor>(o.grad).forEach((l, j) => expect(tf.max(tf.abs(tf.sub(l, treeLeaves<tf.Tensor>(grads[i])[j]))).dataSync()[0]).toBeLessThan(1e-5));
    const n = single.normalizer(tf.tensor1d([o.loss.dataSync()[0], 30 * o.loss.dataSync()[0]])).arraySync() as number[];
    expect(Math.abs(n[0] - norms[0][i])).toBeLessThan(1e-5);
    expect(Math.abs(n[1] - norms[1][i])).toBeLessThan(1e-5);
  });
  expect(() => task.lossBatch(params, null, data)).toThrow(/needs one key per task/);
});

test('a sample_image_mlp_vae config on Fashion-MNIST builds the family it describes', () => {
  // PRNGKey(i) for the first i whose sampled dataset is fashion_mnist_datasets
  let i = 0;
  while ((sampleImageMlpVae(K(i)).kwargs.datasets as CFGObject).obj !== 'fashion_mnist_datasets') i++;
  const cfg = sampleImageMlpVae(K(i));
  const fam = objectFromConfig(cfg) as ParametricImageMLPVAE;
  expect(fam).toBeInstanceOf(ParametricImageMLPVAE);
  const ds = (cfg.kwargs.datasets as CFGObject).kwargs;
  const size = (ds.image_size as LogFeature<number[]>).value;
  expect([fam.encHiddenSizes, fam.decHiddenSizes, fam.nZ]).toEqual(
    ['enc_hidden_sizes', 'dec_hidden_sizes', 'n_z'].map((k) => (cfg.kwargs[k] as LogFeature<unknown>).value),
  );
  expect(fam.features).toBe(size[0] * size[1]);
  const ab = fam.datasets!.split('train').abstractBatch() as any;
  expect(ab.image.shape).toEqual([(ds.batch_size as LogFeature<number>).value, size[0], size[1], 1]);
});
