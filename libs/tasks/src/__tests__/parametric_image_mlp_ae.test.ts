/**
 * ParametricImageMLPAE beyond the golden values: N stacked tasks with different switches equal N
 * single tasks (loss, gradient, normalizer on [T, N]), and the family is registered.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, treeUnstack } from '@lopt/core';
import { ParametricImageMLPAE } from '../index';

const K = random.PRNGKey;

test('registered; N stacked tasks (every switch differing) equal N single tasks', () => {
  expect(registry.list('task_family').map((e) => e.name)).toContain('ParametricImageMLPAE');
  const fam = new ParametricImageMLPAE({ batchSize: 3, imageSize: [4, 4], hiddenSizes: [5] });
  const keys = [K(0), K(6), K(7), K(10)]; // (legacy mode) each switch on for some tasks, off for others
  const tp = random.withConfig({ threefryPartitionable: false }, () => fam.sampleBatch(keys)) as any;
  const switches = ['log_loss', 'center_data', 'constrain_output'].map((s) => Array.from(tp[s].dataSync() as Uint8Array));
  switches.forEach((v) => expect(new Set(v).size).toBe(2));
  const task = fam.taskFn(tp);
  const params = task.initBatch(keys);
  const data = { image: tf.randomUniform([4, 3, 4, 4, 1], 0, 1, 'float32', 9), label: tf.zeros([4, 3], 'int32') };
  const out = task.valueAndGradBatch(params, null, null, data);
  const losses = tf.stack([out.loss, tf.mul(out.loss, 2)]); // [T=2, N]
  const norms = task.normalizer(losses).arraySync() as number[][];
  const rows = treeUnstack(params as any) as any[];
  const grads = treeUnstack(out.grad as any) as any[];
  keys.forEach((k, i) => {
    const single = fam.taskFn(random.withConfig({ threefryPartitionable: false }, () => fam.sample(k)));
    const d = { image: data.image.slice([i], [1]).squeeze([0]), label: data.label.slice([i], [1]).squeeze([0]) };
    const o = single.valueAndGrad(rows[i], null, null, d);
    expect(Math.abs(o.loss.dataSync()[0] - out.loss.dataSync()[i])).toBeLessThan(1e-5);
    treeLeaves<tf.Tensor>(o.grad).forEach((l, j) => expect(tf.max(tf.abs(tf.sub(l, treeLeaves<tf.Tensor>(grads[i])[j]))).dataSync()[0]).toBeLessThan(1e-5));
    const n = single.normalizer(tf.tensor1d([o.loss.dataSync()[0], 2 * o.loss.dataSync()[0]])).arraySync() as number[];
    expect(Math.abs(n[0] - norms[0][i])).toBeLessThan(1e-5);
    expect(Math.abs(n[1] - norms[1][i])).toBeLessThan(1e-5);
  });
});
