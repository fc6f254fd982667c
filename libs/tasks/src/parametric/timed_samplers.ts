/**
 * The reference's other timed samplers (`timed_sample_image_mlp` in tasks/parametric/image_mlp.py,
 * `timed_sample_image_conv` in image_conv.py, `timed_sample_image_mlp_ae` in image_mlp_ae.py,
 * `timed_sample_image_resnet` in image_resnet.py, `timed_sample_lm_rnn` in lm_rnn.py,
 * `timed_sample_lm_transformer` in lm_transformer.py): each is `rejection_sample` of its sampler
 * against that sampler's timing model (`time_model.ts`), with the reference's default time limit
 * and, where the reference passes one, its valid model. `timedSampleVit` is in `vit.ts`.
 * (`timed_sample_image_mlp_vae` is not here: the reference's VAE module needs
 * tensorflow_probability, so its configurations' featurisation has no golden check.)
 */
import type { PRNGKey } from '@lopt/core';
import type { CFGObject } from './cfgobject';
import { sampleImageConv } from './image_conv';
import { sampleImageMlp } from './image_mlp';
import { sampleImageMlpAe } from './image_mlp_ae';
import { sampleImageResnet } from './image_resnet';
import { sampleLmRnn } from './lm_rnn';
import { sampleLmTransformer } from './lm_transformer';
import { rejectionSample, TIMING_MODEL_PATHS, type RejectionSampleOptions } from './time_model';

type TimedOptions = Omit<RejectionSampleOptions, 'validSuffix'>;

function timed(name: string, sampler: (key: PRNGKey) => CFGObject, withValid: boolean) {
  return (key: PRNGKey, maxTime: number, opts: TimedOptions): CFGObject => {
    const paths = TIMING_MODEL_PATHS[name];
    return rejectionSample(sampler, paths.time!, key, maxTime, { ...opts, validSuffix: withValid ? paths.valid : undefined });
  };
}

const imageMlp = timed('sample_image_mlp', sampleImageMlp, false);
const imageConv = timed('sample_image_conv', sampleImageConv, false);
const imageMlpAe = timed('sample_image_mlp_ae', sampleImageMlpAe, false);
const imageResnet = timed('sample_image_resnet', sampleImageResnet, false);
const lmRnn = timed('sample_lm_rnn', sampleLmRnn, false);
const lmTransformer = timed('sample_lm_transformer', sampleLmTransformer, true);

/** `timed_sample_image_mlp(key, max_time=1e-5)`: `sample_image_mlp` draws under the time limit (no valid model). */
export function timedSampleImageMlp(key: PRNGKey, maxTime = 1e-5, opts: TimedOptions = {}): CFGObject {
  return imageMlp(key, maxTime, opts);
}

/** `timed_sample_image_conv(key, max_time=1e-5)`: `sample_image_conv` draws under the time limit (no valid model). */
export function timedSampleImageConv(key: PRNGKey, maxTime = 1e-5, opts: TimedOptions = {}): CFGObject {
  return imageConv(key, maxTime, opts);
}

/** `timed_sample_image_mlp_ae(key, max_time=1e-5)`: `sample_image_mlp_ae` draws under the time limit (no valid model). */
export function timedSampleImageMlpAe(key: PRNGKey, maxTime = 1e-5, opts: TimedOptions = {}): CFGObject {
  return imageMlpAe(key, maxTime, opts);
}

/** `timed_sample_image_resnet(key, max_time=1e-4)`: `sample_image_resnet` draws under the time limit (no valid model). */
export function timedSampleImageResnet(key: PRNGKey, maxTime = 1e-4, opts: TimedOptions = {}): CFGObject {
  return imageResnet(key, maxTime, opts);
}

/** `timed_sample_lm_rnn(key, max_time=1e-4)`: `sample_lm_rnn` draws under the time limit (no valid model). */
export function timedSampleLmRnn(key: PRNGKey, maxTime = 1e-4, opts: TimedOptions = {}): CFGObject {
  return lmRnn(key, maxTime, opts);
}

/** `timed_sample_lm_transformer(key, max_time=1e-4)`: `sample_lm_transformer` draws under the time limit, its valid model loaded too. */
export function timedSampleLmTransformer(key: PRNGKey, maxTime = 1e-4, opts: TimedOptions = {}): CFGObject {
  return lmTransformer(key, maxTime, opts);
}
