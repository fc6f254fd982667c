/**
 * The whole-network native convnet kernel (`LoptConvNetValueAndGrad`, native/conv_net.h) against
 * the tf.js paths it replaces (`useConvNetKernel(false)`: conv2d, bias, activation, mean, linear,
 * autodiff), on cpu and wasm: the loss and every gradient leaf, for ConvTask (relu and tanh, odd
 * map sizes, 1 and 3 input channels), ParametricImageConv with each of its 12 sampled activations
 * (two per stack of N = 2) and every instruction-set variant the CPU runs; tasks the kernel does
 * not run (batch norm, max pool) keep the tf.js path. The images are zero in a band, so that
 * with zero biases many pre-activations are exactly 0 (as Fashion-MNIST's background gives at
 * init), where the activations' derivatives must be tf.js's.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random, treeFlatten, treeUnflatten, useNativeVariant, type PRNGKey } from '@lopt/core';
import { ConvTask, ParametricImageConv, SplitDatasets, TensorBatchStream, type Batch, type LossAndGrad, type ModelState, type Params, type SplitName } from '../index';
import { CONV_NET_KERNEL, convNetKernelFlops, convNetNative, useConvNetKernel } from '../conv_net';
import { resnetNative } from '../resnet_kernels';

/** A [h, w, c] image dataset of 2·batch random examples, zero in rows 0-3, `classes` labels (no files). */
function imageDatasets(h: number, w: number, c: number, batch: number, classes: number) {
  const n = 2 * batch;
  const load = () => ({
    image: tf.tidy(() => {
      const x = tf.sub(random.uniform(random.PRNGKey(7), [n, h, w, c]), 0.4);
      const rows = tf.reshape(tf.cast(tf.greater(tf.range(0, h), 3), 'float32'), [1, h, 1, 1]);
      return tf.mul(x, rows);
    }),
    label: tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7) % classes), 'int32'),
  });
  const abstract = { image: { shape: [h, w, c], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, batch, abstract, i)]));
  return new SplitDatasets(streams as Record<SplitName, TensorBatchStream>, { num_classes: classes });
}

/** params + scale·noise on the weights (`w` leaves; the biases stay as init made them, zero), a fixed key per leaf. */
function perturbWeights(params: Params, scale: number): Params {
  const [leaves, def] = treeFlatten<tf.Tensor>(params);
  const out = leaves.map((l, i) => tf.tidy(() => (l.rank >= 3 ? tf.add(l, tf.mul(random.normal(random.PRNGKey(100 + i), l.shape), scale)) : tf.clone(l))));
  return treeUnflatten(def, out) as Params;
}

const maxAbs = (a: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

type Subject = {
  valueAndGradBatch(p: Params, s: ModelState, k: PRNGKey[] | null, d: Batch): LossAndGrad;
  lossBatch(p: Params, k: PRNGKey[] | null, d: Batch): tf.Tensor;
};

/** Runs `fn` and says whether the convnet kernel ran in it. */
async function ranNet<T>(fn: () => T): Promise<[T, boolean]> {
  let out: T | undefined;
  const prof = await tf.profile(() => {
    out = fn();
    return [];
  });
  return [out as T, prof.kernels.some((k) => k.name === CONV_NET_KERNEL)];
}

/** valueAndGradBatch and lossBatch natively and by the tf.js path: loss and gradients compared leaf by leaf. */
async function compare(task: Subject, params: Params, data: Batch, expectNative = true): Promise<void> {
  const before = tf.memory().numTensors;
  useConvNetKernel(false);
  const [ops, opsNative] = await ranNet(() => task.valueAndGradBatch(params, null, null, data));
  const opsLoss = task.lossBatch(params, null, data);
  useConvNetKernel(true);
  const [nat, natNative] = await ranNet(() => task.valueAndGradBatch(params, null, null, data));
  const natLoss = task.lossBatch(params, null, data);
  expect(opsNative).toBe(false);
  expect(natNative).toBe(expectNative);
  expect(nat.state).toBeNull();
  for (const [a, b] of [
    [nat.loss, ops.loss],
    [natLoss, opsLoss],
  ]) {
    expect(a.shape).toEqual(b.shape);
    expect(maxDiff(a, b)).toBeLessThan(2e-6 * (1 + maxAbs(b)));
  }
  // every gradient leaf, relative to the leaf's largest value
  const [ga, defA] = treeFlatten<tf.Tensor>(nat.grad);
  const [gb, defB] = treeFlatten<tf.Tensor>(ops.grad);
  expect(JSON.stringify(defA)).toEqual(JSON.stringify(defB));
  ga.forEach((g, i) => {
    expect(g.shape).toEqual(gb[i].shape);
    expect(maxDiff(g, gb[i])).toBeLessThan(1e-4 * maxAbs(gb[i]) + 1e-7);
  });
  tf.dispose([ops, opsLoss, nat, natLoss] as unknown as tf.TensorContainer);
  expect(tf.memory().numTensors).toBe(before);
}

async function checkTask(task: ConvTask | ReturnType<ParametricImageConv['taskFn']>, n: number, scale: number, expectNative = true): Promise<void> {
  const keys = Array.from({ length: n }, (_, i) => random.PRNGKey(11 + i));
  const [p0] = task.initWithStateBatch(keys);
  const params = perturbWeights(p0, scale);
  const data = task.datasets!.split('train').next([n]) as Batch;
  await compare(task, params, data, expectNative);
  tf.dispose([p0, params, data] as unknown as tf.TensorContainer);
}

const conv = (c: ConstructorParameters<typeof ConvTask>[0], h: number, w: number, ch: number, batch: number) =>
  new ConvTask({ ...c, datasets: imageDatasets(h, w, ch, batch, 10) });

// where the ResNet addon (which holds the kernel) is built (npm run build:native; not with LOPT_NATIVE=off)
(convNetNative() ? describe.each(['cpu', 'wasm']) : describe.skip.each(['cpu', 'wasm']))('%s', (backend) => {
  beforeAll(async () => {
    expect(await initBackend(backend, { quiet: true })).toBe(backend);
    useConvNetKernel(true);
  });
  afterAll(() => useConvNetKernel(true));

  test('Conv_FashionMnist_8_16x32 net (relu, 8x8x1), N = 2, batch 16: native = tf.js path', async () => {
    await checkTask(conv({ hiddenUnits: [16, 32] }, 8, 8, 1, 16), 2, 0.1);
  });

  test('conv 6-5-7 (tanh, 9x7x3: odd maps, 5 and 7 channels), N = 3, batch 5: native = tf.js path', async () => {
    await checkTask(conv({ hiddenUnits: [6, 5, 7], activation: 'tanh' }, 9, 7, 3, 5), 3, 0.2);
  });

  test('batch norm and max pool keep the tf.js path', async () => {
    await checkTask(conv({ hiddenUnits: [4, 8], norm: 'layernorm' }, 8, 8, 1, 4), 2, 0.1, false);
    await checkTask(conv({ hiddenUnits: [4, 8], pool: 'max' }, 8, 8, 1, 4), 2, 0.1, false);
  });

  // the 12 sampled activations, two per stack (relu, relu, relu6, selu, tanh, cos, sin, sigmoid, silu, swish, gelu, leaky_relu)
  test.each([
    [0, 1],
    [2, 3],
    [4, 5],
    [6, 7],
    [8, 9],
    [10, 11],
  ])('ParametricImageConv (8-4-6, strides 2-1-2, 11x9x2), activations %i and %i, batch 6: native = tf.js path', async (a, b) => {
    const family = new ParametricImageConv({ datasets: imageDatasets(11, 9, 2, 6, 10), hiddenSizes: [8, 4, 6], kernelSizes: [[3, 3], [3, 3], [3, 3]], strides: [2, 1, 2] });
    const task = family.taskFn({ activation: { index: tf.tensor1d([a, b], 'int32') }, initializer: { index: tf.tensor1d([0, 1], 'int32'), init_scale: tf.tensor1d([1, 1.5]) } });
    await checkTask(task, 2, 0.3);
  });

  // every instruction-set variant this CPU runs (avx512 / avx2 / base)
  const variants = resnetNative()?.kernelVariants() ?? [];
  test.each(variants)('variant %s: conv 16-32 (relu) and ParametricImageConv (gelu, tanh), N = 2: native = tf.js path', async (variant) => {
    useNativeVariant(variant);
    try {
      await checkTask(conv({ hiddenUnits: [16, 32] }, 8, 8, 1, 6), 2, 0.1);
      const family = new ParametricImageConv({ datasets: imageDatasets(16, 16, 1, 4, 10), hiddenSizes: [8, 16, 32], kernelSizes: [[3, 3], [3, 3], [3, 3]], strides: [2, 2, 1] });
      const task = family.taskFn({ activation: { index: tf.tensor1d([10, 4], 'int32') }, initializer: { index: tf.tensor1d([0, 2], 'int32'), init_scale: tf.tensor1d([1.15, 1.8]) } });
      await checkTask(task, 2, 0.2);
    } finally {
      useNativeVariant(undefined);
    }
  });

  test('FLOPs: the convolutions and the head matmul, as tf.js counts them', async () => {
    const task = conv({ hiddenUnits: [16, 32] }, 8, 8, 1, 128);
    const keys = [random.PRNGKey(0), random.PRNGKey(1)];
    const params = task.initBatch(keys);
    const data = task.datasets!.split('train').next([2]) as Batch;
    const prof = await tf.profile(() => {
      tf.dispose(task.valueAndGradBatch(params, null, null, data) as unknown as tf.TensorContainer);
      return [];
    });
    const k = prof.kernels.find((x) => x.name === CONV_NET_KERNEL)!;
    // per task: 8x8x1 → 4x4x16 (3x3, stride 2), 4x4x16 → 4x4x32, head 32 → 10; the image gets no gradient
    const [m0, m1, head] = [128 * 16 * 9 * 16, 128 * 16 * 9 * 16 * 32, 128 * 32 * 10];
    expect(convNetKernelFlops(k.inputShapes as number[][], k.outputShapes as number[][])).toBe(2 * 2 * (m0 + m1 + head + (m0 + 2 * m1 + 2 * head)));
    tf.dispose([params, data] as unknown as tf.TensorContainer);
  });
});
