/**
 * Samplers for parametric tasks (reference `tasks/parametric/parametric_utils.py`): `choice`,
 * `logInt`, `logFloat`, and the sampled activation functions, initializers and image datasets the
 * parametric families draw from. Every draw is jax's for the same key (libs/core random), in
 * float32 as jax computes it.
 */
import * as tf from '@tensorflow/tfjs';
import { random, type PRNGKey } from '@lopt/core';
import { gelu } from '../lm_modules';

/** `choice(key, vals)`: `vals[randint(key, [], 0, len(vals))]`. */
export function choice<T>(key: PRNGKey, vals: readonly T[]): T {
  return vals[random.randintArray(key, 1, 0, vals.length)[0]];
}

/** `exp(uniform(key, [], log(lower), log(upper)))` in float32, then `int32` (truncates). */
export function logInt(key: PRNGKey, lower: number, upper: number): number {
  return Math.trunc(logFloat(key, lower, upper));
}

/** `exp(uniform(key, [], log(lower), log(upper)))`, the exp taken in float32 (numpy on a float32 array). */
export function logFloat(key: PRNGKey, lower: number, upper: number): number {
  const v = random.uniformArray(key, 1, Math.log(lower), Math.log(upper))[0];
  return Math.fround(Math.exp(v));
}

// ---- activations -------------------------------------------------------------------------------

// gelu is lm_modules' one: the same function as the formula composed of tf ops (computed as
// x·σ(2√(2/π)(x + 0.044715x³)), which tf.js wasm runs ~25x faster than Tanh and Pow), and a
// written-out derivative built from tf ops, so grads of grads (TruncatedGrad / FullGrad through
// a sampled activation) are right. Autodiff of the composed formula gets the second derivative
// wrong in tf.js (at x = 1.5: 0.3197 against the true -0.0305).

/** `jax.nn.selu`: scale · (x if x > 0 else α·expm1(x)). */
function selu(x: tf.Tensor): tf.Tensor {
  const alpha = 1.6732632423543772;
  const scale = 1.0507009873554805;
  // relu(x) + α·(exp(min(x, 0)) − 1): the same values, and differentiable by tf.js (a `where` on
  // `x > 0` is not: Greater has no gradient)
  return tf.mul(scale, tf.add(tf.relu(x), tf.mul(alpha, tf.sub(tf.exp(tf.minimum(x, 0)), 1))));
}

const silu = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

/**
 * `SampleActivation.acts`, in the reference's order (relu is listed twice, so it is drawn twice
 * as often; swish is silu; leaky_relu has negative_slope −0.5, i.e. |x|/2 for x < 0).
 */
export const SAMPLE_ACTIVATIONS: readonly { name: string; fn: (x: tf.Tensor) => tf.Tensor }[] = [
  { name: 'relu', fn: (x) => tf.relu(x) },
  { name: 'relu', fn: (x) => tf.relu(x) },
  { name: 'relu6', fn: (x) => tf.relu6(x) },
  { name: 'selu', fn: selu },
  { name: 'tanh', fn: (x) => tf.tanh(x) },
  { name: 'cos', fn: (x) => tf.cos(x) },
  { name: 'sin', fn: (x) => tf.sin(x) },
  { name: 'sigmoid', fn: (x) => tf.sigmoid(x) },
  { name: 'silu', fn: silu },
  { name: 'swish', fn: silu },
  { name: 'gelu', fn: gelu },
  { name: 'leaky_relu(-0.5)', fn: (x) => tf.where(tf.greaterEqual(x, 0), x, tf.mul(-0.5, x)) },
];

/** `SampleActivation.sample(key)`: `{index: randint(key, [], 0, 12)}`. */
export function sampleActivation(key: PRNGKey): { index: number } {
  return { index: random.randintArray(key, 1, 0, SAMPLE_ACTIVATIONS.length)[0] };
}

// ---- initializers ------------------------------------------------------------------------------

/**
 * A sampled weight initializer (reference `tasks/parametric/parametric_utils.py`, `SampleInitializer`): its
 * index and scale.
 */
export interface InitializerConfig {
  /** which of SAMPLE_INITIALIZERS */
  index: number;
  /** float32 in [0.5, 2) */
  initScale: number;
}

/** `SampleInitializer.sample(key)`: `k0, k1 = split(key)`; index = randint(k0, 0, 5), init_scale = uniform(k1, 0.5, 2). */
export function sampleInitializer(key: PRNGKey): InitializerConfig {
  const [k0, k1] = random.split(key, 2);
  return { index: random.randintArray(k0, 1, 0, SAMPLE_INITIALIZERS.length)[0], initScale: random.uniformArray(k1, 1, 0.5, 2)[0] };
}

type HostInit = (shape: number[], key: PRNGKey, scale: number) => Float32Array;

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** `scale · x` in float32 for every element (jax multiplies by the float32 scale). */
function scaled(x: Float32Array, scale: number): Float32Array {
  const s = Math.fround(scale);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(s * x[i]);
  return x;
}

/**
 * Q of the reduced QR decomposition of the row-major `m`×`n` matrix `a` (m ≥ n), with the columns'
 * signs fixed so that diag(R) > 0 (`q *= sign(diag(r))`), by Householder reflections in float64.
 */
function orthonormalQ(a: Float32Array, m: number, n: number): Float64Array {
  const r = Float64Array.from(a);
  const vs: Float64Array[] = [];
  const signs: number[] = [];
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += r[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const alpha = r[k * n + k] > 0 ? -norm : norm; // R's diagonal entry after this reflection
    const v = new Float64Array(m);
    for (let i = k; i < m; i++) v[i] = r[i * n + k];
    v[k] -= alpha;
    const vn = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    if (vn > 0) for (let i = k; i < m; i++) v[i] /= vn;
    for (let j = k; j < n; j++) {
      let d = 0;
      for (let i = k; i < m; i++) d += v[i] * r[i * n + j];
      for (let i = k; i < m; i++) r[i * n + j] -= 2 * v[i] * d;
    }
    vs.push(v);
    signs.push(Math.sign(alpha) || 1);
  }
  // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
  const q = new Float64Array(m * n);
  for (let j = 0; j < n; j++) q[j * n + j] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    for (let j = 0; j < n; j++) {
      let d = 0;
      for (let i = k; i < m; i++) d += v[i] * q[i * n + j];
      for (let i = k; i < m; i++) q[i * n + j] -= 2 * v[i] * d;
    }
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[i * n + j] *= signs[j];
  return q;
}

/**
 * `orth_init(shape, key, scale)` for axis −1: a normal matrix of shape (rows, cols) or its transpose
 * (the longer side first), its sign-fixed Q (transposed back when rows < cols), reshaped to
 * (shape[-1], ...rest) and the first axis moved last, times scale.
 */
function orthInit(shape: number[], key: PRNGKey, scale: number): Float32Array {
  if (shape.length < 2) throw new Error('Orthogonal initializer requires at least a 2D shape.');
  const nRows = shape[shape.length - 1];
  const nCols = prod(shape) / nRows;
  const [m, n] = nRows > nCols ? [nRows, nCols] : [nCols, nRows];
  const q = orthonormalQ(random.normalArray(key, m * n), m, n); // [m, n]
  // q as an (nRows, nCols) matrix: q itself when nRows ≥ nCols (then m = nRows), else q.T
  const qm = (r: number, c: number) => (nRows >= nCols ? q[r * n + c] : q[c * n + r]);
  // moveaxis(0, -1) of (nRows, rest...) = element [rest..., row] = qm(row, restIndex)
  const out = new Float32Array(prod(shape));
  for (let rest = 0; rest < nCols; rest++) for (let row = 0; row < nRows; row++) out[rest * nRows + row] = Math.fround(qm(row, rest));
  return scaled(out, scale);
}

/** `uniform_scale_init`: U(±√(3/fan_in)·scale), fan_in = prod(shape[:-1]). */
function uniformScaleInit(shape: number[], key: PRNGKey, scale: number): Float32Array {
  const maxVal = Math.fround(Math.fround(Math.sqrt(3 / prod(shape.slice(0, -1)))) * Math.fround(scale));
  return random.uniformArray(key, prod(shape), -maxVal, maxVal);
}

/** haiku's `_compute_fans` as parametric_utils copies it. */
function fans(shape: number[]): [number, number] {
  if (shape.length < 1) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  const receptive = prod(shape.slice(0, -2));
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** `variance_scale_init(shape, key, scale, mode='fan_in', distribution)`: the float32 arithmetic of jax. */
function varianceScaleInit(distribution: 'normal' | 'uniform'): HostInit {
  return (shape, key, scale) => {
    const s = Math.fround(Math.fround(scale) / Math.max(1, fans(shape)[0]));
    if (distribution === 'normal') return scaled(random.normalArray(key, prod(shape)), Math.fround(Math.sqrt(s)));
    const limit = Math.fround(Math.sqrt(Math.fround(3 * s)));
    return random.uniformArray(key, prod(shape), -limit, limit);
  };
}

/**
 * `SampleInitializer.inits`, in the reference's order. Quirk kept: entries 2 and 3 are the same
 * (variance_scale_init's default distribution is already "normal"; its truncated-normal branch is
 * never drawn).
 */
export const SAMPLE_INITIALIZERS: readonly { name: string; init: HostInit }[] = [
  { name: 'orth_init', init: orthInit },
  { name: 'uniform_scale_init', init: uniformScaleInit },
  { name: 'variance_scale_init', init: varianceScaleInit('normal') },
  { name: 'variance_scale_init(normal)', init: varianceScaleInit('normal') },
  { name: 'variance_scale_init(uniform)', init: varianceScaleInit('uniform') },
];

/** A haiku initializer for `cfg` (`SampleInitializer.get_dynamic`): one `hk.next_rng_key()` per parameter. */
export function sampledInitializer(cfg: InitializerConfig): (shape: number[], nextKey: () => PRNGKey) => Float32Array {
  const entry = SAMPLE_INITIALIZERS[cfg.index];
  if (!entry) throw new Error(`initializer index must be 0..${SAMPLE_INITIALIZERS.length - 1}, got ${cfg.index}`);
  return (shape, nextKey) => entry.init(shape, nextKey(), cfg.initScale);
}

// ---- datasets ----------------------------------------------------------------------------------

/** `SampleImageDataset.dataset_fns`: dataset function name → number of classes. */
export const SAMPLE_IMAGE_DATASETS: Readonly<Record<string, number>> = {
  mnist_datasets: 10,
  fashion_mnist_datasets: 10,
  cifar10_datasets: 10,
  cifar100_datasets: 100,
  imagenet16_datasets: 1000,
};

/** `SampleImageDataset.sample(key)`: a choice among the sorted names. */
export function sampleImageDataset(key: PRNGKey): string {
  return choice(key, Object.keys(SAMPLE_IMAGE_DATASETS).sort());
}
