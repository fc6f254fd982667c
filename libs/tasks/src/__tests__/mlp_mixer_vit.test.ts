/**
 * MLP-Mixer / ViT / ParametricVIT beyond the golden values: registration, the datasets without a
 * loader, shapes of the patch embeddings (SAME and VALID), the need for keys with dropout, and
 * ParametricVIT built from a sampled configuration.
 */
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeLeaves } from '@lopt/core';
import {
  CFGObject,
  DATASET_FUNCTIONS,
  FIXED_MLP_MIXER_TASKS,
  FIXED_VIT_TASKS,
  MLPMixerTask,
  mlpMixerTask,
  objectFromConfig,
  ParametricVIT,
  sampleVit,
  sampledVit,
  unavailableDatasets,
  VisionTransformerTask,
  vitTask,
} from '../index';

const K = random.PRNGKey;
const standIn = (shape: [number, number, number], classes: number, bs = 2) => unavailableDatasets('stand-in', bs, shape, classes, 'stand-in: no batches');

describe('MLP-Mixer and ViT tasks', () => {
  test("every name of mlp_mixer.py and vit.py is registered, with the reference's sizes", () => {
    const ref = [];
    for (const d of ['ImageNet64', 'Food101_64', 'Cifar100']) {
      ref.push(`MLPMixer_${d}_small16`, `MLPMixer_${d}_tiny16`, `MLPMixer_${d}_bs256_tiny16`, `VIT_${d}_wideshallow`, `VIT_${d}_skinnydeep`);
    }
    for (const name of ref) expect(registry.has('task', name)).toBe(true);
    for (const name of [...Object.keys(FIXED_MLP_MIXER_TASKS), ...Object.keys(FIXED_VIT_TASKS), 'MLPMixerTask', 'VisionTransformerTask']) {
      expect(registry.has('task', name)).toBe(true);
    }
    expect(registry.has('task_family', 'ParametricVIT')).toBe(true);
    expect(FIXED_MLP_MIXER_TASKS.MLPMixer_Food101_64_bs256_tiny16).toMatchObject({ batchSize: 256, hiddenDim: 512, numBlocks: 5, tokensMlpDim: 384, channelsMlpDim: 2048, patchSize: 16 });
    expect(FIXED_MLP_MIXER_TASKS.MLPMixer_ImageNet64_small16).toMatchObject({ batchSize: 128, hiddenDim: 768, numBlocks: 8, tokensMlpDim: 384, channelsMlpDim: 3072 });
    expect(FIXED_VIT_TASKS.VIT_Cifar100_wideshallow).toMatchObject({ hiddenSize: 384, mlpDim: 1536, numHeads: 6, numLayers: 6, patchSize: 16 });
    expect(FIXED_VIT_TASKS.VIT_ImageNet64_skinnydeep).toMatchObject({ hiddenSize: 128, mlpDim: 512, numHeads: 4, numLayers: 10 });
  });

  test("numParams() from the config alone: the reference's counts for its tasks, and a real init's for small ones", () => {
    // jax's counts (test/golden/*/mlp_mixer_vit.json, num_params)
    expect(mlpMixerTask('MLPMixer_Cifar100_tiny16').numParams()).toBe(10972152);
    expect(vitTask('VIT_Cifar100_skinnydeep').numParams()).toBe(2095076);
    expect(vitTask('VIT_Cifar100_wideshallow').numParams()).toBe(10983652);
    const small = [
      new MLPMixerTask({ patchSize: 4, hiddenDim: 6, numBlocks: 2, tokensMlpDim: 5, channelsMlpDim: 7, datasets: standIn([9, 10, 2], 3) }),
      new VisionTransformerTask({ patchSize: 4, hiddenSize: 6, mlpDim: 7, numHeads: 2, numLayers: 2, datasets: standIn([9, 10, 2], 3) }),
    ];
    for (const task of small) {
      const params = task.init(K(0));
      const leaves = treeLeaves<tf.Tensor>(params);
      expect(task.numParams()).toBe(leaves.reduce((a, l) => a + l.size, 0));
      tf.dispose(leaves);
    }
    const family = new ParametricVIT({ datasets: standIn([8, 8, 3], 10), patchSize: 4, hiddenSize: 12, mlpDim: 16, numHeads: 3, layers: 2 });
    expect(family.valueCounts()).toEqual({ taskParam: 1, params: family.taskFn(null).numParams() });
  });

  test('ImageNet 64x64 and Food-101 tasks know their shapes and classes; without files (Food-101: no loader) their batches throw', () => {
    const m = mlpMixerTask('MLPMixer_Food101_64_tiny16');
    expect([m.imageShape, m.numClasses, m.numTokens]).toEqual([[64, 64, 3], 101, 16]);
    expect(() => m.datasets!.split('train').next()).toThrow(/food101_64: lopt-ts has no loader/);
    const v = vitTask('VIT_ImageNet64_skinnydeep');
    expect([v.imageShape, v.numClasses, v.seqLength]).toEqual([[64, 64, 3], 1000, 17]);
    const old = process.env.LOPT_DATA_DIR;
    process.env.LOPT_DATA_DIR = '/nonexistent-lopt-data';
    try {
      expect(() => v.datasets!.split('test').next()).toThrow(/imagenet64 not found: looked for imagenet2012_64\/.*\/nonexistent-lopt-data/);
    } finally {
      if (old === undefined) delete process.env.LOPT_DATA_DIR;
      else process.env.LOPT_DATA_DIR = old;
    }
  });

  test('patch embeddings: SAME pads the Mixer stem, VALID drops the ViT remainder; N stacked tasks give N losses', () => {
    const mixer = new MLPMixerTask({ patchSize: 4, hiddenDim: 8, numBlocks: 1, tokensMlpDim: 4, channelsMlpDim: 8, datasets: standIn([9, 10, 2], 3) });
    expect(mixer.numTokens).toBe(9);
    const vit = new VisionTransformerTask({ patchSize: 4, hiddenSize: 8, mlpDim: 8, numHeads: 2, numLayers: 1, datasets: standIn([9, 10, 2], 3) });
    expect(vit.seqLength).toBe(5);
    for (const task of [mixer, vit]) {
      const before = tf.memory().numTensors;
      const params = task.initBatch([K(0), K(1), K(2)]);
      expect(((params as any).params.head.kernel as tf.Tensor).shape).toEqual([3, 8, 3]);
      const data = { image: tf.randomUniform([3, 2, 9, 10, 2], 0, 1, 'float32', 1), label: tf.tensor2d([[0, 1], [2, 0], [1, 1]], [3, 2], 'int32') };
      const loss = task.lossBatch(params, [K(3), K(4), K(5)], data);
      expect(loss.shape).toEqual([3]);
      // both heads start at zero: every task's loss is ln(3)
      expect(Array.from(loss.dataSync()).map((x) => Math.abs(x - Math.log(3)) < 1e-5)).toEqual([true, true, true]);
      tf.dispose([loss, data.image, data.label, ...treeLeaves<tf.Tensor>(params)]);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  test('a ViT with dropout needs one key per task; the same key gives the same loss, another key another', () => {
    const task = new VisionTransformerTask({ patchSize: 2, hiddenSize: 4, mlpDim: 4, numHeads: 1, numLayers: 1, dropoutRate: 0.5, datasets: standIn([4, 4, 1], 2) });
    const params = task.init(K(0)) as any;
    // the head starts at zero (every loss ln 2): give it weights so dropout shows in the loss
    params.params.head.kernel.dispose();
    params.params.head.kernel = tf.randomNormal([4, 2], 0, 1, 'float32', 3);
    const data = { image: tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 4), label: tf.tensor1d([0, 1], 'int32') };
    expect(() => task.loss(params, null as any, data)).toThrow(/needs one key per task/);
    const a = task.loss(params, K(1), data);
    const b = task.loss(params, K(1), data);
    const c = task.loss(params, K(2), data);
    expect(a.dataSync()[0]).toBe(b.dataSync()[0]);
    expect(a.dataSync()[0]).not.toBe(c.dataSync()[0]);
    tf.dispose([a, b, c, data.image, data.label, ...treeLeaves<tf.Tensor>(params)]);
  });

  test('an image smaller than one ViT patch leaves the cls token alone (as the reference): loss ln C, embedding gradient 0', () => {
    const task = new VisionTransformerTask({ patchSize: 16, hiddenSize: 4, mlpDim: 4, numHeads: 1, numLayers: 1, datasets: standIn([8, 8, 1], 2) });
    expect(task.seqLength).toBe(1);
    const params = task.init(K(0));
    const data = { image: tf.ones([2, 8, 8, 1]), label: tf.tensor1d([0, 1], 'int32') };
    const out = task.valueAndGrad(params, null, K(1), data);
    expect(Math.abs(out.loss.dataSync()[0] - Math.log(2))).toBeLessThan(1e-6);
    const g = (out.grad as any).params.embedding;
    expect([tf.max(tf.abs(g.kernel)).dataSync()[0], tf.max(tf.abs(g.bias)).dataSync()[0]]).toEqual([0, 0]);
    expect(g.kernel.shape).toEqual([16, 16, 1, 4]);
    tf.dispose([data.image, data.label, out.loss, ...treeLeaves<tf.Tensor>(out.grad), ...treeLeaves<tf.Tensor>(params)]);
  });
});

describe('ParametricVIT', () => {
  test('sample is a zero per task and every task is the one configured ViT', () => {
    const family = new ParametricVIT({ datasets: standIn([8, 8, 3], 10), patchSize: 4, hiddenSize: 12, mlpDim: 16, numHeads: 3, layers: 2, dropout: 0.25, attentionDropout: 0.125 });
    const s = family.sampleBatch([K(0), K(1)]) as tf.Tensor;
    expect(Array.from(s.dataSync())).toEqual([0, 0]);
    const task = family.taskFn(s);
    expect(task.config).toMatchObject({ patchSize: 4, hiddenSize: 12, mlpDim: 16, numHeads: 3, numLayers: 2, dropoutRate: 0.25, attentionDropoutRate: 0.125, name: 'ParametricVIT' });
    s.dispose();
  });

  test('SampledVIT: the family of sample_vit(PRNGKey(seed)), on Fashion-MNIST and on MNIST', () => {
    // legacy mode: seed 3 samples Fashion-MNIST 16x16, patch 8, 3 layers, hidden 100; seed 2 MNIST
    const f = sampledVit({ seed: 3 });
    expect(f.name).toBe('SampledVIT_3');
    expect(f.config).toMatchObject({ patchSize: 8, layers: 3, hiddenSize: 100 });
    expect(f.datasets!.split('train').abstractBatch()).toMatchObject({ image: { shape: [expect.any(Number), 16, 16, 1] } });
    // MNIST is buildable (datasets/mnist.ts; its files are read on the first batch)
    const m = sampledVit({ seed: 2 });
    expect(m.datasets!.extraInfo?.name).toBe('mnist');
    expect((m.datasets!.split('train').abstractBatch() as any).image.shape.slice(-1)).toEqual([1]);
  });

  test("a sampled configuration on a dataset lopt-ts builds becomes a family (object_from_config)", () => {
    const i = Array.from({ length: 40 }, (_, j) => j).find((j) => (sampleVit(K(j)).kwargs.datasets as CFGObject).obj in DATASET_FUNCTIONS)!;
    const cfg = sampleVit(K(i));
    const kw = cfg.kwargs as any;
    const family = objectFromConfig(cfg) as ParametricVIT;
    expect(family).toBeInstanceOf(ParametricVIT);
    expect(family.config).toMatchObject({ patchSize: kw.patch_size, hiddenSize: kw.hidden_size.value, mlpDim: kw.mlp_dim.value, numHeads: kw.num_heads.value, layers: kw.layers.value, dropout: kw.dropout, attentionDropout: kw.attension_dropout });
  });
});
