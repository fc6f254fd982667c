/**
 * The reference's other timed samplers (`timed_sample_image_mlp` in tasks/parametric/image_mlp.py,
 * `timed_sample_image_conv` in image_conv.py, `timed_sample_image_mlp_ae` in image_mlp_ae.py,
 * `timed_sample_image_resnet` in image_resnet.py, `timed_sample_lm_rnn` in lm_rnn.py,
 * `timed_sample_lm_transformer` in lm_transformer.py): each is `rejection_sample` of its sampler
 * against that sampler's timing model (`time_model.ts`), with the reference's default time limit
 * and, where the reference passes one, its valid model. `timedSampleVit` is in `vit.ts`.
 */
import type { PRNGKey } from '@lopt/core';
import type { CFGObject } from './cfgobject';
import { sampleImageConv } from './image_conv';
import { sampleImageMlp } from './image_mlp';
import { sampleImageMlpAe } from './image_mlp_ae';
import { sampleImageMlpVae } from './image_mlp_vae';
import { sampleImageResnet } from './image_resnet';
import { sampleLmRnn } from './lm_rnn';
import { sampleLmTransformer } from './lm_transformer';
import { rejectionSample, TIMING_MODEL_PATHS, type RejectionSampleOptions } from './time_model';

type TimedOptions = Omit<RejectionSampleOptions, 'validSuffix'>;

/** `timed_sample_<name>(key, max_time=defaultMaxTime)`: rejection sampling of `sampler` against its timing model. */
function timed(name: string, sampler: (key: PRNGKey) => CFGObject, withValid: boolean, defaultMaxTime: number) {
  return (key: PRNGKey, maxTime = defaultMaxTime, opts: TimedOptions = {}): CFGObject => {
    const paths = TIMING_MODEL_PATHS[name];
    return rejectionSample(sampler, paths.time!, key, maxTime, { ...opts, validSuffix: withValid ? paths.valid : undefined });
  };
}

/** `timed_sample_image_mlp(key, max_time=1e-5)`: `sample_image_mlp` draws under the time limit (no valid model). */
export const timedSampleImageMlp = timed('sample_image_mlp', sampleImageMlp, false, 1e-5);
/** `timed_sample_image_conv(key, max_time=1e-5)`: `sample_image_conv` draws under the time limit (no valid model). */
export const timedSampleImageConv = timed('sample_image_conv', sampleImageConv, false, 1e-5);
/** `timed_sample_image_mlp_ae(key, max_time=1e-5)`: `sample_image_mlp_ae` draws under the time limit (no valid model). */
export const timedSampleImageMlpAe = timed('sample_image_mlp_ae', sampleImageMlpAe, false, 1e-5);
/** `timed_sample_image_mlp_vae(key, max_time=1e-5)`: `sample_image_mlp_vae` draws under the time limit (no valid model). */
export const timedSampleImageMlpVae = timed('sample_image_mlp_vae', sampleImageMlpVae, false, 1e-5);
/** `timed_sample_image_resnet(key, max_time=1e-4)`: `sample_image_resnet` draws under the time limit (no valid model). */
export const timedSampleImageResnet = timed('sample_image_resnet', sampleImageResnet, false, 1e-4);
/** `timed_sample_lm_rnn(key, max_time=1e-4)`: `sample_lm_rnn` draws under the time limit (no valid model). */
export const timedSampleLmRnn = timed('sample_lm_rnn', sampleLmRnn, false, 1e-4);
/** `timed_sample_lm_transformer(key, max_time=1e-4)`: `sample_lm_transformer` draws under the time limit, its valid model loaded too. */
export const timedSampleLmTransformer = timed('sample_lm_transformer', sampleLmTransformer, true, 1e-4);
