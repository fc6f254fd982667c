/**
 * The whole-network native ResNet kernel (`LoptResnetValueAndGrad`, native/resnet_net.h) against
 * the tf.js path it replaces (`useResnetNetKernel(false)`: convs, host batch-norm kernels, autodiff),
 * on cpu and wasm: the loss, every gradient leaf and the new batch-norm state, for the fixed
 * Resnet_FashionMnist_MultiRuntime_0 (v2, bottleneck), v1 specs with and without bottleneck
 * (odd map sizes, 5x5 and 7x7 initial kernels, strides 1 and 2, with and without max pool and
 * projections), and the parametric family (v1, relu rows native, a tanh row on the tf.js path);
 * every instruction-set variant the CPU runs on three of the specs.
 * Parameters are perturbed from init so that no branch is dead (the logits start at zero).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random, treeFlatten, treeLeaves, treeUnflatten, useNativeVariant, type PRNGKey } from '@lopt/core';
import {
  ParametricImageResNet,
  ResnetTask,
  resnetTask,
  SplitDatasets,
  TensorBatchStream,
  type Batch,
  type LossAndGrad,
  type ModelState,
  type Params,
  type SplitName,
} from '../index';
import { resnetNetPlan, type ResNetSpec } from '../resnet';
import { RESNET_NET_KERNEL, resnetNetKernelFlops, resnetNetNative, resnetNative, useResnetNetKernel } from '../resnet_kernels';

/** A [h, w, c] image dataset of 2·batch random examples, `classes` labels (no files). */
function imageDatasets(h: number, w: number, c: number, batch: number, classes: number) {
  const n = 2 * batch;
  const load = () => ({
    image: tf.tidy(() => tf.sub(random.uniform(random.PRNGKey(7), [n, h, w, c]), 0.4)),
    label: tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7) % classes), 'int32'),
  });
  const abstract = { image: { shape: [h, w, c], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, batch, abstract, i)]));
  return new SplitDatasets(streams as Record<SplitName, TensorBatchStream>, { num_classes: classes });
}

/** params + scale·noise on every leaf (a fixed key per leaf). */
function perturb(params: Params, scale: number): Params {
  const [leaves, def] = treeFlatten<tf.Tensor>(params);
  const out = leaves.map((l, i) => tf.tidy(() => tf.add(l, tf.mul(random.normal(random.PRNGKey(100 + i), l.shape), scale))));
  return treeUnflatten(def, out) as Params;
}

const maxAbs = (a: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

type Subject = {
  valueAndGradBatch(p: Params, s: ModelState, k: PRNGKey[] | null, d: Batch): LossAndGrad;
  lossWithStateBatch(p: Params, s: ModelState, k: PRNGKey[] | null, d: Batch): { loss: tf.Tensor; state: ModelState };
};

/** Runs `fn` and says whether the whole-network kernel ran in it. */
async function ranNet<T>(fn: () => T): Promise<[T, boolean]> {
  let out: T | undefined;
  const prof = await tf.profile(() => {
    out = fn();
    return [];
  });
  return [out as T, prof.kernels.some((k) => k.name === RESNET_NET_KERNEL)];
}

/**
 * valueAndGradBatch and lossWithStateBatch natively and by the tf.js path, twice (the second step
 * from the first's state): loss, gradients and state compared leaf by leaf.
 */
async function compare(task: Subject, params: Params, state: ModelState, data: Batch, expectNative = true): Promise<void> {
  const before = tf.memory().numTensors;
  useResnetNetKernel(false);
  const [ops, opsNative] = await ranNet(() => task.valueAndGradBatch(params, state, null, data));
  const ops2 = task.valueAndGradBatch(params, ops.state, null, data);
  const opsLoss = task.lossWithStateBatch(params, state, null, data);
  useResnetNetKernel(true);
  const [nat, natNative] = await ranNet(() => task.valueAndGradBatch(params, state, null, data));
  const nat2 = task.valueAndGradBatch(params, nat.state, null, data);
  const natLoss = task.lossWithStateBatch(params, state, null, data);
  expect(opsNative).toBe(false);
  expect(natNative).toBe(expectNative);
  for (const [a, b] of [
    [nat.loss, ops.loss],
    [nat2.loss, ops2.loss],
    [natLoss.loss, opsLoss.loss],
  ]) {
    expect(a.shape).toEqual(b.shape);
    expect(maxDiff(a, b)).toBeLessThan(2e-6 * (1 + maxAbs(b)));
  }
  // every gradient leaf, relative to the leaf's largest value
  const [ga, defA] = treeFlatten<tf.Tensor>(nat.grad);
  const [gb, defB] = treeFlatten<tf.Tensor>(ops.grad);
  expect(JSON.stringify(defA)).toEqual(JSON.stringify(defB));
  expect(ga.length).toBe(treeLeaves(params).length);
  ga.forEach((g, i) => {
    expect(g.shape).toEqual(gb[i].shape);
    expect(maxDiff(g, gb[i])).toBeLessThan(1e-4 * maxAbs(gb[i]) + 1e-7);
  });
  // the new state (counters, hidden values, averages) after one and two steps, and after the loss alone
  for (const [sa, sb] of [
    [nat.state, ops.state],
    [nat2.state, ops2.state],
    [natLoss.state, opsLoss.state],
  ]) {
    const [la, da] = treeFlatten<tf.Tensor>(sa);
    const [lb, db] = treeFlatten<tf.Tensor>(sb);
    expect(JSON.stringify(da)).toEqual(JSON.stringify(db));
    la.forEach((t, i) => {
      expect(t.shape).toEqual(lb[i].shape);
      expect(t.dtype).toEqual(lb[i].dtype);
      expect(maxDiff(t, lb[i])).toBeLessThan(1e-5 * (1 + maxAbs(lb[i])));
    });
  }
  tf.dispose([ops, ops2, opsLoss, nat, nat2, natLoss] as unknown as tf.TensorContainer);
  expect(tf.memory().numTensors).toBe(before);
}

/** A ResnetTask of `spec`'s configurable fields on synthetic data. */
function specTask(spec: ResNetSpec, h: number, w: number, batch: number): ResnetTask {
  const task = new ResnetTask({ datasets: imageDatasets(h, w, spec.inChannels, batch, spec.numClasses) });
  (task as { spec: ResNetSpec }).spec = spec; // the fields the schema does not set (v1, bottleneck, channels)
  return task;
}

async function checkTask(task: ResnetTask, n: number, scale: number): Promise<void> {
  const keys = Array.from({ length: n }, (_, i) => random.PRNGKey(11 + i));
  const [p0, state] = task.initWithStateBatch(keys);
  const params = perturb(p0, scale);
  const data = task.datasets!.split('train').next([n]) as Batch;
  await compare(task, params, state, data);
  tf.dispose([p0, params, state, data] as unknown as tf.TensorContainer);
}

// where the ResNet's native addon is built (npm run build:native; not with LOPT_NATIVE=off)
(resnetNetNative() ? describe.each(['cpu', 'wasm']) : describe.skip.each(['cpu', 'wasm']))('%s', (backend) => {
  beforeAll(async () => {
    expect(await initBackend(backend, { quiet: true })).toBe(backend);
    useResnetNetKernel(true);
  });
  afterAll(() => useResnetNetKernel(true));

  test('Resnet_FashionMnist_MultiRuntime_0 (v2, bottleneck, max pool), N = 2, batch 64: native = tf.js path', async () => {
    const task = resnetTask('Resnet_FashionMnist_MultiRuntime_0', { datasets: imageDatasets(16, 16, 1, 64, 10) });
    await checkTask(task, 2, 0.2);
  });

  const v1 = (over: Partial<ResNetSpec>): ResNetSpec => ({
    blocksPerGroup: [1, 1, 1, 1], channelsPerGroup: [4, 8, 8, 12], useProjection: [true, true, true, true], bottleneck: true, resnetV2: false,
    initialConvChannels: 6, initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, numClasses: 5, inChannels: 2, ...over,
  });

  // batch norms of 72 and 96 channels (the kernel's float64 sums take 64 channels a pass: a full
  // pass and a part); on cpu also a 3x3 stride-4 initial conv on 8x8, whose padded image ends
  // before the map does (tfjs-backend-wasm's conv2d, the reference there, is wrong when the stride
  // exceeds the kernel: 0.23 off against cpu on such a conv of an 8x8 map)
  const wide = v1({ resnetV2: true, initialConvChannels: 72, maxPool: false, channelsPerGroup: [8, 16, 16, 96] });
  const WIDE: [string, ResNetSpec, number, number][] = [
    ['v2 bottleneck, 72/96 channels, 8x8 map', wide, 8, 8],
    ...(backend === 'cpu' ? [['v2 bottleneck, 72/96 channels, 3x3 stride-4 initial conv, 8x8 map', { ...wide, initialConvStride: 4 }, 8, 8] as [string, ResNetSpec, number, number]] : []),
  ];

  test.each([
    ['v1 bottleneck, 7x5 map, 5x5 initial conv, blocks 1-2-1-2', v1({ blocksPerGroup: [1, 2, 1, 2], initialConvKernelSize: 5 }), 7, 5],
    ['v1 basic blocks, no projection in group 0, no max pool, stride 1, 9x6 map', v1({ bottleneck: false, useProjection: [false, true, true, true], maxPool: false, initialConvStride: 1, initialConvChannels: 4 }), 9, 6],
    // 11x11 → 6x6 → 3x3 (max pool) → 3x3, 2x2, 1x1, 1x1: groups 0 and 3 keep their shape without a projection
    ['v2 basic blocks, 7x7 initial conv, 11x11 map, projections in groups 1, 2 only', v1({ bottleneck: false, resnetV2: true, useProjection: [false, true, true, false], initialConvChannels: 4, initialConvKernelSize: 7, channelsPerGroup: [4, 4, 8, 8] }), 11, 11],
    ...WIDE,
  ])('%s, N = 2, batch 6: native = tf.js path', async (_name, spec, h, w) => {
    await checkTask(specTask(spec as ResNetSpec, h as number, w as number, 6), 2, 0.3);
  });

  // every instruction-set variant this CPU runs (avx512 / avx2 / base), on small batches
  const variants = resnetNative()?.kernelVariants() ?? [];
  test.each(variants.flatMap((v): [string, string, ResNetSpec, number, number][] => [
    [v, 'the Resnet_FashionMnist_MultiRuntime_0 spec', resnetTask('Resnet_FashionMnist_MultiRuntime_0', { datasets: imageDatasets(16, 16, 1, 64, 10) }).spec, 16, 16],
    [v, 'v1 bottleneck, 7x5 map', v1({ blocksPerGroup: [1, 2, 1, 2], initialConvKernelSize: 5 }), 7, 5],
    ...WIDE.map(([name, spec, h, w]): [string, string, ResNetSpec, number, number] => [v, name, spec, h, w]),
  ]))('variant %s: %s, N = 2, batch 6: native = tf.js path', async (variant, _name, spec, h, w) => {
    useNativeVariant(variant as string);
    try {
      await checkTask(specTask(spec as ResNetSpec, h as number, w as number, 6), 2, 0.3);
    } finally {
      useNativeVariant(undefined);
    }
  });

  test('ParametricImageResNet (v1, bottleneck): relu rows native = tf.js path; a tanh row keeps the tf.js path', async () => {
    const family = new ParametricImageResNet({ datasets: imageDatasets(8, 8, 1, 8, 10), initialConvChannels: 8, initialConvKernelSize: 5, blocksPerGroup: [1, 1, 2, 1], maxPool: false });
    const keys = [random.PRNGKey(3), random.PRNGKey(4)];
    const relu = family.taskFn({ activation: { index: tf.tensor1d([0, 1], 'int32') } });
    const mixed = family.taskFn({ activation: { index: tf.tensor1d([0, 4], 'int32') } });
    const [p0, state] = relu.initWithStateBatch(keys);
    const params = perturb(p0, 0.3);
    const data = family.datasets!.split('train').next([2]) as Batch;
    await compare(relu, params, state, data);
    await compare(mixed, params, state, data, false);
    tf.dispose([p0, params, state, data] as unknown as tf.TensorContainer);
  });

  test('FLOPs: the plan counts the convolutions and the logits matmul as tf.js counts them', async () => {
    const task = resnetTask('Resnet_FashionMnist_MultiRuntime_0', { datasets: imageDatasets(16, 16, 1, 64, 10) });
    const plan = resnetNetPlan(task.spec, [16, 16, 1], 64);
    // initial conv 3x3x1→64 on 8x8; max pool to 4x4; group 0 (4x4): shortcut 64→8, 64→2, 3x3 2→2, 2→8;
    // group 1 (to 2x2): shortcut 8→16, 8→4 (stride 1 on 4x4), 3x3 stride 2 4→4, 4→16; groups 2, 3 (to 1x1): 16→16, 16→4, 3x3 4→4, 4→16; logits 16→10
    const g2 = 64 * (16 * 16 + 4 * 16 * 4 + 9 * 4 * 4 + 4 * 16); // conv_0 (stride 1) still on 2x2
    const g3 = 64 * (16 * 16 + 16 * 4 + 9 * 4 * 4 + 4 * 16);
    const convs = [64 * 64 * 9 * 64, 64 * 16 * (64 * 8 + 64 * 2 + 9 * 2 * 2 + 2 * 8), 64 * 4 * (8 * 16) + 64 * 16 * 8 * 4 + 64 * 4 * (9 * 4 * 4 + 4 * 16), g2, g3];
    const fwd = convs.reduce((a, b) => a + b, 0) + 64 * 16 * 10;
    expect(plan.macs.forward).toBe(fwd);
    expect(plan.macs.backward).toBe(2 * fwd - 64 * 64 * 9 * 64);
    const [params, state] = task.initWithStateBatch([random.PRNGKey(0), random.PRNGKey(1)]);
    const data = task.datasets!.split('train').next([2]) as Batch;
    const prof = await tf.profile(() => {
      const r = task.valueAndGradBatch(params, state, null, data);
      tf.dispose(r as unknown as tf.TensorContainer);
      return [];
    });
    const k = prof.kernels.find((x) => x.name === RESNET_NET_KERNEL)!;
    expect(resnetNetKernelFlops(k.inputShapes as number[][], k.outputShapes as number[][])).toBe(2 * 2 * (plan.macs.forward + plan.macs.backward));
    tf.dispose([params, state, data] as unknown as tf.TensorContainer);
  });
});
