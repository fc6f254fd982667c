import { useTestBackend } from './helpers';
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves, type PyTree } from '@lopt/core';
import {
  BatchQuadraticTask,
  FixedDimQuadraticFamily,
  FixedDimQuadraticFamilyData,
  NoisyMeanQuadraticTask,
  NoisyQuadraticFamily,
  QuadraticTask,
  SumQuadraticTask,
  singleTaskToFamily,
  type Task,
  type TaskFamily,
} from '../index';

beforeAll(async () => {
  await useTestBackend();
});

const keysOf = (seed: number, n: number) => random.split(random.PRNGKey(seed), n);

describe('FixedDimQuadraticFamily', () => {
  test('mean initial loss over many sampled tasks is about 2·dim = 20', () => {
    const fam = new FixedDimQuadraticFamily({ dim: 10 });
    const n = 4000;
    const target = fam.sampleBatch(keysOf(0, n)) as tf.Tensor;
    const task = fam.taskFn(target);
    const p = task.initBatch(keysOf(1, n));
    const l = task.lossBatch(p, null, null);
    expect(l.shape).toEqual([n]);
    const mean = tf.mean(l).dataSync()[0];
    expect(mean).toBeGreaterThan(19);
    expect(mean).toBeLessThan(21);
    tf.dispose([target, p as tf.Tensor, l]);
  });

  test('name, no datasets, sample shape, identity normalizer, scalar loss with unstacked target', () => {
    const fam = registry.create<FixedDimQuadraticFamily>('task_family', 'FixedDimQuadraticFamily', {});
    expect(fam.name).toBe('FixedDimQuadraticFamily');
    expect(fam.dim).toBe(10);
    expect(fam.datasets).toBeNull();
    const t = fam.sample(random.PRNGKey(3)) as tf.Tensor;
    expect(t.shape).toEqual([10]);
    const task = fam.taskFn(t);
    const p = task.init(random.PRNGKey(4)) as tf.Tensor;
    const l = task.loss(p, null, null);
    expect(l.shape).toEqual([]);
    const want = tf.sum(tf.square(tf.sub(t, p))).dataSync()[0];
    expect(l.dataSync()[0]).toBeCloseTo(want, 4);
    expect(task.normalizer(l).dataSync()[0]).toBeCloseTo(want, 4);
    expect(() => registry.create('task_family', 'FixedDimQuadraticFamily', { dim: 0 })).toThrow(/dim/);
  });

  test('stacked loss/grad equal N single-task calls; hand-written grad = tf.grads', () => {
    const fam = new FixedDimQuadraticFamily({ dim: 5 });
    const ks = keysOf(7, 3);
    const targets = fam.sampleBatch(ks) as tf.Tensor;
    const task = fam.taskFn(targets);
    const p = task.initBatch(keysOf(8, 3)) as tf.Tensor;
    const out = task.valueAndGradBatch(p, null, null, null);
    const auto = (Object.getPrototypeOf(Object.getPrototypeOf(task)).valueAndGradBatch as typeof task.valueAndGradBatch).call(task, p, null, null, null);
    expect(Array.from(out.loss.dataSync())).toEqual(Array.from(auto.loss.dataSync()).map((x: number) => expect.closeTo(x, 4)));
    const gs = (out.grad as tf.Tensor).arraySync() as number[][];
    const ga = (auto.grad as tf.Tensor).arraySync() as number[][];
    for (let i = 0; i < 3; i++) {
      const single = fam.taskFn(tf.gather(targets, i));
      const pi = tf.gather(p, i);
      const l = single.loss(pi, null, null).dataSync()[0];
      expect(out.loss.dataSync()[i]).toBeCloseTo(l, 4);
      for (let j = 0; j < 5; j++) {
        expect(gs[i][j]).toBeCloseTo(ga[i][j], 4);
        expect(gs[i][j]).toBeCloseTo(2 * ((pi.arraySync() as number[])[j] - (tf.gather(targets, i).arraySync() as number[])[j]), 4);
      }
    }
  });
});

describe('other quadratics', () => {
  test('QuadraticTask: Σp², init N(0,1) [dim], grad 2p, single task = N=1', () => {
    const task = new QuadraticTask({ dim: 4 });
    expect(task.name).toBe('QuadraticTask');
    const p = task.init(random.PRNGKey(0)) as tf.Tensor;
    expect(p.shape).toEqual([4]);
    const l = task.loss(p, null, null).dataSync()[0];
    expect(l).toBeCloseTo(tf.sum(tf.square(p)).dataSync()[0], 5);
    const { grad } = task.valueAndGrad(p, null, null, null);
    expect(Array.from((grad as tf.Tensor).dataSync())).toEqual(Array.from(p.dataSync()).map((x) => expect.closeTo(2 * x, 5)));
    // init of a stack row equals single init with the same key
    const ks = keysOf(5, 3);
    const stack = task.initBatch(ks) as tf.Tensor;
    expect(Array.from(tf.gather(stack, 2).dataSync())).toEqual(Array.from((task.init(ks[2]) as tf.Tensor).dataSync()));
  });

  test('SumQuadraticTask grads for both leaves', () => {
    const task = new SumQuadraticTask();
    const p = task.initBatch(keysOf(1, 2)) as { a: tf.Tensor; b: tf.Tensor };
    const { loss, grad } = task.valueAndGradBatch(p, null, null, null);
    expect(loss.shape).toEqual([2]);
    const g = grad as { a: tf.Tensor; b: tf.Tensor };
    const want = tf.mul(tf.add(p.a, p.b), 2);
    expect(tf.max(tf.abs(tf.sub(g.a, want))).dataSync()[0]).toBeLessThan(1e-5);
    expect(tf.max(tf.abs(tf.sub(g.b, want))).dataSync()[0]).toBeLessThan(1e-5);
  });

  test('NoisyMeanQuadraticTask: fixed PSD Hessian, [dim,1] params ×10, needs keys, deterministic per key', () => {
    const task: Task = new NoisyMeanQuadraticTask({ dim: 2 });
    const p = task.initBatch(keysOf(2, 3)) as tf.Tensor;
    expect(p.shape).toEqual([3, 2, 1]);
    expect(() => task.lossBatch(p, null, null)).toThrow(/key/);
    const ks = keysOf(9, 3);
    const l1 = task.lossBatch(p, ks, null).dataSync();
    const l2 = task.lossBatch(p, ks, null).dataSync();
    expect(Array.from(l1)).toEqual(Array.from(l2));
    for (const v of l1) expect(v).toBeGreaterThanOrEqual(0);
    const { grad } = task.valueAndGradBatch(p, null, ks, null);
    expect((grad as tf.Tensor).shape).toEqual([3, 2, 1]);
  });

  test('BatchQuadraticTask has [4,2] noise batches per split', () => {
    const task: Task = new BatchQuadraticTask();
    const b = task.datasets!.split('train').next([3]) as tf.Tensor;
    expect(b.shape).toEqual([3, 4, 2]);
    const l = task.lossBatch(task.initBatch(keysOf(0, 3)), null, b);
    expect(l.shape).toEqual([3]);
  });

  test('FixedDimQuadraticFamilyData: + data, aux l2/l1, clip(0,1000) normalizer', () => {
    const fam = new FixedDimQuadraticFamilyData({ dim: 3 });
    const keys = keysOf(0, 2);
    const targets = fam.sampleBatch(keys) as tf.Tensor;
    const task = fam.taskFn(targets);
    const p = task.initBatch(keys) as tf.Tensor;
    const data = fam.datasets!.split('train').next([2]) as tf.Tensor;
    expect(data.shape).toEqual([2]);
    const out = task.lossWithStateAndAuxBatch(p, null, null, data);
    const clean = task.lossBatch(p, null, tf.zeros([2])).dataSync();
    const d = data.dataSync();
    out.loss.dataSync().forEach((v, i) => expect(v).toBeCloseTo(clean[i] + d[i], 4));
    expect(Object.keys(out.aux).sort()).toEqual(['l1', 'l2']);
    expect(out.aux.l2.dataSync()[0]).toBeCloseTo(tf.mean(tf.square(tf.gather(p, 0))).dataSync()[0], 5);
    expect(Array.from(task.normalizer(tf.tensor1d([-5, 3, 5000])).dataSync())).toEqual([0, 3, 1000]);
    const vg = task.valueAndGradBatch(p, null, null, data, { withAux: true });
    expect(Object.keys(vg.aux!).sort()).toEqual(['l1', 'l2']);
    const [l, aux] = fam.taskFn(tf.gather(targets, 0)).lossAndAux(tf.gather(p, 0), null, tf.gather(data, 0));
    expect(l.shape).toEqual([]);
    expect(aux.l1.shape).toEqual([]);
  });

  test('NoisyQuadraticFamily: loss value is the clean loss, gradient carries multiplicative noise', () => {
    const fam = new NoisyQuadraticFamily({ dim: 4, cov: 0.5 });
    const [center, scale] = fam.sampleBatch(keysOf(0, 2)) as [tf.Tensor, tf.Tensor];
    expect(center.shape).toEqual([2, 4]);
    const s = scale.dataSync();
    for (const v of s) expect(v >= 0 && v < 25).toBe(true);
    const task = fam.taskFn([center, scale]);
    const p = task.initBatch(keysOf(1, 2)) as tf.Tensor;
    const ks = keysOf(2, 2);
    const { loss, grad } = task.valueAndGradBatch(p, null, ks, null);
    const clean = tf.sum(tf.square(tf.mul(scale, tf.sub(center, p))), -1);
    expect(tf.max(tf.abs(tf.sub(loss, clean))).dataSync()[0]).toBeLessThan(1e-2);
    const cleanGrad = tf.mul(tf.mul(tf.square(scale), tf.sub(p, center)), 2);
    const noise = tf.mul(tf.stack(ks.map((k) => random.normal(k, [4]))), 0.5);
    expect(tf.max(tf.abs(tf.sub(grad as tf.Tensor, tf.add(cleanGrad, noise)))).dataSync()[0]).toBeLessThan(1e-3);
  });
});

test('singleTaskToFamily: sample is scalar 0, taskFn returns the task, name and datasets from the task', () => {
  const task = new BatchQuadraticTask();
  const fam = singleTaskToFamily(task);
  expect(fam.name).toBe('BatchQuadraticTask');
  expect(fam.datasets).toBe(task.datasets);
  const s = fam.sample(random.PRNGKey(0)) as tf.Tensor;
  expect(s.shape).toEqual([]);
  expect(s.dataSync()[0]).toBe(0);
  expect((fam.sampleBatch(keysOf(0, 3)) as tf.Tensor).shape).toEqual([3]);
  expect(fam.taskFn(s)).toBe(task);
});

test('split names: the four work, anything else lists them', () => {
  const ds = new BatchQuadraticTask().datasets!;
  for (const s of ['train', 'inner_valid', 'outer_valid', 'test']) expect(ds.split(s)).toBeDefined();
  expect(() => ds.split('validation')).toThrow(/unknown split 'validation'; allowed: train, inner_valid, outer_valid, test/);
});

test('every task and task-family plugin is registered under its kind and creates with defaults', () => {
  const tasks = registry.list('task').map((e) => e.name);
  const families = registry.list('task_family').map((e) => e.name);
  for (const n of ['QuadraticTask', 'NoisyMeanQuadraticTask', 'BatchQuadraticTask', 'LogQuadraticTask', 'SumQuadraticTask', 'ImageMLP_FashionMnist8_Relu32', 'ImageMLPTask']) {
    expect(tasks).toContain(n);
  }
  for (const n of ['FixedDimQuadraticFamily', 'FixedDimQuadraticFamilyData', 'NoisyQuadraticFamily']) {
    expect(families).toContain(n);
    expect(tasks).not.toContain(n);
  }
  // the default comes from the schema, whether built by the registry or by the constructor
  expect(registry.create<FixedDimQuadraticFamily>('task_family', 'FixedDimQuadraticFamily').dim).toBe(new FixedDimQuadraticFamily().dim);
  const q = registry.create('task', 'QuadraticTask', { dim: 3 });
  expect(treeLeaves(q.init(random.PRNGKey(0)))[0]).toBeInstanceOf(tf.Tensor);
});

test('the sizes a quadratic states without building anything are those of a real sample and init', () => {
  const count = (t: PyTree) => treeLeaves<tf.Tensor>(t).reduce((n, l) => n + l.size, 0);
  const key = random.PRNGKey(3);
  for (const [name, config] of [
    ['QuadraticTask', { dim: 7 }],
    ['LogQuadraticTask', {}],
    ['SumQuadraticTask', {}],
    ['NoisyMeanQuadraticTask', { dim: 3 }],
    ['BatchQuadraticTask', {}],
  ] as const) {
    const family = singleTaskToFamily(registry.create<Task>('task', name, config));
    const params = family.taskFn(family.sample(key)).init(key);
    expect([name, family.valueCounts?.()]).toEqual([name, { taskParam: 1, params: count(params) }]);
  }
  for (const [name, config] of [
    ['FixedDimQuadraticFamily', { dim: 7 }],
    ['FixedDimQuadraticFamilyData', { dim: 5 }],
    ['NoisyQuadraticFamily', { dim: 6 }],
  ] as const) {
    const family = registry.create<TaskFamily>('task_family', name, config);
    const taskParam = family.sample(key);
    expect([name, family.valueCounts?.()]).toEqual([name, { taskParam: count(taskParam), params: count(family.taskFn(taskParam).init(key)) }]);
  }
  // a task that does not state its size leaves the family without sizes (measured instead)
  expect(singleTaskToFamily(Object.assign(new QuadraticTask(2), { numParams: undefined })).valueCounts).toBeUndefined();
});
