/**
 * Counter-based random keys with JAX semantics (threefry2x32, 20 rounds), bit for bit.
 *
 * A key is two uint32 words held on the host. Samplers draw their bits on the host from the key
 * and upload one tensor, so the numbers are identical whatever backend runs the model.
 *
 * jax has two ways of turning a key and a shape into counters (jax/_src/prng.py):
 * - legacy (jax < 0.5, `jax_threefry_partitionable = False`; what the reference's notebooks ran
 *   with, and the default here): `split(k, n)` and `bits(k, n)` hash the counters 0..2n-1 (0..n-1)
 *   as two halves, `threefry_2x32(k, iota)`, and take the output words in order;
 * - partitionable (jax >= 0.5's default): element i hashes the counter pair (0, i); `split` keeps
 *   both output words as the new key, `bits` xors them.
 * `foldIn` and `PRNGKey` are the same in both. Choose the mode with the environment variable jax
 * itself reads, `JAX_THREEFRY_PARTITIONABLE=1`, or `configure({ threefryPartitionable: true })`.
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative } from './core_native';

/** Two uint32 words, like `jax.random.PRNGKey(...)`'s data. */
export type PRNGKey = Uint32Array;

/** Which of jax's two threefry modes `split` and the samplers follow (`random.configure`). */
export interface RandomConfig {
  /** jax's `jax_threefry_partitionable`: false = legacy (jax < 0.5), true = jax >= 0.5. */
  threefryPartitionable: boolean;
}

/** jax's reading of a boolean flag from the environment (`jax/_src/config.py`, bool_env). */
export function envFlag(name: string, env: Record<string, string | undefined> | undefined = typeof process !== 'undefined' ? process.env : undefined): boolean | undefined {
  const v = env?.[name];
  if (v === undefined || v === '') return undefined;
  const s = v.toLowerCase();
  if (['y', 'yes', 't', 'true', 'on', '1'].includes(s)) return true;
  if (['n', 'no', 'f', 'false', 'off', '0'].includes(s)) return false;
  throw new Error(`${name}: invalid truth value '${v}' (allowed: 1/0, true/false, yes/no, on/off)`);
}

const config: RandomConfig = { threefryPartitionable: envFlag('JAX_THREEFRY_PARTITIONABLE') ?? false };

/** Set the random mode for every sampler in this thread (worker threads get it from their parent). */
export function configure(opts: Partial<RandomConfig>): RandomConfig {
  if (opts.threefryPartitionable !== undefined) {
    if (typeof opts.threefryPartitionable !== 'boolean') {
      throw new TypeError(`threefryPartitionable must be true or false, got ${String(opts.threefryPartitionable)}`);
    }
    config.threefryPartitionable = opts.threefryPartitionable;
  }
  return { ...config };
}

/** The random mode in force. */
export function getConfig(): RandomConfig {
  return { ...config };
}

/** Run `fn` with a random mode, restoring the previous one afterwards (for tests and tools). */
export function withConfig<T>(opts: Partial<RandomConfig>, fn: () => T): T {
  const before = getConfig();
  configure(opts);
  try {
    return fn();
  } finally {
    configure(before);
  }
}

/**
 * threefry2x32 block function on one counter pair (20 rounds: rotations 13, 15, 26, 6 and 17, 29,
 * 16, 24 alternating every four, a key injection after each four); writes the two output words.
 * Written out round by round on int32 values (`| 0` keeps each sum to 32 bits) with no
 * allocation: it is the inner loop of every draw (permutations of a whole split, perturbations).
 */
function threefryBlock(k0: number, k1: number, x0: number, x1: number, out: Uint32Array, at0: number, at1: number): void {
  const k2 = k0 ^ k1 ^ 0x1bd11bda;
  let a = (x0 + k0) | 0;
  let b = (x1 + k1) | 0;
  // rounds 1-4, then inject (k1, k2 + 1)
  a = (a + b) | 0; b = ((b << 13) | (b >>> 19)) ^ a;
  a = (a + b) | 0; b = ((b << 15) | (b >>> 17)) ^ a;
  a = (a + b) | 0; b = ((b << 26) | (b >>> 6)) ^ a;
  a = (a + b) | 0; b = ((b << 6) | (b >>> 26)) ^ a;
  a = (a + k1) | 0; b = (b + k2 + 1) | 0;
  // rounds 5-8, then (k2, k0 + 2)
  a = (a + b) | 0; b = ((b << 17) | (b >>> 15)) ^ a;
  a = (a + b) | 0; b = ((b << 29) | (b >>> 3)) ^ a;
  a = (a + b) | 0; b = ((b << 16) | (b >>> 16)) ^ a;
  a = (a + b) | 0; b = ((b << 24) | (b >>> 8)) ^ a;
  a = (a + k2) | 0; b = (b + k0 + 2) | 0;
  // rounds 9-12, then (k0, k1 + 3)
  a = (a + b) | 0; b = ((b << 13) | (b >>> 19)) ^ a;
  a = (a + b) | 0; b = ((b << 15) | (b >>> 17)) ^ a;
  a = (a + b) | 0; b = ((b << 26) | (b >>> 6)) ^ a;
  a = (a + b) | 0; b = ((b << 6) | (b >>> 26)) ^ a;
  a = (a + k0) | 0; b = (b + k1 + 3) | 0;
  // rounds 13-16, then (k1, k2 + 4)
  a = (a + b) | 0; b = ((b << 17) | (b >>> 15)) ^ a;
  a = (a + b) | 0; b = ((b << 29) | (b >>> 3)) ^ a;
  a = (a + b) | 0; b = ((b << 16) | (b >>> 16)) ^ a;
  a = (a + b) | 0; b = ((b << 24) | (b >>> 8)) ^ a;
  a = (a + k1) | 0; b = (b + k2 + 4) | 0;
  // rounds 17-20, then (k2, k0 + 5)
  a = (a + b) | 0; b = ((b << 13) | (b >>> 19)) ^ a;
  a = (a + b) | 0; b = ((b << 15) | (b >>> 17)) ^ a;
  a = (a + b) | 0; b = ((b << 26) | (b >>> 6)) ^ a;
  a = (a + b) | 0; b = ((b << 6) | (b >>> 26)) ^ a;
  a = (a + k2) | 0; b = (b + k0 + 5) | 0;
  out[at0] = a;
  out[at1] = b;
}

/** JAX's `threefry_2x32(key, counts)`: the counts are split in two halves that form the pairs. */
function threefry2x32(key: PRNGKey, counts: Uint32Array): Uint32Array {
  const n = counts.length;
  const padded = n % 2 === 1 ? n + 1 : n;
  const half = padded / 2;
  const out = new Uint32Array(padded);
  for (let i = 0; i < half; i++) {
    const x0 = counts[i];
    const x1 = i + half < n ? counts[i + half] : 0;
    threefryBlock(key[0], key[1], x0, x1, out, i, i + half);
  }
  return n === padded ? out : out.subarray(0, n);
}

function iota(n: number): Uint32Array {
  const c = new Uint32Array(n);
  for (let i = 0; i < n; i++) c[i] = i;
  return c;
}

function assertKey(key: PRNGKey, what = 'key'): void {
  if (!(key instanceof Uint32Array) || key.length !== 2) {
    throw new TypeError(`${what} must be a PRNGKey (Uint32Array of length 2) from random.PRNGKey/split/foldIn`);
  }
}

/**
 * `jax.random.PRNGKey(seed)` with jax's default 32-bit integers (x64 off): the seed becomes an
 * int32, so the key is [0, seed mod 2^32] (PRNGKey(-1) = [0, 4294967295]).
 */
export function PRNGKey(seed: number): PRNGKey {
  if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be a safe integer, got ${seed}`);
  return new Uint32Array([0, seed >>> 0]);
}

/** `jax.random.split(key, n)`: n new independent keys. */
export function split(key: PRNGKey, n = 2): PRNGKey[] {
  assertKey(key);
  const keys: PRNGKey[] = [];
  if (config.threefryPartitionable) {
    const out = new Uint32Array(2);
    for (let i = 0; i < n; i++) {
      threefryBlock(key[0], key[1], 0, i, out, 0, 1);
      keys.push(new Uint32Array(out));
    }
    return keys;
  }
  const bits = threefry2x32(key, iota(2 * n));
  for (let i = 0; i < n; i++) keys.push(new Uint32Array([bits[2 * i], bits[2 * i + 1]]));
  return keys;
}

/** `jax.random.fold_in(key, data)` for a 32-bit integer `data` (the same in both modes). */
export function foldIn(key: PRNGKey, data: number): PRNGKey {
  assertKey(key);
  return threefry2x32(key, new Uint32Array([0, data >>> 0])).slice();
}

/** Draws of at least this many values go through the core addon where it is built (the same bits). */
const NATIVE_MIN_SIZE = 256;

/** `jax.random.bits(key, shape)` (uint32) as a host array: the core addon's threefry for large draws, else `threefryBits`. */
export function randomBits(key: PRNGKey, size: number): Uint32Array {
  assertKey(key);
  const native = size >= NATIVE_MIN_SIZE ? coreNative() : null;
  if (!native) return threefryBits(key, size);
  const out = new Uint32Array(size);
  native.randomBits(key[0], key[1], config.threefryPartitionable, out);
  return out;
}

/** `jax.random.bits(key, shape)` in JavaScript (the reference the core addon's bits are tested against). */
export function threefryBits(key: PRNGKey, size: number): Uint32Array {
  assertKey(key);
  if (!config.threefryPartitionable) return threefry2x32(key, iota(size));
  const out = new Uint32Array(size);
  const pair = new Uint32Array(2);
  for (let i = 0; i < size; i++) {
    threefryBlock(key[0], key[1], 0, i, pair, 0, 1);
    out[i] = (pair[0] ^ pair[1]) >>> 0;
  }
  return out;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const f32 = Math.fround;

/** Uniform float32 in [0, 1) from the top 23 bits, as JAX does. */
function bitsToUnit(bits: number): number {
  U32[0] = (bits >>> 9) | 0x3f800000;
  return F32[0] - 1;
}

/** The next float32 after `x` towards `to` (`lax.nextafter`). */
function nextAfter32(x: number, to: number): number {
  F32[0] = x;
  if (x === to) return x;
  if (x === 0) {
    U32[0] = to > 0 ? 1 : 0x80000001;
  } else if (x < to === x > 0) {
    U32[0] += 1;
  } else {
    U32[0] -= 1;
  }
  return F32[0];
}

/**
 * `jax.random.uniform`: `max(lo, u·(hi − lo) + lo)` in float32, with the multiply-add fused as XLA
 * on CPU fuses it (u·span is exact in float64, so one rounding to float32 is what an FMA gives).
 */
export function uniformArray(key: PRNGKey, size: number, minval = 0, maxval = 1): Float32Array {
  const bits = randomBits(key, size);
  const out = new Float32Array(size);
  const lo = f32(minval);
  const span = f32(f32(maxval) - lo);
  for (let i = 0; i < size; i++) out[i] = Math.max(lo, f32(bitsToUnit(bits[i]) * span + lo));
  return out;
}

const ERFINV_W_LT_5 = [2.81022636e-8, 3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941].map(f32);
const ERFINV_W_GE_5 = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682].map(f32);

/**
 * Inverse error function in float32: Giles' single-precision polynomial, as XLA's ErfInv evaluates
 * it (w = −log1p(−x²), then Horner in float32). XLA's own float32 log1p is not reproduced, so a
 * result can differ from jax's by an ulp or two (more in the far tails, where erfinv is steep).
 */
export function erfinv(x: number): number {
  let w = f32(-Math.log1p(-f32(x * x)));
  let c: number[];
  if (w < 5) {
    w = f32(w - 2.5);
    c = ERFINV_W_LT_5;
  } else {
    w = f32(f32(Math.sqrt(w)) - 3);
    c = ERFINV_W_GE_5;
  }
  let p = c[0];
  for (let i = 1; i < c.length; i++) p = f32(c[i] + f32(p * w));
  return Math.abs(x) === 1 ? x * Infinity : f32(p * x);
}

/** Error function (Abramowitz-Stegun 7.1.26 refined to float32 accuracy via series/continued fraction). */
export function erf(x: number): number {
  // Series for small |x|, complementary continued fraction otherwise; accurate to ~1e-7.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-16) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc by Lentz continued fraction
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 100; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = 1 / d;
    c = ax + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  const erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * f);
  return Math.sign(x) * (1 - erfc);
}

const NEXT_AFTER_MINUS_ONE = -0.99999994; // nextafter(-1, 0) in float32
const SQRT2_32 = f32(Math.SQRT2);

/**
 * √2 · erfinv(u[i]) in float32, kept in [lo, hi] (NaN stays NaN): the last step of `normalArray`
 * and `truncatedNormalArray`. Large arrays go through the core addon where it is built, which
 * gives the same bits (`native: false`: always this JavaScript, the reference it is tested against).
 */
export function normalFromUniform(u: Float32Array, lo = -Infinity, hi = Infinity, opts: { native?: boolean } = {}): Float32Array {
  const out = new Float32Array(u.length);
  const native = (opts.native ?? true) && u.length >= NATIVE_MIN_SIZE ? coreNative() : null;
  if (native) native.normalFromUniform(u, out, lo, hi);
  else for (let i = 0; i < u.length; i++) out[i] = Math.min(hi, Math.max(lo, f32(SQRT2_32 * erfinv(u[i]))));
  return out;
}

/** `jax.random.normal`: √2 · erfinv(u), u uniform in (−1, 1). */
export function normalArray(key: PRNGKey, size: number): Float32Array {
  return normalFromUniform(uniformArray(key, size, NEXT_AFTER_MINUS_ONE, 1));
}

/**
 * `jax.random.truncated_normal`: √2 · erfinv(u) with u uniform in [erf(lower/√2), erf(upper/√2)),
 * clipped to the open interval (lower, upper).
 */
export function truncatedNormalArray(key: PRNGKey, size: number, lower = -2, upper = 2): Float32Array {
  const a = f32(erf(f32(f32(lower) / SQRT2_32)));
  const b = f32(erf(f32(f32(upper) / SQRT2_32)));
  const u = uniformArray(key, size, a, b);
  const lo = nextAfter32(f32(lower), Infinity);
  const hi = nextAfter32(f32(upper), -Infinity);
  return normalFromUniform(u, lo, hi);
}

/** Integers uniform in [minval, maxval), JAX's two-word construction (int32). */
export function randintArray(key: PRNGKey, size: number, minval: number, maxval: number): Int32Array {
  if (!(maxval > minval)) throw new RangeError(`randint needs maxval > minval, got [${minval}, ${maxval})`);
  const [k1, k2] = split(key);
  const hi = randomBits(k1, size);
  const lo = randomBits(k2, size);
  const span = (maxval - minval) >>> 0;
  let multiplier = 65536 % span;
  multiplier = Math.imul(multiplier, multiplier) >>> 0;
  multiplier = multiplier % span;
  const out = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    let off = (Math.imul(hi[i] % span, multiplier) >>> 0) + (lo[i] % span);
    off = (off >>> 0) % span;
    out[i] = minval + off;
  }
  return out;
}

/** `jax.random.normal(key, shape)`: standard normal float32 draws (within 1–2 ulp of jax). */
export function normal(key: PRNGKey, shape: number[] = []): tf.Tensor {
  return tf.tensor(normalArray(key, sizeOf(shape)), shape, 'float32');
}

/** `jax.random.uniform(key, shape, minval, maxval)`: float32 draws in [minval, maxval), bit-exact with jax. */
export function uniform(key: PRNGKey, shape: number[] = [], minval = 0, maxval = 1): tf.Tensor {
  return tf.tensor(uniformArray(key, sizeOf(shape), minval, maxval), shape, 'float32');
}

/** `jax.random.truncated_normal(key, lower, upper, shape)`: standard normal truncated to (lower, upper). */
export function truncatedNormal(key: PRNGKey, shape: number[] = [], lower = -2, upper = 2): tf.Tensor {
  return tf.tensor(truncatedNormalArray(key, sizeOf(shape), lower, upper), shape, 'float32');
}

/** `jax.random.randint(key, shape, minval, maxval)`: int32 draws in [minval, maxval), bit-exact with jax. */
export function randint(key: PRNGKey, shape: number[], minval: number, maxval: number): tf.Tensor {
  return tf.tensor(randintArray(key, sizeOf(shape), minval, maxval), shape, 'int32');
}

/** `jax.random.bernoulli(key, p, shape)`: a bool tensor, true where a uniform draw is below p. */
export function bernoulli(key: PRNGKey, shape: number[] = [], p = 0.5): tf.Tensor {
  const u = uniformArray(key, sizeOf(shape));
  const out = new Int32Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i] < p ? 1 : 0;
  return tf.tensor(out, shape, 'bool');
}

/**
 * `jax.random.permutation(key, n)` (jax/_src/random.py, `_shuffle`): ⌈3·ln n / ln(2³²−1)⌉ rounds,
 * each splitting the key and stably sorting by 32 fresh random bits per element.
 */
export function permutationArray(key: PRNGKey, n: number): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`permutation needs a non-negative integer size, got ${n}`);
  let x = Int32Array.from(iota(n));
  const rounds = Math.ceil((3 * Math.log(Math.max(1, n))) / Math.log(0xffffffff));
  let k = key;
  for (let r = 0; r < rounds; r++) {
    const [next, sub] = split(k);
    k = next;
    const sortKeys = randomBits(sub, n);
    const order = Array.from(iota(n)).sort((a, b) => sortKeys[a] - sortKeys[b] || a - b);
    x = Int32Array.from(order, (i) => x[i]);
  }
  return x;
}

/** `jax.random.permutation(key, n)` as an int32 tensor of shape [n] (see `permutationArray`). */
export function permutation(key: PRNGKey, n: number): tf.Tensor {
  return tf.tensor(permutationArray(key, n), [n], 'int32');
}

/**
 * A stream of keys, like Haiku's `PRNGSequence`: each `next()` splits the held key in two,
 * keeps one half and returns the other.
 */
export class PRNGSequence {
  private key: PRNGKey;
  constructor(key: PRNGKey | number) {
    this.key = typeof key === 'number' ? PRNGKey(key) : key;
  }
  next(): PRNGKey {
    const [k, sub] = split(this.key);
    this.key = k;
    return sub;
  }
}

/** True when `x` looks like a PRNGKey. */
export function isKey(x: unknown): x is PRNGKey {
  return x instanceof Uint32Array && x.length === 2;
}
