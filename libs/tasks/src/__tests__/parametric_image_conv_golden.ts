/**
 * The parametric convnet family against the real learned_optimization
 * (test/golden/<mode>/parametric_image_conv.json, tools/reference/golden_parametric_image_conv.py),
 * both random modes: the samplers, and for every initializer init, loss, gradient and normalizer.
 * Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { cfgToPlain, ParametricImageConv, sampleImageConv } from '../index';

const K = random.PRNGKey;
const family = () => new ParametricImageConv({ batchSize: 3, imageSize: [6, 6], numClasses: 10, hiddenSizes: [4, 5], kernelSizes: [[3, 3], [3, 3]], strides: [2, 1] });

export function describeParametricImageConv(backend: string): void {
  describe.each(MODES)(`ParametricImageConv = reference, %s mode, ${backend}`, (mode) => {
    const g = () => golden(mode, 'parametric_image_conv.json');
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);

    test('samplers: ParametricImageConv.sample and sample_image_conv', () => {
      const s = g().samplers;
      inMode(() => {
        const f = family();
        s['ParametricImageConv.sample'].forEach((want: any, i: number) => {
          const got = f.sample(K(i)) as any;
          expect({ activation: got.activation.index.arraySync(), init_index: got.initializer.index.arraySync(), init_scale: got.initializer.init_scale.arraySync() }).toEqual({
            ...want,
            init_scale: Number((want.init_scale as GoldenArray).values),
          });
          tf.dispose(treeLeaves<tf.Tensor>(got));
        });
        expect(s.sample_image_conv.map((_: unknown, i: number) => cfgToPlain(sampleImageConv(K(i))))).toEqual(s.sample_image_conv);
      });
    });

    test('every initializer: init, loss, gradient, normalizer', () => {
      const batch = g().batch;
      const data = { image: tf.tensor(batch.image.values, batch.image.shape, 'float32'), label: tf.tensor(batch.label.values, batch.label.shape, 'int32') };
      for (const c of g().cases) {
        const label = `initializer ${c.init_index}, activation ${c.activation}`;
        inMode(() => {
          const tp = {
            activation: { index: tf.scalar(c.activation, 'int32') },
            initializer: { index: tf.scalar(c.init_index, 'int32'), init_scale: tf.scalar(0.8, 'float32') },
          };
          const task = family().taskFn(tp);
          const params = task.init(K(2));
          const di = treeDiff(params, c.init);
          expect({ label, worst: di.worst, init: di.maxAbs <= 2e-6 }).toEqual({ label, worst: di.worst, init: true });
          const out = task.valueAndGrad(params, null, K(3), data);
          expect({ label, loss: goldenDiff(out.loss, c.loss).maxAbs <= 1e-5 }).toEqual({ label, loss: true });
          const gd = treeDiff(out.grad, c.grad);
          expect({ label, worst: gd.worst, grad: gd.maxAbs <= 1e-5 }).toEqual({ label, worst: gd.worst, grad: true });
          const norm = task.normalizer(tf.tensor1d([-1, 0.5, 3, 100]));
          expect({ label, norm: goldenDiff(norm, c['normalizer([-1, 0.5, 3, 100])']).maxAbs <= 1e-5 }).toEqual({ label, norm: true });
          tf.dispose([norm, out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params), ...treeLeaves<tf.Tensor>(tp)]);
        });
      }
      tf.dispose(Object.values(data));
    });
  });
}
