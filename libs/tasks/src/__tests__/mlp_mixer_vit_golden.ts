/**
 * The MLP-Mixer and ViT tasks and the parametric ViT family against the real learned_optimization
 * (test/golden/<mode>/mlp_mixer_vit.json, made by tools/reference/golden_mlp_mixer_vit.py with
 * vision_transformer's flax models), both random modes: `init(PRNGKey(k))` (flax-exact), loss and
 * gradient on the file's 2-image batch at init and at perturbed parameters (both heads start at
 * zero, so at init only the head has a gradient), the normalizer, and `sample_vit`'s
 * configurations. Shared by the cpu and wasm test files. No dataset is loaded.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves, treeMap } from '@lopt/core';
import { golden, goldenDiff, leafAt, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { BaseTask, cfgToPlain, MLPMixerTask, mlpMixerTask, ParametricVIT, sampleVit, unavailableDatasets, VisionTransformerTask, vitTask } from '../index';

const K = random.PRNGKey;
export const INIT_TOLERANCE = 1e-6;
export const LOSS_GRAD_TOLERANCE = 1e-5;

function toTensor(a: GoldenArray): tf.Tensor {
  const flat = (v: unknown): number[] => (Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [Number(v)]);
  return tf.tensor(flat(a.values), a.shape, a.dtype.startsWith('int') ? 'int32' : 'float32');
}

/** `x + 0.05·sin(0.37·i)` on every leaf (i over the flattened leaf), as the golden script's `perturb`. */
function perturb(params: any): any {
  return tf.tidy(() =>
    treeMap((x: tf.Tensor) => {
      const d = new Float32Array(x.size);
      for (let i = 0; i < d.length; i++) d[i] = 0.05 * Math.sin(0.37 * i);
      return tf.add(x, tf.tensor(d, x.shape));
    }, params),
  );
}

/** A stand-in for datasets: the abstract batch (2 images) and the class count only. */
const standIn = (shape: [number, number, number], classes: number) => unavailableDatasets('golden stand-in', 2, shape, classes, 'golden stand-in: no batches');

const DATASET_SHAPE: Record<string, [[number, number, number], number]> = {
  mnist_datasets: [[0, 0, 1], 10],
  fashion_mnist_datasets: [[0, 0, 1], 10],
  cifar10_datasets: [[0, 0, 3], 10],
  cifar100_datasets: [[0, 0, 3], 100],
  imagenet16_datasets: [[0, 0, 3], 1000],
};

/** The lopt-ts task of a golden case. */
function taskOf(name: string, file: any): BaseTask {
  if (name === 'mixer_small') return new MLPMixerTask({ patchSize: 4, hiddenDim: 16, numBlocks: 2, tokensMlpDim: 8, channelsMlpDim: 24, datasets: standIn([10, 10, 1], 10) });
  if (name === 'vit_small_dropout') {
    return new VisionTransformerTask({ patchSize: 4, hiddenSize: 16, mlpDim: 24, numHeads: 2, numLayers: 2, dropoutRate: 0.3, attentionDropoutRate: 0.2, datasets: standIn([8, 8, 3], 5) });
  }
  if (name === 'ParametricVIT_sampled') {
    const c = file.ParametricVIT_sampled;
    const kw = file.samplers.sample_vit[c.sample_key].kwargs;
    const lf = (v: any) => v.LogFeature;
    const [[, , ch], classes] = DATASET_SHAPE[c.dataset];
    const [h, w] = lf(kw.datasets.kwargs.image_size);
    const family = new ParametricVIT({
      datasets: standIn([h, w, ch], classes),
      patchSize: kw.patch_size,
      hiddenSize: lf(kw.hidden_size),
      mlpDim: lf(kw.mlp_dim),
      numHeads: lf(kw.num_heads),
      layers: lf(kw.layers),
      dropout: kw.dropout,
      attentionDropout: kw.attension_dropout,
    });
    const tp = family.sample(K(4));
    const task = family.taskFn(tp);
    tf.dispose(treeLeaves<tf.Tensor>(tp));
    return task;
  }
  return name.startsWith('MLPMixer_') ? mlpMixerTask(name) : vitTask(name);
}

/** The small cases every run checks (full values): both model classes and a sampled ParametricVIT. */
export const SMALL_CASES = ['mixer_small', 'vit_small_dropout', 'ParametricVIT_sampled'];
/**
 * The reference's own fixed tasks at their sizes (2M-11M parameters, stored as heads + checksums):
 * their init alone takes 10-55 s here (jax's threefry in JS, ~5 µs a value), so they run only
 * with LOPT_GOLDEN_FULL=1.
 */
export const FULL_CASES = ['MLPMixer_Cifar100_tiny16', 'VIT_Cifar100_skinnydeep', 'VIT_Cifar100_wideshallow'];

/** The golden tests of `cases` (and the sampler) on `backend`, in both random modes. */
export function describeMixerVitGolden(backend: string, cases: string[] = process.env.LOPT_GOLDEN_FULL === '1' ? [...SMALL_CASES, ...FULL_CASES] : SMALL_CASES): void {
  describe.each(MODES)(`MLP-Mixer / ViT = reference, %s mode, ${backend}`, (mode) => {
    const file = () => golden(mode, 'mlp_mixer_vit.json');
    const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);

    test.each(cases)('%s: init, loss and gradient at init and at perturbed params, normalizer', (name) => {
      const f = file();
      const want = f[name];
      const before = tf.memory().numTensors;
      const task = taskOf(name, f);
      const [initKey, lossKey] = name === 'ParametricVIT_sampled' ? [2, 3] : [0, 1];
      const params = inMode(() => task.init(K(initKey)));
      const di = treeDiff(params, want.init);
      expect(di.leaves).toBe(Object.keys(want.init).length);
      expect(treeLeaves(params).length).toBe(di.leaves);
      expect({ worst: di.worst, ok: di.maxAbs <= INIT_TOLERANCE }).toEqual({ worst: di.worst, ok: true });
      const b = f.batches[want.batch];
      const batch = { image: toTensor(b.image), label: toTensor(b.label) };
      const pp = perturb(params);
      for (const [p, suffix] of [[params, ''], [pp, '_p']] as const) {
        const out = inMode(() => task.valueAndGrad(p, null, K(lossKey), batch));
        expect({ suffix, loss: goldenDiff(out.loss, want[`loss${suffix}`]).maxAbs <= LOSS_GRAD_TOLERANCE }).toEqual({ suffix, loss: true });
        // The attention key bias's gradient is 0 in exact arithmetic (softmax ignores a shift shared
        // by all keys); both sides hold float noise there, which head + checksums (relative to Σ|g|)
        // cannot compare: it is checked to be ~0 instead.
        const wantGrad = want[`grad${suffix}`] as Record<string, GoldenArray>;
        const noise = Object.keys(wantGrad).filter((k) => k.endsWith("['key']['bias']") && wantGrad[k].values === undefined);
        const g = treeDiff(out.grad, Object.fromEntries(Object.entries(wantGrad).filter(([k]) => !noise.includes(k))));
        expect(g.leaves + noise.length).toBe(Object.keys(wantGrad).length);
        for (const k of noise) {
          const x = leafAt(out.grad, k) as tf.Tensor;
          expect({ k, zero: tf.tidy(() => tf.max(tf.abs(x)).dataSync()[0]) <= 1e-6 }).toEqual({ k, zero: true });
        }
        expect({ suffix, worst: g.worst, ok: g.maxAbs <= LOSS_GRAD_TOLERANCE }).toEqual({ suffix, worst: g.worst, ok: true });
        tf.dispose([out.loss, ...treeLeaves<tf.Tensor>(out.grad)]);
      }
      const losses = tf.tensor1d([-1, 0.5, 3, 100]);
      const norm = task.normalizer(losses);
      expect(goldenDiff(norm, want['normalizer([-1, 0.5, 3, 100])']).maxAbs).toBeLessThanOrEqual(1e-6);
      tf.dispose([losses, norm, ...treeLeaves<tf.Tensor>(params), ...treeLeaves<tf.Tensor>(pp), batch.image, batch.label]);
      expect(tf.memory().numTensors).toBe(before);
    });

    test('sample_vit(PRNGKey(i)) for i < 20 equals the reference', () => {
      const want = file().samplers.sample_vit;
      inMode(() => expect(want.map((_: unknown, i: number) => cfgToPlain(sampleVit(K(i))))).toEqual(want));
    });
  });
}
