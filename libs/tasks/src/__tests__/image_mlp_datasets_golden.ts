/**
 * The fixed image MLPs on MNIST and 16x16 ImageNet, and the MNIST autoencoder, against the real learned_optimization
 * (test/golden/<mode>/image_mlp_datasets.json, tools/reference/golden_image_mlp_datasets.py): init
 * (PRNGKey(0)) in both random modes, loss, gradient and normalizer on the file's fixed 2-image batch.
 * No dataset is loaded. Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { golden, goldenDiff, MODES, treeDiff } from '../../../../test/golden';
import type { BaseTask } from '../task';
import { ImageMLP_Imagenet16_Relu256x256x256, ImageMLP_Mnist_128x128x128_Relu } from '../image_mlp';
import { ImageMLPAE_Mnist_128x32x128_bs128 } from '../image_mlp_ae';
import { toTensor } from './resnet_golden';

const TASKS: Record<string, () => BaseTask> = {
  ImageMLP_Mnist_128x128x128_Relu: () => new ImageMLP_Mnist_128x128x128_Relu(),
  ImageMLP_Imagenet16_Relu256x256x256: () => new ImageMLP_Imagenet16_Relu256x256x256(),
  ImageMLPAE_Mnist_128x32x128_bs128: () => new ImageMLPAE_Mnist_128x32x128_bs128(),
};

export function describeImageMlpDatasetsGolden(backend: string): void {
  describe.each(MODES)(`image MLPs on MNIST / ImageNet16 = reference, %s mode, ${backend}`, (mode) => {
    test.each(Object.keys(TASKS))('%s: init(PRNGKey(0)); loss, grad and normalizer on the fixed batch', (name) => {
      const want = golden(mode, 'image_mlp_datasets.json')[name];
      const before = tf.memory().numTensors;
      const task = TASKS[name]();
      const params = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => task.init(random.PRNGKey(0)));
      const di = treeDiff(params, want.init);
      expect(di.leaves).toBe(Object.keys(want.init).length);
      expect(di.maxAbs).toBeLessThanOrEqual(1e-6);
      const batch = { image: toTensor(want.batch.image), label: toTensor(want.batch.label) };
      const out = task.valueAndGrad(params, null, random.PRNGKey(1), batch);
      expect(goldenDiff(out.loss, want.loss).maxAbs).toBeLessThanOrEqual(1e-5);
      const dg = treeDiff(out.grad, want.grad);
      expect(dg.leaves).toBe(Object.keys(want.grad).length);
      expect(dg.maxAbs).toBeLessThanOrEqual(1e-5);
      const losses = tf.tensor1d([-1, 0.5, 3, 100]);
      const norm = task.normalizer(losses);
      expect(goldenDiff(norm, want['normalizer([-1, 0.5, 3, 100])']).maxAbs).toBeLessThanOrEqual(1e-6);
      tf.dispose([params, batch, out, losses, norm] as any);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
