/**
 * Counter-based random keys with JAX semantics (threefry2x32, 20 rounds).
 *
 * A key is two uint32 words held on the host. `split` and `foldIn` follow JAX's classic
 * (non-partitionable) threefry scheme, so the key tree is reproducible on every backend and
 * platform. Samplers draw their bits on the host from the key and upload one tensor; the
 * numbers are identical whatever backend runs the model.
 */
import * as tf from '@tensorflow/tfjs';

/** Two uint32 words, like `jax.random.PRNGKey(...)`'s data. */
export type PRNGKey = Uint32Array;

const ROTATIONS = [
  [13, 15, 26, 6],
  [17, 29, 16, 24],
];

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

/** threefry2x32 block function on one counter pair; returns the two output words. */
function threefryBlock(k0: number, k1: number, x0: number, x1: number, out: Uint32Array, at0: number, at1: number): void {
  const k2 = (k0 ^ k1 ^ 0x1bd11bda) >>> 0;
  const ks = [k0, k1, k2];
  let a = (x0 + k0) >>> 0;
  let b = (x1 + k1) >>> 0;
  for (let block = 0; block < 5; block++) {
    const rot = ROTATIONS[block % 2];
    for (let i = 0; i < 4; i++) {
      a = (a + b) >>> 0;
      b = rotl(b, rot[i]);
      b = (b ^ a) >>> 0;
    }
    a = (a + ks[(block + 1) % 3]) >>> 0;
    b = (b + ks[(block + 2) % 3] + block + 1) >>> 0;
  }
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

/** `jax.random.PRNGKey(seed)`: [high 32 bits, low 32 bits] of the integer seed. */
export function PRNGKey(seed: number): PRNGKey {
  if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = seed < 0 ? 0xffffffff : Math.floor(seed / 0x100000000) >>> 0;
  return new Uint32Array([hi, lo]);
}

/** `jax.random.split(key, n)`: n new independent keys. */
export function split(key: PRNGKey, n = 2): PRNGKey[] {
  assertKey(key);
  const bits = threefry2x32(key, iota(2 * n));
  const keys: PRNGKey[] = [];
  for (let i = 0; i < n; i++) keys.push(new Uint32Array([bits[2 * i], bits[2 * i + 1]]));
  return keys;
}

/** `jax.random.fold_in(key, data)` for a 32-bit integer `data`. */
export function foldIn(key: PRNGKey, data: number): PRNGKey {
  assertKey(key);
  return threefry2x32(key, new Uint32Array([0, data >>> 0])).slice();
}

/** `jax.random.bits(key, shape)` (uint32) as a host array. */
export function randomBits(key: PRNGKey, size: number): Uint32Array {
  assertKey(key);
  return threefry2x32(key, iota(size));
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Uniform float32 in [0, 1) from the top 23 bits, as JAX does. */
function bitsToUnit(bits: number): number {
  U32[0] = (bits >>> 9) | 0x3f800000;
  return F32[0] - 1;
}

export function uniformArray(key: PRNGKey, size: number, minval = 0, maxval = 1): Float32Array {
  const bits = randomBits(key, size);
  const out = new Float32Array(size);
  const span = maxval - minval;
  for (let i = 0; i < size; i++) {
    out[i] = Math.max(minval, Math.fround(bitsToUnit(bits[i]) * span + minval));
  }
  return out;
}

/** Inverse error function (Giles' single-precision approximation, as XLA uses). */
export function erfinv(x: number): number {
  let w = -Math.log((1 - x) * (1 + x));
  let p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    p = 3.43273939e-7 + p * w;
    p = -3.5233877e-6 + p * w;
    p = -4.39150654e-6 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  return p * x;
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

export function normalArray(key: PRNGKey, size: number): Float32Array {
  const u = uniformArray(key, size, NEXT_AFTER_MINUS_ONE, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.SQRT2 * erfinv(u[i]);
  return out;
}

export function truncatedNormalArray(key: PRNGKey, size: number, lower = -2, upper = 2): Float32Array {
  const a = erf(lower / Math.SQRT2);
  const b = erf(upper / Math.SQRT2);
  const u = uniformArray(key, size, a, b);
  const lo = lower + Math.abs(lower) * 1.2e-7 + 1e-38;
  const hi = upper - Math.abs(upper) * 1.2e-7 - 1e-38;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.min(hi, Math.max(lo, Math.SQRT2 * erfinv(u[i])));
  return out;
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

export function normal(key: PRNGKey, shape: number[] = []): tf.Tensor {
  return tf.tensor(normalArray(key, sizeOf(shape)), shape, 'float32');
}

export function uniform(key: PRNGKey, shape: number[] = [], minval = 0, maxval = 1): tf.Tensor {
  return tf.tensor(uniformArray(key, sizeOf(shape), minval, maxval), shape, 'float32');
}

export function truncatedNormal(key: PRNGKey, shape: number[] = [], lower = -2, upper = 2): tf.Tensor {
  return tf.tensor(truncatedNormalArray(key, sizeOf(shape), lower, upper), shape, 'float32');
}

export function randint(key: PRNGKey, shape: number[], minval: number, maxval: number): tf.Tensor {
  return tf.tensor(randintArray(key, sizeOf(shape), minval, maxval), shape, 'int32');
}

export function bernoulli(key: PRNGKey, shape: number[] = [], p = 0.5): tf.Tensor {
  const u = uniformArray(key, sizeOf(shape));
  const out = new Int32Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i] < p ? 1 : 0;
  return tf.tensor(out, shape, 'bool');
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
