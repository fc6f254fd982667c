/**
 * The task-family bench suite: its FLOP count per kernel is the textbook count for matmuls and
 * convolutions (checked on kernels tf.js really runs, backprops included) and for the native
 * image-MLP kernel and the native ResNet kernel (against the tf.js path's own kernels), and a run
 * steps a task without leaking tensors. (No timing is asserted: speed is measured with
 * `npm run bench -- --suite tasks`, not in tests.)
 */
import * as tf from '@tensorflow/tfjs';
import '@lopt/tasks';
import '@lopt/training';
import { initBackend, random, registry } from '@lopt/core';
import { CONV_NET_KERNEL, convNetNative, convTask, LOPT_IMAGE_MLP_KERNEL, RESNET_NET_KERNEL, resnetNetNative, resnetTask, SplitDatasets, TensorBatchStream, useConvNetKernel, useResnetNetKernel, type SplitName } from '@lopt/tasks';
import { BENCH_SGD_KERNEL, benchTasks, defaultTaskBenchSubjects, kernelFlops, selectTaskBenchSubjects, sgdUpdate, taskBenchMarkdown, type ProfiledKernel } from '../bench_tasks';

/** The kernels `fn` runs, with their FLOPs by kernel name (summed). */
async function flopsByKernel(fn: () => void): Promise<Record<string, number>> {
  const info = await tf.profile(fn);
  const out: Record<string, number> = {};
  for (const k of info.kernels) out[k.name] = (out[k.name] ?? 0) + kernelFlops(k as unknown as ProfiledKernel);
  return out;
}

test('matmul FLOPs are 2·B·M·K·N, transposed or not', async () => {
  const a = tf.ones([2, 3, 4]);
  const b = tf.ones([2, 4, 5]);
  const at = tf.ones([2, 4, 3]);
  expect(await flopsByKernel(() => void tf.matMul(a, b))).toEqual({ BatchMatMul: 2 * 2 * 3 * 4 * 5 });
  expect(await flopsByKernel(() => void tf.matMul(at, b, true))).toEqual({ BatchMatMul: 2 * 2 * 3 * 4 * 5 });
  tf.dispose([a, b, at]);
});

test('conv2d FLOPs, forward and both backprops: 2 · output values · kh · kw · cin each', async () => {
  const x = tf.ones([2, 6, 6, 3]);
  const f = tf.ones([3, 3, 3, 4]);
  const macs = 2 * 6 * 6 * 4 * (3 * 3 * 3); // output values [2, 6, 6, 4] (SAME padding) × kh·kw·cin
  const byKernel = await flopsByKernel(() => {
    const g = tf.grads((xx: tf.Tensor, ff: tf.Tensor) => tf.sum(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 1, 'same')))([x, f]);
    tf.dispose(g);
  });
  expect(byKernel.Conv2D).toBe(2 * macs);
  expect(byKernel.Conv2DBackpropInput).toBe(2 * macs);
  expect(byKernel.Conv2DBackpropFilter).toBe(2 * macs);
  tf.dispose([x, f]);
});

test('the native image-MLP kernel counts the multiply-adds autodiff would do: forward, dW, dx but for the data', () => {
  const inputShapes = [[2, 128, 64], [2, 128], [2, 64, 32], [2, 32, 10], [2, 32], [2, 10]];
  const macs = 2 * 128 * (64 * 32 + 32 * 10);
  expect(kernelFlops({ name: LOPT_IMAGE_MLP_KERNEL, inputShapes, outputShapes: [[2]] })).toBe(2 * macs);
  // forward + dW of both layers + dx of the second only (the data needs no gradient)
  const withGrad = 2 * (3 * macs - 2 * 128 * 64 * 32);
  expect(kernelFlops({ name: LOPT_IMAGE_MLP_KERNEL, inputShapes, outputShapes: [[2], [2, 64, 32], [2, 32, 10], [2, 32], [2, 10]] })).toBe(withGrad);
});

// where the ResNet's native addon is built (npm run build:native)
(resnetNetNative() ? test : test.skip)('the native ResNet kernel counts the FLOPs the tf.js path counts in its convolutions and matmuls for the same step', async () => {
  // Resnet_FashionMnist_MultiRuntime_0's net on 16x16x1 random images, batch 8, N = 2
  const load = () => ({ image: tf.tidy(() => random.uniform(random.PRNGKey(1), [16, 16, 16, 1])), label: tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32') });
  const abstract = { image: { shape: [16, 16, 1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, 8, abstract, i)]));
  const task = resnetTask('Resnet_FashionMnist_MultiRuntime_0', { datasets: new SplitDatasets(streams as Record<SplitName, TensorBatchStream>, { num_classes: 10 }) });
  const [params, state] = task.initWithStateBatch([random.PRNGKey(0), random.PRNGKey(1)]);
  const data = task.datasets!.split('train').next([2]);
  const step = () => tf.dispose(task.valueAndGradBatch(params, state, null, data) as unknown as tf.TensorContainer);
  try {
    useResnetNetKernel(false);
    const ops = await flopsByKernel(step);
    useResnetNetKernel(true);
    const native = await flopsByKernel(step);
    const convAndMatmul = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul'].reduce((n, k) => n + (ops[k] ?? 0), 0);
    expect(ops[RESNET_NET_KERNEL]).toBeUndefined();
    expect(native[RESNET_NET_KERNEL]).toBe(convAndMatmul);
    expect(convAndMatmul).toBeGreaterThan(0);
  } finally {
    useResnetNetKernel(true);
    tf.dispose([params, state, data] as unknown as tf.TensorContainer);
  }
});

test.each(['cpu', 'wasm'])("the bench's SGD update of every leaf in one kernel equals tf.js's sub(p, mul(g, lr)) bit for bit, and counts their FLOPs (%s)", async (backend) => {
  const before = tf.getBackend();
  expect(await initBackend(backend, { quiet: true })).toBe(backend);
  try {
    const params = { a: { w: random.normal(random.PRNGKey(1), [2, 7, 5]), b: random.normal(random.PRNGKey(2), [2, 5]) }, c: [random.normal(random.PRNGKey(3), [2, 3, 3, 1, 4])] };
    const grads = { a: { w: tf.mul(random.normal(random.PRNGKey(4), [2, 7, 5]), 1e3), b: random.normal(random.PRNGKey(5), [2, 5]) }, c: [random.normal(random.PRNGKey(6), [2, 3, 3, 1, 4])] };
    const ops = tf.tidy(() => [params.a.w, params.a.b, params.c[0]].map((p, i) => tf.sub(p, tf.mul([grads.a.w, grads.a.b, grads.c[0]][i], 1e-3))));
    const start = tf.memory().numTensors;
    const byKernel = await flopsByKernel(() => {
      const fused = sgdUpdate(params, grads) as typeof params;
      expect(fused.a.w.shape).toEqual([2, 7, 5]);
      [fused.a.w, fused.a.b, fused.c[0]].forEach((t, i) => expect(Array.from(t.dataSync())).toEqual(Array.from(ops[i].dataSync())));
      tf.dispose(fused as unknown as tf.TensorContainer);
    });
    expect(tf.memory().numTensors).toBe(start);
    expect(byKernel).toEqual({ [BENCH_SGD_KERNEL]: 2 * 2 * (35 + 5 + 36) });
    tf.dispose([params, grads, ops] as unknown as tf.TensorContainer);
  } finally {
    await tf.setBackend(before);
  }
});

// where the ResNet addon (which holds the convnet kernel) is built
(convNetNative() ? test : test.skip)('the native convnet kernel counts the FLOPs the tf.js path counts in its convolutions and matmuls for the same step', async () => {
  // Conv_FashionMnist_8_16x32's net on 16x16x1 random images, batch 8, N = 2
  const load = () => ({ image: tf.tidy(() => random.uniform(random.PRNGKey(1), [16, 16, 16, 1])), label: tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32') });
  const abstract = { image: { shape: [16, 16, 1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, 8, abstract, i)]));
  const task = convTask('Conv_FashionMnist_8_16x32', { datasets: new SplitDatasets(streams as Record<SplitName, TensorBatchStream>, { num_classes: 10 }) });
  const [params, state] = task.initWithStateBatch([random.PRNGKey(0), random.PRNGKey(1)]);
  const data = task.datasets!.split('train').next([2]);
  const step = () => tf.dispose(task.valueAndGradBatch(params, state, null, data) as unknown as tf.TensorContainer);
  try {
    useConvNetKernel(false);
    const ops = await flopsByKernel(step);
    useConvNetKernel(true);
    const native = await flopsByKernel(step);
    const convAndMatmul = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', '_FusedMatMul'].reduce((n, k) => n + (ops[k] ?? 0), 0);
    expect(ops[CONV_NET_KERNEL]).toBeUndefined();
    expect(native[CONV_NET_KERNEL]).toBe(convAndMatmul);
    expect(convAndMatmul).toBeGreaterThan(0);
  } finally {
    useConvNetKernel(true);
    tf.dispose([params, state, data] as unknown as tf.TensorContainer);
  }
});

test('--tasks keeps the image MLP baseline first and the subjects a filter names (case-insensitive); an unknown filter throws', () => {
  const all = defaultTaskBenchSubjects();
  const picked = selectTaskBenchSubjects(['mixer', 'VIT_']).map((s) => s.label);
  expect(picked[0]).toBe(all[0]!.label);
  expect(picked.slice(1)).toEqual(all.filter((s) => /mixer|vit_/i.test(s.label)).map((s) => s.label));
  expect(picked.length).toBe(3);
  expect(() => selectTaskBenchSubjects(['no-such-task'])).toThrow(/matches no task/);
});

test('an elementwise kernel counts one FLOP per output value', () => {
  expect(kernelFlops({ name: 'Relu', inputShapes: [[7, 3]], outputShapes: [[7, 3]] })).toBe(21);
});

test('a run steps a task with data, counts its FLOPs, and leaks no tensor', async () => {
  const subject = { label: 'noisy quadratic', entry: { name: 'FixedDimQuadraticFamilyData', config: { dim: 8 } } };
  const before = tf.memory().numTensors;
  const [r] = await benchTasks({ steps: 2, warmup: 1, numTasks: 3, subjects: [subject] });
  expect(tf.memory().numTensors).toBe(before);
  expect(r).toMatchObject({ label: 'noisy quadratic', task: 'FixedDimQuadraticFamilyData', numTasks: 3, params: 8, perFlopVsBaseline: 1 });
  // at least the squared distance (sub, square, sum over 3·8 values) and the SGD update
  expect(r.flopsPerStep).toBeGreaterThan(3 * 8 * 3);
  expect(r.msPerStep).toBeGreaterThan(0);
  expect(taskBenchMarkdown([r], 'test', 'off')).toMatch(/\| noisy quadratic \| 3 \| 8 \|/);
});

test('a subject that cannot be built is skipped with its reason, the rest still run', async () => {
  const lines: string[] = [];
  const results = await benchTasks({ steps: 1, numTasks: 1, subjects: [{ label: 'none', entry: { name: 'QuadraticTask' } }], log: (s) => lines.push(s) });
  expect(results).toEqual([]);
  expect(lines).toEqual(['none: skipped (none: no datasets, nothing to time)']);
});

test('the default subjects start with the image MLP and name only registered tasks and families', () => {
  const subjects = defaultTaskBenchSubjects();
  expect(subjects[0].entry.name).toBe('ImageMLP_FashionMnist_Relu128x128');
  for (const s of subjects) expect(registry.has('task', s.entry.name) || registry.has('task_family', s.entry.name)).toBe(true);
  expect(subjects.map((s) => s.entry.name)).toEqual(expect.arrayContaining(['Conv_FashionMnist_8_16x32', 'ParametricImageConv', 'ImageMLPAE_FashionMnist_128x32x128_bs128']));
});
