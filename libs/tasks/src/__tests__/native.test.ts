import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { nativeStatus, random, treeDispose, treeLeaves, treeMapN, useNativeVariant } from '@lopt/core';
import { ImageMLPTask, LOPT_GATHER_ROWS_KERNEL, gatherRowsNative, imageMlpNative } from '../index';
import { syntheticDatasets, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const hasCompiler = ['cc', 'gcc', 'clang'].some((c) => spawnSync(c, ['--version']).status === 0);
const wanted = (process.env.LOPT_NATIVE ?? 'auto').toLowerCase() !== 'off';
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

test('the image-MLP native kernel is built and loaded wherever a C compiler is (npm run build builds it)', () => {
  if (!hasCompiler || !wanted) {
    expect(imageMlpNative()).toBeNull();
    return;
  }
  imageMlpNative();
  // on failure the status says why, e.g. "ImageMLP off: not built (...); build them with ..."
  expect(nativeStatus()).toMatch(/ImageMLP \((avx512|avx2|base)\)/);
  expect(imageMlpNative()).not.toBeNull();
});

const native = imageMlpNative() ? describe : describe.skip;

native('image-MLP native kernel', () => {
  const datasets = syntheticDatasets();
  afterEach(() => useNativeVariant(undefined));

  // hidden layers of widths that are not multiples of the kernel's 8- and 32-wide tiles (70: two
  // blocks of 32 and 6 padded columns in one layer), and an odd batch, so every remainder path runs
  const cases = (imageMlpNative()?.kernelVariants() ?? []).flatMap((v) => [
    [v, [32]],
    [v, [20, 13]],
    [v, [70, 9]],
  ]);
  test.each(cases)('variant %s, hidden %p: loss and gradient equal the tf.js path', (variant, hidden) => {
    useNativeVariant(variant as string);
    const task = new ImageMLPTask({ datasets, hiddenSizes: hidden as number[] });
    const N = 3;
    const p = task.initBatch(random.split(random.PRNGKey(1), N));
    const full = datasets.split('train').next([N]) as any;
    const data = { image: tf.slice(full.image, [0, 0], [N, 37]), label: tf.slice(full.label, [0, 0], [N, 37]) };
    const viaNative = task.valueAndGradBatch(p, null, null, data);
    const viaTf = task.forwardBackwardOps(p, data, true);
    expect(viaNative.loss.shape).toEqual([N]);
    expect(maxAbsDiff(viaNative.loss, viaTf.loss)).toBeLessThan(1e-5);
    treeMapN(
      (g: tf.Tensor, r: tf.Tensor) => {
        expect(g.shape).toEqual(r.shape);
        expect(maxAbsDiff(g, r)).toBeLessThan(1e-5);
        expect(tf.max(tf.abs(r)).dataSync()[0]).toBeGreaterThan(1e-4); // not trivially 0
      },
      viaNative.grad,
      viaTf.grad,
    );
    // the loss alone (no gradient buffers) is the same number
    expect(maxAbsDiff(task.lossBatch(p, null, data), viaNative.loss)).toBe(0);
    treeDispose([p, viaNative, viaTf]);
  });

  test('far-apart logits (z - max below -700, where the softmax clamps) and a NaN row: the tf.js path\'s loss and gradient', () => {
    const task = new ImageMLPTask({ datasets, hiddenSizes: [32] });
    const N = 2;
    const p = task.initBatch(random.split(random.PRNGKey(5), N)) as any;
    // output weights ×3000: logits thousands apart, so most exponentials underflow
    const big = { ...p, 'mlp/~/linear_1': { w: tf.mul(p['mlp/~/linear_1'].w, 3000), b: p['mlp/~/linear_1'].b } };
    const data = datasets.split('train').next([N]) as any;
    const viaNative = task.valueAndGradBatch(big, null, null, data);
    const viaTf = task.forwardBackwardOps(big, data, true);
    const lossTf = viaTf.loss.dataSync();
    expect(Math.max(...lossTf)).toBeGreaterThan(100);
    Array.from(viaNative.loss.dataSync()).forEach((v, i) => expect(Math.abs(v - lossTf[i])).toBeLessThan(1e-5 * lossTf[i]));
    treeMapN((g: tf.Tensor, r: tf.Tensor) => expect(maxAbsDiff(g, r)).toBeLessThan(1e-5 * Math.max(1, tf.max(tf.abs(r)).dataSync()[0])), viaNative.grad, viaTf.grad);
    // a NaN weight in the first task gives it a NaN loss and leaves the second task's alone
    const w = p['mlp/~/linear_1'].w.arraySync();
    w[0][0][0] = NaN;
    const withNaN = { ...p, 'mlp/~/linear_1': { w: tf.tensor(w), b: p['mlp/~/linear_1'].b } };
    const l = task.lossBatch(withNaN, null, data).dataSync();
    expect(Number.isNaN(l[0])).toBe(true);
    expect(l[1]).toBeCloseTo(task.lossBatch(p, null, data).dataSync()[1], 6);
    treeDispose([p, big['mlp/~/linear_1'].w, withNaN['mlp/~/linear_1'].w, viaNative, viaTf, data]);
  });

  test('under a gradient tape the differentiable tf.js path runs', () => {
    const task = new ImageMLPTask({ datasets });
    const p = task.initBatch(random.split(random.PRNGKey(2), 2)) as any;
    const data = datasets.split('train').next([2]);
    const w0 = p['mlp/~/linear_0'].w;
    const f = (w: tf.Tensor) => tf.sum(task.lossBatch({ ...p, 'mlp/~/linear_0': { w, b: p['mlp/~/linear_0'].b } }, null, data));
    const g = tf.grad(f)(w0);
    const ref = task.valueAndGradBatch(p, null, null, data).grad as any;
    expect(maxAbsDiff(g, ref['mlp/~/linear_0'].w)).toBeLessThan(1e-5);
  });

  test('a label outside [0, classes) is refused, not read out of bounds', () => {
    const task = new ImageMLPTask({ datasets });
    const p = task.initBatch(random.split(random.PRNGKey(3), 1));
    const data = { image: tf.zeros([1, 4, 8, 8, 1]), label: tf.tensor2d([[0, 1, 10, 2]], [1, 4], 'int32') };
    expect(() => task.valueAndGradBatch(p, null, null, data)).toThrow(/imageMlpValueAndGrad: a label is outside \[0, number of classes\)/);
  });

  test('float labels are cast; no tensor leak over 50 calls', () => {
    const task = new ImageMLPTask({ datasets });
    const p = task.initBatch(random.split(random.PRNGKey(4), 2));
    const d = datasets.split('train').next([2]) as any;
    const asFloat = { image: d.image, label: tf.cast(d.label, 'float32') };
    expect(maxAbsDiff(task.lossBatch(p, null, asFloat), task.lossBatch(p, null, d))).toBe(0);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) treeDispose(task.valueAndGradBatch(p, null, null, d));
    expect(tf.memory().numTensors).toBe(before);
    expect(treeLeaves<tf.Tensor>(p).length).toBe(4);
  });
});

native('native row gather (LoptGatherRows)', () => {
  test('equals tf.gather for float32 and int32 rows, whatever the grouping shape, with no tensor leak', () => {
    expect(gatherRowsNative()).not.toBeNull();
    const x = tf.randomNormal([50, 3, 2]);
    const y = tf.tensor1d(Array.from({ length: 50 }, (_, i) => i * 7), 'int32');
    const indices = Int32Array.from(Array.from({ length: 24 }, (_, i) => (i * 13 + 5) % 50));
    const before = tf.memory().numTensors;
    for (const [t, shape] of [
      [x, [24, 3, 2]],
      [x, [2, 3, 4, 3, 2]],
      [y, [4, 6]],
    ] as Array<[tf.Tensor, number[]]>) {
      const got = tf.engine().runKernel(LOPT_GATHER_ROWS_KERNEL, { x: t }, { indices, shape } as any) as tf.Tensor;
      const want = tf.tidy(() => tf.reshape(tf.gather(t, tf.tensor1d(indices, 'int32')), shape));
      expect(got.shape).toEqual(shape);
      expect(got.dtype).toBe(t.dtype);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
      tf.dispose([got, want]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });

  test('an index outside the rows is refused, naming it', () => {
    gatherRowsNative();
    const x = tf.zeros([5, 2]);
    expect(() => tf.engine().runKernel(LOPT_GATHER_ROWS_KERNEL, { x }, { indices: Int32Array.from([0, 5]), shape: [2, 2] } as any)).toThrow(
      /gatherRows: the index value 5 is not in \[0, 4\]/,
    );
    x.dispose();
  });

  test("a data stream's batches are the same with the native gather and with tf.gather (LOPT_NATIVE=off semantics)", () => {
    const a = syntheticDatasets().split('train');
    const b = syntheticDatasets().split('train');
    treeDispose([a.next([2]), b.next([2])]); // both load their data (outside the tape) and move on alike
    for (let i = 0; i < 3; i++) {
      const viaNative = a.next([2]) as Record<string, tf.Tensor>;
      // under a gradient tape the stream takes tf.gather
      let viaTf: Record<string, tf.Tensor> = {};
      tf.grad((v: tf.Tensor) => {
        viaTf = Object.fromEntries(Object.entries(b.next([2]) as Record<string, tf.Tensor>).map(([k, t]) => [k, tf.keep(t)]));
        return tf.sum(v);
      })(tf.scalar(1));
      for (const k of Object.keys(viaNative)) expect(Array.from(viaNative[k].dataSync())).toEqual(Array.from(viaTf[k].dataSync()));
      treeDispose([viaNative, viaTf]);
    }
  });
});
