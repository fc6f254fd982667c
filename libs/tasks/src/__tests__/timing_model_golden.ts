/**
 * The timing models the timed-sampler golden scripts (tools/reference/golden_timed_sample_vit.py,
 * golden_timed_sample_image_mlp_vae.py) saved and ran the reference on, rebuilt here from the same
 * keys: `timing_model_forward`'s haiku init with PRNGKey(seeds.time), the normalizer state
 * min = uniform(PRNGKey(seeds.state), [4096, 8], -2, 1), max = min + uniform(PRNGKey(seeds.state + 1), [4096, 8], 0.5, 3);
 * and the flax msgpack file `checkpoints.save_state` writes for one.
 */
import * as fs from 'fs';
import * as path from 'path';
import { msgpackSerialize, NdArray, random } from '@lopt/core';
import type { RandomMode } from '../../../../test/golden';
import { initTimingModel, type TimingModelWeights } from '../parametric/time_model';

/** The golden scripts' timing model for `seeds`, in random mode `mode`. */
export function goldenTimingWeights(mode: RandomMode, seeds: { time: number; state: number }): TimingModelWeights {
  return random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => {
    const w = initTimingModel(random.PRNGKey(seeds.time));
    const lo = random.uniformArray(random.PRNGKey(seeds.state), 4096 * 8, -2, 1);
    const span = random.uniformArray(random.PRNGKey(seeds.state + 1), 4096 * 8, 0.5, 3);
    w.state.min = lo;
    w.state.max = lo.map((x, i) => Math.fround(x + span[i]));
    return w;
  });
}

function nd(values: Float32Array, shape: number[]): NdArray {
  return new NdArray(shape, 'float32', new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** `checkpoints.save_state(file, (params, state))` of a timing model, as flax msgpack. */
export function writeTimingModel(file: string, w: TimingModelWeights): void {
  const params = Object.fromEntries(Object.entries(w.params).map(([m, ps]) => [m, Object.fromEntries(Object.entries(ps).map(([n, p]) => [n, nd(p.values, p.shape)]))]));
  const state = { '~': { min: nd(w.state.min, [4096, 8]), max: nd(w.state.max, [4096, 8]) } };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, msgpackSerialize({ '0': params, '1': state }));
}
