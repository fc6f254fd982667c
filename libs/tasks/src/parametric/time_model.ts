/**
 * Timed sampling of task families (reference `time_filter/time_model.py`, `rejection_sample`,
 * `load_model`, `timing_model_forward`, `valid_model_forward`; the featurisation of
 * `tasks/parametric/cfgobject.py`, `flatten_cfg` / `featurize` / `featurize_many`; the model files
 * of `time_filter/model_paths.py`).
 *
 * A timed sampler draws configurations from a sampler until a learned runtime model predicts one
 * runs in less than `maxTime` seconds per step (512 tries, then an error). The model reads a
 * configuration as features: for each leaf of the flattened configuration, the hashed path
 * (`hash_trick`: md5 mod 2^30 of each path part, 8 slots), float features (8 slots: floats,
 * sequences, log-features) and one int feature (ints, bools, hashed strings). Its network
 * (`features_to_hidden`) embeds each leaf with tables indexed by the path hash (mod 4096), mixes the
 * leaves DeepSets-style and predicts `exp(out - 10)` seconds.
 *
 * Quirks kept: the embedding look-ups of `key_feats` and `int_feats` index tables of 4096 rows and
 * of 8 slots with raw hashes and values, which JAX clamps (a hash ≥ 4096 reads row 4095, an int
 * feature ≥ 8, e.g. a patch size of 12, reads slot 7); and `rejection_sample` loads the "valid"
 * model but then checks validity with the *time* model's prediction (`is_valid = forward_fn(...)`),
 * which is nonzero, so only the time limit rejects.
 *
 * lopt-ts numbers are ints or floats by value (an integer-valued number is an int feature); the
 * reference decides by Python type. They agree for every value the samplers here produce (floats
 * there are non-integers, or 0.0, which both featurise alike).
 *
 * Model files: the reference's trained models are flax msgpack files of `(params, state)` at
 * `gs://gresearch/learned_optimization/task_timing_models/<path>` (path per sampler in
 * {@link TIMING_MODEL_PATHS}). lopt-ts reads them from `$LOPT_TIMING_MODEL_DIR` (the reference's
 * override too), else `~/.cache/lopt/task_timing_models`; copy them there (e.g. `gsutil cp -r`).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { msgpackRestore, NdArray, random, type PRNGKey } from '@lopt/core';
import { initializers, HaikuInit } from '@lopt/core';
import { CFGObject, LogFeature, type CFGValue } from './cfgobject';

// ---- featurisation (cfgobject.py) -----------------------------------------------------------------

/** `hash_trick(x)`: the md5 digest of the UTF-8 string as an integer, mod 2^30. */
export function hashTrick(x: string): number {
  const d = crypto.createHash('md5').update(x, 'utf8').digest();
  return d.readUInt32BE(12) & 0x3fffffff;
}

/** A flattened leaf: a float (from a LogFeature, or a non-integer number), an int, a string or a sequence. */
export type FlatValue = { kind: 'float'; value: number } | { kind: 'int'; value: number } | { kind: 'str'; value: string } | { kind: 'seq'; value: number[] };

function flatLeaf(v: CFGValue, logged: boolean): FlatValue {
  if (Array.isArray(v)) {
    const flat = (x: CFGValue): number[] => (Array.isArray(x) ? x.flatMap(flat) : [leafNumber(x, logged)]);
    return { kind: 'seq', value: v.flatMap(flat) };
  }
  if (typeof v === 'string') {
    if (logged) throw new TypeError(`featurize: cannot take the log of the string '${v}'`);
    return { kind: 'str', value: v };
  }
  if (typeof v === 'boolean') return logged ? { kind: 'float', value: Math.log(Number(v)) } : { kind: 'int', value: Number(v) };
  if (typeof v === 'number') {
    if (logged) return { kind: 'float', value: Math.log(v) };
    return Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
  }
  throw new TypeError(`featurize: cannot featurize ${String(v)}`);
}

function leafNumber(x: CFGValue, logged: boolean): number {
  if (typeof x !== 'number' && typeof x !== 'boolean') throw new TypeError(`featurize: a sequence holds ${String(x)}`);
  return logged ? Math.log(Number(x)) : Number(x);
}

/**
 * `flatten_cfg(cfg)`: every leaf with its path (`//Obj/kwarg/NestedObj/kwarg`), LogFeatures taken
 * as the log of their values, sorted by path (as `featurize` orders them).
 */
export function flattenCfg(cfg: CFGValue): [string, FlatValue][] {
  const out = new Map<string, FlatValue>();
  const walk = (k: string, a: CFGValue, logged: boolean) => {
    if (a instanceof CFGObject) {
      for (const [k2, v] of Object.entries(a.kwargs)) walk(`${k}/${a.obj}/${k2}`, v, logged);
    } else if (a instanceof LogFeature) walk(k, a.value as CFGValue, true);
    else out.set(k, flatLeaf(a, logged));
  };
  walk('/', cfg, false);
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `pad(x, 8)` as float32: the first 8 values, zero-filled. */
function pad8(values: number[]): Float32Array {
  const out = new Float32Array(8);
  for (let i = 0; i < Math.min(8, values.length); i++) out[i] = values[i];
  return out;
}

/** `featurize_value(v)`: 8 float features and one int feature. */
export function featurizeValue(v: FlatValue): { floats: Float32Array; int: number } {
  switch (v.kind) {
    case 'str':
      return { floats: new Float32Array(8), int: hashTrick(v.value) };
    case 'seq':
      return { floats: pad8(v.value), int: 0 };
    case 'int':
      return { floats: new Float32Array(8), int: v.value | 0 };
    case 'float':
      return { floats: pad8([v.value]), int: 0 };
  }
}

/** `featurize_cfg_path(path)`: the hashes of the non-empty path parts, padded to 8 (int32). */
export function featurizeCfgPath(p: string): Int32Array {
  const ids = p.split('/').filter((s) => s.length > 0).map(hashTrick);
  const out = new Int32Array(8);
  for (let i = 0; i < Math.min(8, ids.length); i++) out[i] = ids[i];
  return out;
}

/** Features of a batch of configurations, `[B, N, 8]` key ids, `[B, N, 8]` floats, `[B, N]` ints, `[B, N]` mask. */
export interface CfgFeatures {
  batch: number;
  length: number;
  keys: Int32Array;
  floats: Float32Array;
  ints: Int32Array;
  mask: Float32Array;
}

/**
 * `featurize_many(cfgs, max_length)`: each configuration's features (one row per leaf, by path),
 * zero-padded to the longest (or `maxLength`), with a mask of the real rows. `featureType` is the
 * reference's (it only matters for `DoNotFeaturize` leaves, which lopt-ts configurations do not have).
 */
export function featurizeMany(cfgs: CFGValue[], maxLength?: number, _featureType?: string): CfgFeatures {
  const each = cfgs.map((c) => flattenCfg(c));
  const N = maxLength ?? Math.max(...each.map((e) => e.length));
  const B = cfgs.length;
  const f: CfgFeatures = { batch: B, length: N, keys: new Int32Array(B * N * 8), floats: new Float32Array(B * N * 8), ints: new Int32Array(B * N), mask: new Float32Array(B * N) };
  each.forEach((leaves, b) => {
    if (leaves.length > N) throw new RangeError(`Amount of features (${leaves.length}) is greater than max_length!`);
    leaves.forEach(([k, v], n) => {
      const row = b * N + n;
      f.keys.set(featurizeCfgPath(k), row * 8);
      const { floats, int } = featurizeValue(v);
      f.floats.set(floats, row * 8);
      f.ints[row] = int;
      f.mask[row] = 1;
    });
  });
  return f;
}

// ---- the timing model (time_model.py) -------------------------------------------------------------

const N_EMBED = 4096;
const N_HIDDEN = 128;
const N_HIDDEN2 = 512;

/** One parameter: shape and float32 values. */
export interface HostArray {
  shape: number[];
  values: Float32Array;
}

/** A timing model's haiku parameters (`{'~': {int_feats, float_feats, float_feats_b, key_feats}, 'linear': {w, b}, ..., 'linear_7'}`) and state (`{'~': {min, max}}`, [4096, 8]). */
export interface TimingModelWeights {
  params: Record<string, Record<string, HostArray>>;
  state: { min: Float32Array; max: Float32Array };
}

/** The two kinds of model: `time` predicts seconds per step, `valid` the probability a configuration runs. */
export type TimingModelKind = 'time' | 'valid';

/**
 * `hk.transform_with_state(timing_model_forward / valid_model_forward).init(key, feats)`,
 * haiku-exact: the four tables (`int_feats` and `key_feats` uniform in ±0.1, `float_feats`
 * truncated normal with stddev 1/√8, `float_feats_b` zeros), then `linear` .. `linear_7`
 * (`linear_7` has one output). The state (`min`, `max`) is NaN, as haiku's init leaves it before
 * the first call updates it.
 */
export function initTimingModel(key: PRNGKey): TimingModelWeights {
  const hk = new HaikuInit(key);
  hk.getParameter('~', 'int_feats', [N_EMBED, 8, N_HIDDEN], initializers.randomUniform({ minval: -0.1, maxval: 0.1 }));
  hk.getParameter('~', 'float_feats', [N_EMBED, 8, N_HIDDEN], initializers.truncatedNormal({ stddev: 1 / Math.sqrt(8) }));
  hk.getParameter('~', 'float_feats_b', [N_EMBED, N_HIDDEN], initializers.zeros());
  hk.getParameter('~', 'key_feats', [N_EMBED, N_HIDDEN], initializers.randomUniform({ minval: -0.1, maxval: 0.1 }));
  const layers: [number, number][] = [
    [N_HIDDEN, N_HIDDEN],
    [N_HIDDEN, N_HIDDEN],
    [N_HIDDEN, N_HIDDEN],
    [N_HIDDEN, N_HIDDEN],
    [N_HIDDEN, N_HIDDEN2],
    [N_HIDDEN2, N_HIDDEN2],
    [N_HIDDEN2, N_HIDDEN2],
    [N_HIDDEN2, 1],
  ];
  layers.forEach(([i, o], l) => hk.linear(l === 0 ? 'linear' : `linear_${l}`, i, o));
  const params: TimingModelWeights['params'] = {};
  for (const [m, ps] of Object.entries(hk.params)) {
    params[m] = {};
    for (const [n, p] of Object.entries(ps)) params[m][n] = { shape: p.shape, values: p.values };
  }
  return { params, state: { min: new Float32Array(N_EMBED * 8).fill(NaN), max: new Float32Array(N_EMBED * 8).fill(NaN) } };
}

/** A problem with a timing-model file: missing, not flax msgpack, or the wrong parameters. */
export class TimingModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimingModelError';
  }
}

const EXPECTED_SHAPES: Record<string, Record<string, number[]>> = {
  '~': { int_feats: [N_EMBED, 8, N_HIDDEN], float_feats: [N_EMBED, 8, N_HIDDEN], float_feats_b: [N_EMBED, N_HIDDEN], key_feats: [N_EMBED, N_HIDDEN] },
  linear: { w: [N_HIDDEN, N_HIDDEN], b: [N_HIDDEN] },
  linear_1: { w: [N_HIDDEN, N_HIDDEN], b: [N_HIDDEN] },
  linear_2: { w: [N_HIDDEN, N_HIDDEN], b: [N_HIDDEN] },
  linear_3: { w: [N_HIDDEN, N_HIDDEN], b: [N_HIDDEN] },
  linear_4: { w: [N_HIDDEN, N_HIDDEN2], b: [N_HIDDEN2] },
  linear_5: { w: [N_HIDDEN2, N_HIDDEN2], b: [N_HIDDEN2] },
  linear_6: { w: [N_HIDDEN2, N_HIDDEN2], b: [N_HIDDEN2] },
  linear_7: { w: [N_HIDDEN2, 1], b: [1] },
};

function float32Of(a: unknown, where: string, shape: number[]): Float32Array {
  if (!(a instanceof NdArray)) throw new TimingModelError(`${where}: not an array`);
  if (a.dtype !== 'float32') throw new TimingModelError(`${where}: dtype ${a.dtype}, expected float32`);
  if (a.shape.join(',') !== shape.join(',')) throw new TimingModelError(`${where}: shape [${a.shape}], expected [${shape}]`);
  const out = new Float32Array(a.bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(a.bytes);
  return out;
}

/**
 * The `(params, state)` of a flax msgpack timing-model file (`checkpoints.save_state` of
 * `hk.transform_with_state(...).init`'s output: state dict `{'0': params, '1': state}`).
 */
export function readTimingModel(bytes: Uint8Array, source = '<bytes>'): TimingModelWeights {
  let sd: unknown;
  try {
    sd = msgpackRestore(bytes);
  } catch (e) {
    throw new TimingModelError(`${source}: not a flax msgpack file (${(e as Error).message})`);
  }
  const root = sd as Record<string, Record<string, Record<string, unknown>>>;
  if (!root || typeof root !== 'object' || !root['0'] || !root['1']) throw new TimingModelError(`${source}: expected the state dict of (params, state)`);
  const params: TimingModelWeights['params'] = {};
  for (const [m, ps] of Object.entries(EXPECTED_SHAPES)) {
    params[m] = {};
    for (const [n, shape] of Object.entries(ps)) params[m][n] = { shape, values: float32Of(root['0'][m]?.[n], `${source}: params['${m}']['${n}']`, shape) };
  }
  const st = root['1']['~'] ?? {};
  return { params, state: { min: float32Of(st.min, `${source}: state['~']['min']`, [N_EMBED, 8]), max: float32Of(st.max, `${source}: state['~']['max']`, [N_EMBED, 8]) } };
}

/** `jnp.fmin` / `jnp.fmax`: the other operand when one is NaN. */
function fmin(a: number, b: number): number {
  return Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.min(a, b);
}
function fmax(a: number, b: number): number {
  return Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b);
}

/** `relu(x)` in place. */
function relu(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) if (!(x[i] > 0)) x[i] = x[i] < 0 ? 0 : x[i];
  return x;
}

/** `x @ w + b` for `rows` rows of `x` ([rows, in]), `w` [in, out]: each output summed in float64 and rounded once to float32. */
function dense(x: Float32Array, rows: number, p: Record<string, HostArray>): Float32Array {
  const [nIn, nOut] = p.w.shape;
  const w = p.w.values;
  const b = p.b.values;
  const out = new Float32Array(rows * nOut);
  const acc = new Float64Array(nOut);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let k = 0; k < nIn; k++) {
      const xk = x[r * nIn + k];
      if (xk === 0) continue;
      const base = k * nOut;
      for (let j = 0; j < nOut; j++) acc[j] += xk * w[base + j];
    }
    for (let j = 0; j < nOut; j++) out[r * nOut + j] = Math.fround(acc[j]) + b[j];
  }
  return out;
}

/**
 * A timing model ready to predict: `timing_model_forward` (seconds) or `valid_model_forward` (then
 * a sigmoid, as `load_model`'s `apply_model`). Computed on the host in float32 (sums in float64),
 * one configuration at a time: a forward pass is ~1.7 M multiply-adds.
 */
export class TimingModel {
  constructor(
    readonly weights: TimingModelWeights,
    readonly kind: TimingModelKind,
  ) {}

  /** The per-leaf embedding `hidden` `[N, 128]` of `features_to_hidden` for configuration `b`. */
  private embed(f: CfgFeatures, b: number): Float32Array {
    const { params, state } = this.weights;
    const idEmb = params['~'].int_feats.values;
    const floatEmb = params['~'].float_feats.values;
    const floatB = params['~'].float_feats_b.values;
    const keyEmb = params['~'].key_feats.values;
    const H = N_HIDDEN;
    const out = new Float32Array(f.length * H);
    const ff = new Float32Array(8);
    const eps = Math.fround(1e-15);
    for (let n = 0; n < f.length; n++) {
      const row = b * f.length + n;
      let sum = 0;
      for (let p = 0; p < 8; p++) sum += f.keys[row * 8 + p];
      const flat = ((sum % N_EMBED) + N_EMBED) % N_EMBED;
      for (let p = 0; p < 8; p++) {
        const x = f.floats[row * 8 + p];
        const lo = fmin(x, state.min[flat * 8 + p]);
        const hi = fmax(x, state.max[flat * 8 + p]);
        const q = Math.fround(Math.fround(x - lo) / Math.fround(eps + Math.fround(hi - lo)));
        ff[p] = Math.fround(Math.fround(q - 0.5) * 2);
      }
      // id_emb[flat, int]: a negative index counts from the end, then JAX clamps into [0, 8)
      let slot = f.ints[row];
      if (slot < 0) slot += 8;
      slot = Math.min(7, Math.max(0, slot));
      const idBase = (flat * 8 + slot) * H;
      for (let h = 0; h < H; h++) {
        let acc = 0;
        for (let p = 0; p < 8; p++) acc += ff[p] * floatEmb[(flat * 8 + p) * H + h];
        const feat = Math.max(0, Math.fround(Math.fround(acc) + floatB[flat * H + h]));
        let keySum = 0;
        for (let p = 0; p < 8; p++) keySum += keyEmb[Math.min(N_EMBED - 1, Math.max(0, f.keys[row * 8 + p])) * H + h];
        const key = Math.fround(Math.fround(keySum) / 8);
        out[n * H + h] = Math.fround(Math.fround(idEmb[idBase + h] + feat) + key);
      }
    }
    return out;
  }

  /**
   * The model's output for each configuration `[B]`: seconds per step (`exp(out - 10)`) for a
   * time model, a probability for a valid model. `useMask`: weigh leaves by the features' mask
   * (the reference's `rejection_sample` passes none: every row counts, padding included).
   */
  predict(f: CfgFeatures, useMask = false): Float32Array {
    const P = this.weights.params;
    const N = f.length;
    const H = N_HIDDEN;
    const H2 = N_HIDDEN2;
    const result = new Float32Array(f.batch);
    for (let b = 0; b < f.batch; b++) {
      const mask = Array.from({ length: N }, (_, n) => (useMask ? f.mask[b * N + n] : 1));
      const maskSum = mask.reduce((a, m) => a + m, 0);
      const hidden = relu(dense(this.embed(f, b), N, P.linear));
      for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) hidden[n * H + h] *= mask[n];
      const hmean = new Float32Array(H);
      const hmax = new Float32Array(H).fill(-Infinity);
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let n = 0; n < N; n++) {
          s += hidden[n * H + h];
          hmax[h] = Math.max(hmax[h], hidden[n * H + h]);
        }
        hmean[h] = Math.fround(Math.fround(s) / maskSum);
      }
      const h0 = relu(dense(hidden, N, P.linear_1));
      const h1 = relu(dense(hmean, 1, P.linear_2));
      const h2 = relu(dense(hmax, 1, P.linear_3));
      const mixed = new Float32Array(N * H);
      for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) mixed[n * H + h] = Math.fround(Math.fround(Math.fround(h0[n * H + h] + h1[h]) + h2[h]) / 3);
      const hidden2 = dense(mixed, N, P.linear_4);
      const pooled = new Float32Array(H2);
      for (let j = 0; j < H2; j++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += hidden2[n * H2 + j] * mask[n];
        pooled[j] = Math.fround(Math.fround(s) / maskSum);
      }
      const z = relu(dense(relu(dense(pooled, 1, P.linear_5)), 1, P.linear_6));
      const out = dense(z, 1, P.linear_7)[0];
      result[b] = this.kind === 'time' ? Math.fround(Math.exp(Math.fround(out - 10))) : Math.fround(1 / (1 + Math.exp(-out)));
    }
    return result;
  }
}

// ---- model files and rejection sampling ---------------------------------------------------------

/** `time_filter/model_paths.py`, `models`: the trained models of each sampler, by kind. */
export const TIMING_MODEL_PATHS: Record<string, Partial<Record<TimingModelKind, string>>> = {
  sample_image_conv: { time: 'sample_image_conv/time/tpu_TPUv4/20220426_212338.weights', valid: 'sample_image_conv/valid/tpu_TPUv4/20220426_212227.weights' },
  sample_image_mlp: { time: 'sample_image_mlp/time/tpu_TPUv4/20220426_212409.weights', valid: 'sample_image_mlp/valid/tpu_TPUv4/20220426_212317.weights' },
  sample_image_mlp_ae: { time: 'sample_image_mlp_ae/time/tpu_TPUv4/20220426_212104.weights', valid: 'sample_image_mlp_ae/valid/tpu_TPUv4/20220426_212111.weights' },
  sample_image_mlp_vae: { time: 'sample_image_mlp_vae/time/tpu_TPUv4/20220426_212117.weights', valid: 'sample_image_mlp_vae/valid/tpu_TPUv4/20220426_212109.weights' },
  sample_image_resnet: { time: 'sample_image_resnet/time/tpu_TPUv4/20220426_171616.weights' },
  sample_lm_rnn: { time: 'sample_lm_rnn/time/tpu_TPUv4/20220426_212611.weights', valid: 'sample_lm_rnn/valid/tpu_TPUv4/20220426_212633.weights' },
  sample_lm_transformer: { time: 'sample_lm_transformer/time/tpu_TPUv4/20220426_212325.weights', valid: 'sample_lm_transformer/valid/tpu_TPUv4/20220426_212248.weights' },
  sample_lopt: { time: 'sample_lopt/time/tpu_TPUv4/20220428_111614.weights', valid: 'sample_lopt/valid/tpu_TPUv4/20220428_111622.weights' },
  sample_vit: { time: 'sample_vit/time/tpu_TPUv4/20220426_212651.weights', valid: 'sample_vit/valid/tpu_TPUv4/20220426_212717.weights' },
  sample_lopt_trunc: { time: 'sample_lopt_trunc/time/tpu_TPUv4/20220616_211607.weights', valid: 'sample_lopt_trunc/valid/tpu_TPUv4/20220616_211317.weights' },
};

/** Where the reference keeps the trained timing models. */
export const REFERENCE_TIMING_MODEL_ROOT = 'gs://gresearch/learned_optimization/task_timing_models/';

/** `get_model_root_dir()`: `$LOPT_TIMING_MODEL_DIR`, else `~/.cache/lopt/task_timing_models` (the reference's default is a GCS bucket). */
export function timingModelRootDir(): string {
  if (process.env.LOPT_TIMING_MODEL_DIR) return process.env.LOPT_TIMING_MODEL_DIR;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'lopt', 'task_timing_models');
}

const LOADED = new Map<string, TimingModel>();

/** `load_model(suffix, model_type)`: the model file `<root>/<suffix>`, read once per process and path. */
export function loadTimingModel(suffix: string, kind: TimingModelKind, root = timingModelRootDir()): TimingModel {
  const file = path.join(root, suffix);
  const key = `${file}|${kind}`;
  let m = LOADED.get(key);
  if (!m) {
    if (!fs.existsSync(file)) {
      throw new TimingModelError(
        `timing model ${file} not found: the reference's trained models are at ${REFERENCE_TIMING_MODEL_ROOT}${suffix}; ` +
          `copy the task_timing_models/ tree into a folder named by LOPT_TIMING_MODEL_DIR (default ~/.cache/lopt/task_timing_models)`,
      );
    }
    m = new TimingModel(readTimingModel(fs.readFileSync(file), file), kind);
    LOADED.set(key, m);
  }
  return m;
}

/** Forget the loaded timing models (the next `loadTimingModel` reads its file again). */
export function clearTimingModels(): void {
  LOADED.clear();
}

/** Options of {@link rejectionSample}. */
export interface RejectionSampleOptions {
  /** The valid model's file (`model_path_valid_suffix`): loaded, as the reference does (see the module comment). */
  validSuffix?: string;
  /** Folder of the model files (default {@link timingModelRootDir}). */
  root?: string;
  /** Models to use instead of reading files (then no valid model unless given). */
  models?: { time: TimingModel; valid?: TimingModel };
}

/**
 * `rejection_sample(sampler, model_path_suffix, key, max_time, model_path_valid_suffix)`: up to
 * 512 draws `sampler(split(next(rng), 1)[0])` (rng a PRNGSequence of `key`), the first whose
 * predicted time is below `maxTime` returned; otherwise an error.
 */
export function rejectionSample<C extends CFGValue>(sampler: (key: PRNGKey) => C, modelPathSuffix: string, key: PRNGKey, maxTime: number, opts: RejectionSampleOptions = {}): C {
  const rng = new random.PRNGSequence(key);
  const forward = opts.models?.time ?? loadTimingModel(modelPathSuffix, 'time', opts.root);
  const valid = opts.models ? (opts.models.valid ?? null) : opts.validSuffix ? loadTimingModel(opts.validSuffix, 'valid', opts.root) : null;
  const batchSize = 1;
  const limit = Math.fround(maxTime);
  for (let i = 0; i < 512 / batchSize; i++) {
    const keys = random.split(rng.next(), batchSize);
    const cfgs = keys.map(sampler);
    const features = featurizeMany(cfgs, undefined, 'time');
    const times = forward.predict(features);
    const mask = Array.from(times, (t) => t < limit);
    if (valid) {
      // The reference runs the *time* model here (`is_valid = forward_fn(...)`) on the "valid"
      // featurisation, and a nonzero time counts as valid. lopt-ts's featurisations of both kinds
      // are the same (no DoNotFeaturize leaves), so the times above are that prediction.
      times.forEach((v, j) => (mask[j] = mask[j] && v !== 0));
    }
    const j = mask.indexOf(true);
    if (j >= 0) return cfgs[j];
  }
  throw new Error(`Nothing found for static: ${modelPathSuffix} and time ${maxTime}`);
}
