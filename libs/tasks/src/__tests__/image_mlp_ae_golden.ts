/**
 * The MLP autoencoder tasks against the real learned_optimization (test/golden/<mode>/image_mlp_ae.json,
 * tools/reference/golden_image_mlp_ae.py), both random modes: init, loss, gradient, normalizer.
 * Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff } from '../../../../test/golden';
import { ImageMLPAE_FashionMnist_128x32x128_bs128 } from '../index';

export function describeImageMLPAE(backend: string): void {
  describe.each(MODES)(`ImageMLPAE = reference, %s mode, ${backend}`, (mode) => {
    test('ImageMLPAE_FashionMnist_128x32x128_bs128: init, loss, gradient, normalizer', () => {
      const g = golden(mode, 'image_mlp_ae.json');
      const want = g.ImageMLPAE_FashionMnist_128x32x128_bs128;
      const data = {
        image: tf.tensor(g.batch.image.values, g.batch.image.shape, 'float32'),
        label: tf.tensor(g.batch.label.values, g.batch.label.shape, 'int32'),
      };
      const task = new ImageMLPAE_FashionMnist_128x32x128_bs128();
      const params = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.init(random.PRNGKey(0)));
      const di = treeDiff(params, want.init);
      expect(di.leaves).toBe(8);
      expect(di.maxAbs).toBeLessThanOrEqual(1e-6);
      const out = task.valueAndGrad(params, null, null, data);
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(1e-6);
      const dg = treeDiff(out.grad, want.grad);
      expect({ worst: dg.worst, ok: dg.maxAbs <= 1e-6 }).toEqual({ worst: dg.worst, ok: true });
      const norm = task.normalizer(tf.tensor1d([-1, 0.25, 3]));
      expect(goldenDiff(norm, want['normalizer([-1, 0.25, 3])']).maxAbs).toBe(0);
      tf.dispose([norm, out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params), ...Object.values(data)]);
    });
  });
}
