/**
 * ConvTask beyond the golden values: every name registered, stacked tasks (N = 2) equal each task
 * alone, batch-norm state threads through steps, the normalizer, and no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry } from '@lopt/core';
import { useTestBackend } from './helpers';
import { ConvTask, convTask, FIXED_CONV_TASKS, SplitDatasets, TensorBatchStream, type SplitName } from '../index';

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

test('every conv.py name (and the Fashion-MNIST additions) is a registered task', () => {
  const names = FIXED_CONV_TASKS.map((t) => t.name);
  for (const n of ['Conv_Cifar10_8_16x32', 'Conv_Cifar10_32x64x64', 'Conv_Cifar10_16_32x64x64', 'Conv_Cifar100_32x64x64', 'Conv_Cifar100_32x64x64_BS32',
    'Conv_Cifar100_32x64x64_Tanh', 'Conv_Cifar10_32x64x64_Tanh', 'Conv_imagenet32_16_32x64x64', 'Conv_imagenet16_16_64x128x128x128',
    'Conv_Cifar10_32x64x64_batchnorm', 'Conv_Cifar10_32x64x64_layernorm', 'Conv_FashionMnist_8_16x32']) {
    expect(names).toContain(n);
  }
  for (const n of names) {
    const t = registry.create<ConvTask>('task', n);
    expect(t).toBeInstanceOf(ConvTask);
    expect(t.name).toBe(n);
  }
  const t = registry.create<ConvTask>('task', 'ConvTask', { datasetName: 'fashion_mnist', imageSize: [8, 8], hiddenUnits: [4] });
  expect(t.imageShape).toEqual([8, 8, 1]);
  expect(() => convTask('Conv_Nope')).toThrow(/unknown conv task 'Conv_Nope'; allowed: Conv_Cifar10_8_16x32/);
});

test('imagenet tasks initialise; without the files their first batch names the folder and files it looked for', () => {
  const old = process.env.LOPT_DATA_DIR;
  process.env.LOPT_DATA_DIR = '/nonexistent-lopt-data';
  try {
    const t = convTask('Conv_imagenet32_16_32x64x64');
    expect(t.numClasses).toBe(1000);
    expect(() => t.datasets!.split('train').next()).toThrow(/imagenet32 not found: looked for imagenet2012_32\/\{train.tfrecords\*.*\/nonexistent-lopt-data/);
  } finally {
    if (old === undefined) delete process.env.LOPT_DATA_DIR;
    else process.env.LOPT_DATA_DIR = old;
  }
});

test.each(['none', 'batchnorm', 'layernorm'] as const)('N = 2 stacked (%s) equals each task alone; state threads through steps; no leaks', (norm) => {
  const task = new ConvTask({ datasets: tinyDatasets(), hiddenUnits: [4, 6], norm });
  tf.dispose(task.datasets!.split('train').next([2]) as any); // loads the split (kept by the stream)
  const before = tf.memory().numTensors;
  const keys = [random.PRNGKey(0), random.PRNGKey(5)];
  const [params, state] = task.initWithStateBatch(keys);
  const data = task.datasets!.split('train').next([2]) as { image: tf.Tensor; label: tf.Tensor };
  const both = task.valueAndGradBatch(params, state, null, data) as any;
  for (let i = 0; i < 2; i++) tf.tidy(() => {
    const [p, s] = task.initWithState(keys[i]);
    const d = { image: tf.gather(data.image, i), label: tf.gather(data.label, i) };
    const one = task.valueAndGrad(p, s, null, d) as any;
    expect(one.loss.dataSync()[0]).toBeCloseTo(both.loss.dataSync()[i], 5);
    const g2 = tf.gather(both.grad['conv2_d'].w, i);
    expect(tf.max(tf.abs(tf.sub(g2, one.grad['conv2_d'].w))).dataSync()[0]).toBeLessThan(1e-5);
    if (norm === 'batchnorm') {
      const k = 'batch_norm_1/~/var_ema';
      expect(tf.max(tf.abs(tf.sub(tf.gather(both.state![k].average, i), one.state![k].average))).dataSync()[0]).toBeLessThan(1e-5);
      // a second step from the returned state: counter 2, hidden = 0.9·h1 + 0.1·v
      const two = task.lossWithState(p, one.state, null, d)[1] as any;
      expect(two[k].counter.dataSync()[0]).toBe(2);
      const h = tf.add(tf.mul(one.state![k].hidden, 0.9), tf.mul(one.state![k].average, tf.sub(1, tf.scalar(0.9))));
      expect(tf.max(tf.abs(tf.sub(two[k].hidden, h))).dataSync()[0]).toBeLessThan(1e-6);
    } else {
      expect(one.state).toBeNull();
    }
  });
  tf.dispose([params, state, data, both] as any);
  expect(tf.memory().numTensors).toBe(before);
});

test('normalizer: clip(loss, 0, 1.5 ln C); NaN stays NaN (jnp.clip)', () => {
  const t = new ConvTask({ datasets: tinyDatasets(), hiddenUnits: [4] });
  const out = t.normalizer(tf.tensor1d([-1, 0.5, 100, NaN])).dataSync();
  expect(out[0]).toBe(0);
  expect(out[1]).toBeCloseTo(0.5, 6);
  expect(out[2]).toBeCloseTo(1.5 * Math.log(10), 5);
  expect(Number.isNaN(out[3])).toBe(true);
});
