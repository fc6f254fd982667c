/**
 * The parametric MLP autoencoder family against the real learned_optimization
 * (test/golden/<mode>/parametric_image_mlp_ae.json, tools/reference/golden_parametric_image_mlp_ae.py),
 * both random modes: the samplers, and init, loss, gradient and normalizer for every combination of
 * the three switches. Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { cfgToPlain, ParametricImageMLPAE, sampleImageMlpAe } from '../index';

const K = random.PRNGKey;
const family = () => new ParametricImageMLPAE({ batchSize: 4, imageSize: [4, 4], hiddenSizes: [6] });

function taskParams(c: { activation: number; log_loss: boolean; center_data: boolean; constrain_output: boolean }) {
  return {
    initializer: { index: tf.scalar(2, 'int32'), init_scale: tf.scalar(1.1, 'float32') },
    activation: { index: tf.scalar(c.activation, 'int32') },
    log_loss: tf.scalar(c.log_loss, 'bool'),
    center_data: tf.scalar(c.center_data, 'bool'),
    constrain_output: tf.scalar(c.constrain_output, 'bool'),
  };
}

export function describeParametricImageMLPAE(backend: string): void {
  describe.each(MODES)(`ParametricImageMLPAE = reference, %s mode, ${backend}`, (mode) => {
    const g = () => golden(mode, 'parametric_image_mlp_ae.json');
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);

    test('samplers: ParametricImageMLPAE.sample and sample_image_mlp_ae', () => {
      const s = g().samplers;
      inMode(() => {
        const f = family();
        s['ParametricImageMLPAE.sample'].forEach((want: any, i: number) => {
          const got = f.sample(K(i)) as any;
          expect({
            activation: got.activation.index.arraySync(),
            init_index: got.initializer.index.arraySync(),
            init_scale: got.initializer.init_scale.arraySync(),
            log_loss: Boolean(got.log_loss.arraySync()),
            center_data: Boolean(got.center_data.arraySync()),
            constrain_output: Boolean(got.constrain_output.arraySync()),
          }).toEqual({ ...want, init_scale: Number((want.init_scale as GoldenArray).values) });
          tf.dispose(treeLeaves<tf.Tensor>(got));
        });
        expect(s.sample_image_mlp_ae.map((_: unknown, i: number) => cfgToPlain(sampleImageMlpAe(K(i))))).toEqual(s.sample_image_mlp_ae);
      });
    });

    test('every switch combination: init, loss, gradient, normalizer', () => {
      const batch = g().batch;
      const data = { image: tf.tensor(batch.image.values, batch.image.shape, 'float32'), label: tf.tensor(batch.label.values, batch.label.shape, 'int32') };
      for (const c of g().cases) {
        const label = `activation ${c.activation}, log_loss ${c.log_loss}, center ${c.center_data}, constrain ${c.constrain_output}`;
        inMode(() => {
          const task = family().taskFn(taskParams(c));
          const params = task.init(K(2));
          expect({ label, init: treeDiff(params, c.init).maxAbs <= 1e-6 }).toEqual({ label, init: true });
          const out = task.valueAndGrad(params, null, K(3), data);
          expect({ label, loss: goldenDiff(out.loss, c.loss).maxAbs <= 1e-5 }).toEqual({ label, loss: true });
          const gd = treeDiff(out.grad, c.grad);
          expect({ label, worst: gd.worst, grad: gd.maxAbs <= 1e-5 }).toEqual({ label, worst: gd.worst, grad: true });
          const norm = task.normalizer(tf.tensor1d([-30, 0.001, 0.5, 3]));
          expect({ label, norm: goldenDiff(norm, c['normalizer([-30, 0.001, 0.5, 3])']).maxAbs <= 1e-5 }).toEqual({ label, norm: true });
          tf.dispose([norm, out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params)]);
        });
      }
      tf.dispose(Object.values(data));
    });
  });
}
