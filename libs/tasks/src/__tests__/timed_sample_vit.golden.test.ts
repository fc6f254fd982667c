/**
 * `timed_sample_vit` and its timing model against the real learned_optimization
 * (test/golden/<mode>/timed_sample_vit.json, made by tools/reference/golden_timed_sample_vit.py),
 * both random modes: the featurisation of `sample_vit(PRNGKey(i))` (key ids, float and int
 * features, exact), the time model's prediction (weights built haiku-exact from the same keys as
 * the script's, state from the same uniform draws), and `timed_sample_vit(PRNGKey(i), max_time)`
 * read from model files written here in flax msgpack (the script wrote its models with the
 * reference's `checkpoints.save_state` and ran the reference unmodified on them).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { random, registry } from '@lopt/core';
import { golden, MODES } from '../../../../test/golden';
import { cfgToPlain, type CFGValue } from '../parametric/cfgobject';
import { sampleImageConv } from '../parametric/image_conv';
import { sampleImageMlp } from '../parametric/image_mlp';
import { sampleImageMlpAe } from '../parametric/image_mlp_ae';
import { sampleImageResnet } from '../parametric/image_resnet';
import { sampleLmRnn } from '../parametric/lm_rnn';
import { sampleLmTransformer } from '../parametric/lm_transformer';
import { timedSampleImageConv, timedSampleImageMlp, timedSampleImageMlpAe, timedSampleImageResnet, timedSampleLmRnn, timedSampleLmTransformer } from '../parametric/timed_samplers';
import { clearTimingModels, featurizeMany, hashTrick, loadTimingModel, TIMING_MODEL_PATHS, TimingModel, TimingModelError, type TimingModelWeights } from '../parametric/time_model';
import { DATASET_FUNCTIONS } from '../parametric/datasets';
import { ParametricVIT, sampleVit, timedSampleVit } from '../parametric/vit';
import { useTestBackend } from './helpers';
import { goldenTimingWeights, writeTimingModel } from './timing_model_golden';

beforeAll(async () => {
  await useTestBackend();
});
afterAll(() => clearTimingModels());

const K = random.PRNGKey;

test('hash_trick is md5 mod 2^30', () => {
  // int(md5(b"ParametricVIT").hexdigest(), 16) % 2**30, as in the golden file's key ids
  const f = golden('legacy', 'timed_sample_vit.json');
  expect(hashTrick('ParametricVIT')).toBe(f.features[0].key_feats.values[0][0]);
  expect(hashTrick('')).toBe(Number(BigInt('0xd41d8cd98f00b204e9800998ecf8427e') % 2n ** 30n));
});

describe.each(MODES)('timed_sample_vit = reference, %s mode', (mode) => {
  const file = () => golden(mode, 'timed_sample_vit.json');
  const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);
  let weights: TimingModelWeights;

  beforeAll(() => {
    weights = goldenTimingWeights(mode, file().seeds);
  });

  test('featurize_many of sample_vit(PRNGKey(i)), i < 12: key ids, float and int features; the time model predicts the same times', () => {
    const model = new TimingModel(weights, 'time');
    file().features.forEach((want: any, i: number) => {
      const cfg = inMode(() => sampleVit(K(i)));
      expect(cfgToPlain(cfg)).toEqual(want.sample);
      const f = featurizeMany([cfg]);
      const N = want.int_feats.shape[0];
      expect(f.length).toBe(N);
      expect(Array.from(f.keys)).toEqual(want.key_feats.values.flat());
      expect(Array.from(f.floats)).toEqual(want.float_feats.values.flat());
      expect(Array.from(f.ints)).toEqual(want.int_feats.values);
      const [t] = model.predict(f);
      expect({ i, rel: Math.abs(t / want.time - 1) < 1e-5 }).toEqual({ i, rel: true });
    });
  });

  test("the other samplers' configurations featurise as the reference's (what their timed samplers would reject by)", () => {
    const samplers: Record<string, (k: ReturnType<typeof K>) => CFGValue> = {
      sample_image_mlp: sampleImageMlp,
      sample_image_conv: sampleImageConv,
      sample_image_mlp_ae: sampleImageMlpAe,
      sample_image_resnet: sampleImageResnet,
      sample_lm_rnn: sampleLmRnn,
      sample_lm_transformer: sampleLmTransformer,
    };
    const other = file().other_samplers as Record<string, any[]>;
    expect(Object.keys(other).sort()).toEqual(Object.keys(samplers).sort());
    for (const [name, rows] of Object.entries(other)) {
      rows.forEach((want, i) => {
        const cfg = inMode(() => samplers[name](K(i)));
        expect({ name, i, cfg: cfgToPlain(cfg) }).toEqual({ name, i, cfg: want.sample });
        const f = featurizeMany([cfg]);
        expect({ name, i, keys: Array.from(f.keys), floats: Array.from(f.floats), ints: Array.from(f.ints) }).toEqual({
          name,
          i,
          keys: want.key_feats.values.flat(),
          floats: want.float_feats.values.flat(),
          ints: want.int_feats.values,
        });
      });
    }
  });

  test('the other timed samplers: their sampler, their model file, the first draw under the limit', () => {
    const model = new TimingModel(weights, 'time');
    const cases: [string, (k: ReturnType<typeof K>, t?: number, o?: object) => CFGValue, (k: ReturnType<typeof K>) => CFGValue][] = [
      ['sample_image_mlp', timedSampleImageMlp, sampleImageMlp],
      ['sample_image_conv', timedSampleImageConv, sampleImageConv],
      ['sample_image_mlp_ae', timedSampleImageMlpAe, sampleImageMlpAe],
      ['sample_image_resnet', timedSampleImageResnet, sampleImageResnet],
      ['sample_lm_rnn', timedSampleLmRnn, sampleLmRnn],
      ['sample_lm_transformer', timedSampleLmTransformer, sampleLmTransformer],
    ];
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-timing-none-'));
    for (const [name, timedFn, sampler] of cases) {
      // every draw passes an infinite limit: the first, sampler(split(next(PRNGSequence(key)), 1)[0])
      const first = inMode(() => sampler(random.split(new random.PRNGSequence(K(5)).next(), 1)[0]));
      expect(cfgToPlain(inMode(() => timedFn(K(5), Infinity, { models: { time: model } })))).toEqual(cfgToPlain(first));
      // the times rank the draws: a limit just above the first draw's predicted time accepts it
      const t = model.predict(featurizeMany([first]))[0];
      expect(cfgToPlain(inMode(() => timedFn(K(5), t * 1.0001, { models: { time: model } })))).toEqual(cfgToPlain(first));
      expect(() => timedFn(K(5), undefined, { root })).toThrow(TIMING_MODEL_PATHS[name].time!);
    }
  });

  test('timed_sample_vit(PRNGKey(i), max_time) from model files in LOPT_TIMING_MODEL_DIR; nothing under a tiny limit is an error', () => {
    const f = file();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-timing-'));
    const paths = TIMING_MODEL_PATHS.sample_vit;
    // the reference never reads the valid model's predictions (see time_model.ts): any valid model file does
    writeTimingModel(path.join(root, paths.time!), weights);
    fs.mkdirSync(path.dirname(path.join(root, paths.valid!)), { recursive: true });
    fs.copyFileSync(path.join(root, paths.time!), path.join(root, paths.valid!));
    const old = process.env.LOPT_TIMING_MODEL_DIR;
    process.env.LOPT_TIMING_MODEL_DIR = root;
    try {
      clearTimingModels();
      expect(loadTimingModel(paths.time!, 'time').weights.params.linear_7.w.values).toEqual(weights.params.linear_7.w.values);
      const got = inMode(() => f.timed.map((_: unknown, i: number) => cfgToPlain(timedSampleVit(K(i), f.max_time))));
      expect(got).toEqual(f.timed);
      // the registered family: the ParametricVIT of the timed sample
      const i = f.timed.findIndex((c: any) => c.kwargs.datasets.obj in DATASET_FUNCTIONS);
      expect(i).toBeGreaterThanOrEqual(0);
      const fam = inMode(() => registry.create('task_family', 'TimedSampledVIT', { seed: i, maxTime: f.max_time })) as ParametricVIT;
      expect(fam.name).toBe(`TimedSampledVIT_${i}`);
      const kw = f.timed[i].kwargs;
      expect([fam.config.patchSize, fam.config.layers, fam.config.hiddenSize]).toEqual([kw.patch_size, kw.layers.LogFeature, kw.hidden_size.LogFeature]);
      const image = (fam.datasets!.split('train').abstractBatch() as { image: { shape: number[] } }).image.shape;
      expect(image.slice(0, 3)).toEqual([kw.datasets.kwargs.batch_size.LogFeature, ...kw.datasets.kwargs.image_size.LogFeature]);
      // 512 rejected draws, then the reference's error (one mode is enough: the loop does not depend on it)
      if (mode === 'legacy') {
        expect(() => inMode(() => timedSampleVit(K(0), f.none_found.max_time))).toThrow(`Nothing found for static: ${paths.time} and time ${f.none_found.max_time}`);
        expect(f.none_found.error).toContain(`Nothing found for static: ${paths.time} and time ${f.none_found.max_time}`);
      }
    } finally {
      clearTimingModels();
      if (old === undefined) delete process.env.LOPT_TIMING_MODEL_DIR;
      else process.env.LOPT_TIMING_MODEL_DIR = old;
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

test('without the model files: a TimingModelError naming the file and where the reference keeps it', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-timing-none-'));
  expect(() => timedSampleVit(K(0), 1e-4, { root })).toThrow(TimingModelError);
  expect(() => timedSampleVit(K(0), 1e-4, { root })).toThrow(/gs:\/\/gresearch\/learned_optimization\/task_timing_models\/sample_vit\/time\/tpu_TPUv4\/20220426_212651\.weights/);
  fs.writeFileSync(path.join(root, 'bad.weights'), Buffer.from([0x81, 0xa1, 0x30, 0x01]));
  expect(() => loadTimingModel('bad.weights', 'time', root)).toThrow(/expected the state dict|not an array/);
});
