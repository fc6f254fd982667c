/**
 * `timed_sample_image_mlp_vae` against the real learned_optimization
 * (test/golden/<mode>/timed_sample_image_mlp_vae.json, made by
 * tools/reference/golden_timed_sample_image_mlp_vae.py with tensorflow_probability stubbed, which
 * the sampler never uses), both random modes: the featurisation of `sample_image_mlp_vae(PRNGKey(i))`
 * (exact), the time model's prediction (weights rebuilt from the script's keys), and
 * `timed_sample_image_mlp_vae(PRNGKey(i), max_time)` read from a model file written here.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { random } from '@lopt/core';
import { golden, MODES } from '../../../../test/golden';
import { cfgToPlain } from '../parametric/cfgobject';
import { sampleImageMlpVae } from '../parametric/image_mlp_vae';
import { timedSampleImageMlpVae } from '../parametric/timed_samplers';
import { clearTimingModels, featurizeMany, TIMING_MODEL_PATHS, TimingModel, TimingModelError, type TimingModelWeights } from '../parametric/time_model';
import { goldenTimingWeights, writeTimingModel } from './timing_model_golden';

afterAll(() => clearTimingModels());

const K = random.PRNGKey;

describe.each(MODES)('timed_sample_image_mlp_vae = reference, %s mode', (mode) => {
  const file = () => golden(mode, 'timed_sample_image_mlp_vae.json');
  const inMode = <T>(fn: () => T): T => random.withConfig({ threefryPartitionable: mode === 'partitionable' }, fn);
  let weights: TimingModelWeights;

  beforeAll(() => {
    weights = goldenTimingWeights(mode, file().seeds);
  });

  test('featurize_many of sample_image_mlp_vae(PRNGKey(i)), i < 16, and the predicted times', () => {
    const model = new TimingModel(weights, 'time');
    file().features.forEach((want: any, i: number) => {
      const cfg = inMode(() => sampleImageMlpVae(K(i)));
      expect({ i, cfg: cfgToPlain(cfg) }).toEqual({ i, cfg: want.sample });
      const f = featurizeMany([cfg]);
      expect({ i, keys: Array.from(f.keys), floats: Array.from(f.floats), ints: Array.from(f.ints) }).toEqual({
        i,
        keys: want.key_feats.values.flat(),
        floats: want.float_feats.values.flat(),
        ints: want.int_feats.values,
      });
      const [t] = model.predict(f);
      expect({ i, rel: Math.abs(t / want.time - 1) < 1e-5 }).toEqual({ i, rel: true });
    });
  });

  test('timed_sample_image_mlp_vae(PRNGKey(i), max_time) from the model file in LOPT_TIMING_MODEL_DIR; nothing under a tiny limit is the reference\'s error', () => {
    const f = file();
    expect(TIMING_MODEL_PATHS.sample_image_mlp_vae.time).toBe(f.model_path);
    // the limit splits the 16 predictions: some draws are rejected
    const times = f.features.map((x: any) => x.time);
    expect(times.some((t: number) => t >= f.max_time) && times.some((t: number) => t < f.max_time)).toBe(true);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-timing-vae-'));
    writeTimingModel(path.join(root, f.model_path), weights);
    const old = process.env.LOPT_TIMING_MODEL_DIR;
    process.env.LOPT_TIMING_MODEL_DIR = root;
    try {
      clearTimingModels();
      const got = inMode(() => f.timed.map((_: unknown, i: number) => cfgToPlain(timedSampleImageMlpVae(K(i), f.max_time))));
      expect(got).toEqual(f.timed);
      // 512 rejected draws, then the reference's error (one mode is enough: the loop does not depend on it)
      if (mode === 'legacy') expect(() => inMode(() => timedSampleImageMlpVae(K(0), f.none_found.max_time))).toThrow(f.none_found.error);
    } finally {
      clearTimingModels();
      if (old === undefined) delete process.env.LOPT_TIMING_MODEL_DIR;
      else process.env.LOPT_TIMING_MODEL_DIR = old;
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

test('timedSampleImageMlpVae: the reference default limit 1e-5 s, draws from the key sequence, its model file; without it a TimingModelError naming the file', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-timing-none-'));
  expect(() => timedSampleImageMlpVae(K(0), undefined, { root })).toThrow(TimingModelError);
  expect(() => timedSampleImageMlpVae(K(0), undefined, { root })).toThrow('sample_image_mlp_vae/time/tpu_TPUv4/20220426_212117.weights');
  // the default limit, 1e-5 s: a model predicting just over it for the first draw and just under it for the second takes
  // the second draw, sample_image_mlp_vae(split(next(PRNGSequence(key)), 1)[0]) of the sequence's second key
  let calls = 0;
  const edge = { predict: (f: { length: number }) => new Float32Array(f.length).fill(calls++ === 0 ? 1.001e-5 : 0.999e-5) } as unknown as TimingModel;
  const seq = new random.PRNGSequence(K(5));
  seq.next();
  const second = sampleImageMlpVae(random.split(seq.next(), 1)[0]);
  expect(cfgToPlain(timedSampleImageMlpVae(K(5), undefined, { models: { time: edge } }))).toEqual(cfgToPlain(second));
  expect(calls).toBe(2);
});
