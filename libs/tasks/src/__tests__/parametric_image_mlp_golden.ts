/**
 * The parametric image-MLP family against the real learned_optimization
 * (test/golden/<mode>/parametric_image_mlp.json, tools/reference/golden_parametric_image_mlp.py), in
 * both of jax's random modes: the samplers' draws, every initializer's init(key), and loss,
 * gradient and normalizer for every activation. Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { cfgToPlain, ParametricImageMLP, sampleActivation, sampleImageMlp, sampleInitializer, SAMPLE_ACTIVATIONS, SAMPLE_INITIALIZERS } from '../index';

const num = (a: GoldenArray) => Number(a.values);
const K = random.PRNGKey;

/** Task params as the family's taskFn takes them. */
function taskParams(act: number, init: number, scale = 1.3) {
  return {
    activation: { index: tf.scalar(act, 'int32') },
    initializer: { index: tf.scalar(init, 'int32'), init_scale: tf.scalar(scale, 'float32') },
  };
}

export function describeParametricImageMLP(backend: string): void {
  describe.each(MODES)(`ParametricImageMLP = reference, %s mode, ${backend}`, (mode) => {
    const g = () => golden(mode, 'parametric_image_mlp.json');
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);
    const family = () => new ParametricImageMLP({ batchSize: 4, imageSize: [4, 4], hiddenLayers: [8, 8], numClasses: 10 });

    test('samplers: activation, initializer, family sample, sample_image_mlp', () => {
      const s = g().samplers;
      inMode(() => {
        expect(s.SampleActivation.map((_: number, i: number) => sampleActivation(K(i)).index)).toEqual(s.SampleActivation);
        s.SampleInitializer.forEach((want: Record<string, GoldenArray>, i: number) => {
          expect(sampleInitializer(K(i))).toEqual({ index: num(want.index), initScale: num(want.init_scale) });
        });
        const f = family();
        s['ParametricImageMLP.sample'].forEach((want: any, i: number) => {
          const got = f.sample(K(i)) as any;
          expect([got.activation.index.arraySync(), got.initializer.index.arraySync(), got.initializer.init_scale.arraySync()]).toEqual([
            num(want.activation),
            num(want.initializer.index),
            num(want.initializer.init_scale),
          ]);
          tf.dispose([got.activation.index, got.initializer.index, got.initializer.init_scale]);
        });
        expect(s.sample_image_mlp.map((_: unknown, i: number) => cfgToPlain(sampleImageMlp(K(i))))).toEqual(s.sample_image_mlp);
      });
    });

    test.each(SAMPLE_INITIALIZERS.map((e, i) => [i, e.name] as const))('init with initializer %i (%s)', (i) => {
      const want = g().inits[String(i)];
      const params = inMode(() => family().taskFn(taskParams(0, i)).init(K(1)));
      const d = treeDiff(params, want);
      expect(d.leaves).toBe(6);
      // orth_init: the reference's Q comes from float32 LAPACK, ours from a float64 Householder QR
      expect(d.maxAbs).toBeLessThanOrEqual(i === 0 ? 2e-6 : 1e-6);
      tf.dispose(Object.values(params as any).flatMap((l: any) => Object.values(l)) as tf.Tensor[]);
    });

    test.each(SAMPLE_ACTIVATIONS.map((e, i) => [i, e.name] as const))('loss, gradient and normalizer with activation %i (%s)', (a) => {
      const want = g().losses[String(a)];
      const batch = g().batch;
      const data = {
        image: tf.tensor(batch.image.values, batch.image.shape, 'float32'),
        label: tf.tensor(batch.label.values, batch.label.shape, 'int32'),
      };
      inMode(() => {
        const task = family().taskFn(taskParams(a, 2));
        const params = task.init(K(2));
        expect(treeDiff(params, want.params).maxAbs).toBeLessThanOrEqual(1e-6);
        const out = task.valueAndGrad(params, null, K(3), data);
        expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(1e-5);
        const gd = treeDiff(out.grad, want.grad);
        expect({ worst: gd.worst, ok: gd.maxAbs <= 1e-5 }).toEqual({ worst: gd.worst, ok: true });
        const norm = task.normalizer(tf.tensor1d([-1, 0.5, 3, 100, NaN]));
        expect(goldenDiff(norm, want['normalizer([-1, 0.5, 3, 100, nan])']).maxAbs).toBeLessThanOrEqual(1e-5);
        tf.dispose([norm, out.loss, ...Object.values(out.grad as any).flatMap((l: any) => Object.values(l) as tf.Tensor[])]);
      });
      tf.dispose(Object.values(data));
    });
  });
}
