/**
 * The parametric MLP VAE family against the real learned_optimization
 * (test/golden/<mode>/parametric_image_mlp_vae.json, tools/reference/golden_parametric_image_mlp_vae.py),
 * both random modes: the samplers, and init, loss, gradient (with a fixed loss key: the latent's and
 * the quantization noise's draws) and normalizer for every combination of the two switches, on a
 * family with hidden layers and one without. Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { cfgToPlain, ParametricImageMLPVAE, sampleImageMlpVae } from '../index';

const K = random.PRNGKey;
const FAMILIES: Record<string, () => ParametricImageMLPVAE> = {
  'enc (5,), dec (6,), n_z 3': () => new ParametricImageMLPVAE({ batchSize: 4, imageSize: [4, 4], encHiddenSizes: [5], decHiddenSizes: [6], nZ: 3 }),
  'enc (), dec (), n_z 2': () => new ParametricImageMLPVAE({ batchSize: 4, imageSize: [4, 4], encHiddenSizes: [], decHiddenSizes: [], nZ: 2 }),
};

function taskParams(c: { activation: number; init_index: number; center_data: boolean; per_dim_loss: boolean }) {
  return {
    initializer: { index: tf.scalar(c.init_index, 'int32'), init_scale: tf.scalar(0.7, 'float32') },
    activation: { index: tf.scalar(c.activation, 'int32') },
    center_data: tf.scalar(c.center_data, 'bool'),
    per_dim_loss: tf.scalar(c.per_dim_loss, 'bool'),
  };
}

export function describeParametricImageMLPVAE(backend: string): void {
  describe.each(MODES)(`ParametricImageMLPVAE = reference, %s mode, ${backend}`, (mode) => {
    const g = () => golden(mode, 'parametric_image_mlp_vae.json');
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);

    test('samplers: ParametricImageMLPVAE.sample and sample_image_mlp_vae', () => {
      const s = g().samplers;
      inMode(() => {
        const f = FAMILIES['enc (5,), dec (6,), n_z 3']();
        s['ParametricImageMLPVAE.sample'].forEach((want: any, i: number) => {
          const got = f.sample(K(i)) as any;
          expect({
            activation: got.activation.index.arraySync(),
            init_index: got.initializer.index.arraySync(),
            init_scale: got.initializer.init_scale.arraySync(),
            center_data: Boolean(got.center_data.arraySync()),
            per_dim_loss: Boolean(got.per_dim_loss.arraySync()),
          }).toEqual({ ...want, init_scale: Number((want.init_scale as GoldenArray).values) });
          tf.dispose(treeLeaves<tf.Tensor>(got));
        });
        expect(s.sample_image_mlp_vae.map((_: unknown, i: number) => cfgToPlain(sampleImageMlpVae(K(i))))).toEqual(s.sample_image_mlp_vae);
      });
    });

    test('every switch combination: init, loss, gradient, normalizer', () => {
      const batch = g().batch;
      const data = { image: tf.tensor(batch.image.values, batch.image.shape, 'float32'), label: tf.tensor(batch.label.values, batch.label.shape, 'int32') };
      const before = tf.memory().numTensors;
      for (const c of g().cases) {
        const label = `${c.family}, activation ${c.activation}, init ${c.init_index}, center ${c.center_data}, per_dim ${c.per_dim_loss}`;
        inMode(() => {
          const tp = taskParams(c);
          const task = FAMILIES[c.family]().taskFn(tp);
          const params = task.init(K(2));
          expect({ label, init: treeDiff(params, c.init).maxAbs <= 1e-6 }).toEqual({ label, init: true });
          const out = task.valueAndGrad(params, null, K(3), data);
          expect({ label, loss: goldenDiff(out.loss, c.loss).maxAbs <= 1e-5 }).toEqual({ label, loss: true });
          // the unnormalized loss (~100, summed over pixels) has gradients in the hundreds, where a
          // float32 ulp alone is 3e-5: 1e-5 is asked relative to the gradient's largest entry (if > 1)
          const gd = treeDiff(out.grad, c.grad);
          const scale = Math.max(1, ...Object.values(c.grad as Record<string, GoldenArray>).map((a) => Math.max(...([a.values].flat(Infinity) as number[]).map(Math.abs))));
          expect({ label, worst: gd.worst, grad: gd.maxAbs <= 1e-5 * scale }).toEqual({ label, worst: gd.worst, grad: true });
          const normIn = tf.tensor1d([-30, 0.5, 20, 300]);
          const norm = task.normalizer(normIn);
          expect({ label, norm: goldenDiff(norm, c['normalizer([-30, 0.5, 20, 300])']).maxAbs <= 1e-5 }).toEqual({ label, norm: true });
          tf.dispose([normIn, norm, out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params), ...treeLeaves<tf.Tensor>(tp)]);
        });
      }
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
      tf.dispose(Object.values(data));
    });
  });
}
