/**
 * ReparamWeightsFamily at its three levels over a small ParametricImageMLP family, against the real
 * learned_optimization (test/golden/<mode>/task_augmentation.json,
 * tools/reference/golden_task_augmentation.py), both random modes: the family's name, the sampled
 * inner configuration and parameter scales, init, and loss and gradient on a fixed batch.
 * Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { ParametricImageMLP, REPARAM_LEVELS, ReparamWeightsFamily } from '../index';

const K = random.PRNGKey;
const num = (a: GoldenArray) => Number(a.values);

export function describeTaskAugmentation(backend: string): void {
  describe.each(MODES)(`ReparamWeightsFamily = reference, %s mode, ${backend}`, (mode) => {
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);
    const inner = () => new ParametricImageMLP({ batchSize: 4, imageSize: [4, 4], hiddenLayers: [8], numClasses: 10 });

    test.each(REPARAM_LEVELS.map((l) => [l]))('level %s: sample, scales, init, loss and gradient', (level) => {
      const g = golden(mode, 'task_augmentation.json');
      const data = {
        image: tf.tensor(g.batch.image.values, g.batch.image.shape, 'float32'),
        label: tf.tensor(g.batch.label.values, g.batch.label.shape, 'int32'),
      };
      inMode(() => {
        const fam = new ReparamWeightsFamily(inner(), { level });
        expect(fam.name).toBe(g[level].name);
        g[level].cases.forEach((want: any, i: number) => {
          const tp = fam.sample(K(i)) as any;
          const sub = tp.sub_cfg;
          expect([sub.activation.index.arraySync(), sub.initializer.index.arraySync(), sub.initializer.init_scale.arraySync()]).toEqual([
            num(want.sub_cfg.activation),
            num(want.sub_cfg.init_index),
            num(want.sub_cfg.init_scale),
          ]);
          const task = fam.taskFn(tp);
          // the scale the task uses: a scalar (global) or a tree like the params
          const scale = task.paramScale as any;
          const d = scale instanceof tf.Tensor ? goldenDiff(scale, want.param_scale) : treeDiff(scale, want.param_scale);
          expect(d.maxAbs / Math.max(1, ...(scale instanceof tf.Tensor ? [scale] : treeLeaves<tf.Tensor>(scale)).map((t) => t.max().dataSync()[0]))).toBeLessThan(1e-6);
          const params = task.init(K(5));
          const di = treeDiff(params, want.init);
          expect({ worst: di.worst, ok: di.maxAbs <= 1e-5 * Math.max(1, ...Object.values(want.init as Record<string, GoldenArray>).flatMap((a) => (a.values as number[]).flat(3).map(Math.abs))) }).toEqual({ worst: di.worst, ok: true });
          const out = task.valueAndGrad(params, null, K(6), data);
          expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(1e-5);
          const dg = treeDiff(out.grad, want.grad);
          const gmax = Math.max(1e-30, ...Object.values(want.grad as Record<string, GoldenArray>).flatMap((a) => (a.values as number[]).flat(3).map(Math.abs)));
          expect({ worst: dg.worst, rel: dg.maxAbs / gmax < 1e-5 }).toEqual({ worst: dg.worst, rel: true });
          tf.dispose([out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params), ...treeLeaves<tf.Tensor>(tp)]);
        });
      });
      tf.dispose(Object.values(data));
    });
  });
}
