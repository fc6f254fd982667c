/**
 * Haiku-exact parameter initialisation: the same parameters as `hk.transform(f).init(key, ...)`
 * for the same key, in either random mode.
 *
 * How haiku turns one key into parameters (dm-haiku, haiku/_src/base.py and initializers.py):
 * - `init(key)` wraps the key in a `PRNGSequence`. Every `hk.next_rng_key()` (called by each random
 *   initialiser, and by user code such as a dropout key) splits the held key in two, keeps the
 *   first half and hands out the second (`reserve(1)`: `key, sub = split(key)`).
 * - Parameters are created in the order the forward function first touches them, so keys are
 *   consumed in that order; constant initialisers (zeros, ones) consume none.
 * - `hk.Linear` makes `w` [in, out] with `TruncatedNormal(stddev = 1/√in)` unless told otherwise,
 *   then `b` [out] with zeros. `hk.nets.MLP(sizes)` names its layers `<name>/~/linear_<i>`.
 *
 * Parameters are built on the host as float32 arrays, then uploaded once.
 */
import * as tf from '@tensorflow/tfjs';
import { PRNGKey, PRNGSequence, normalArray, truncatedNormalArray, uniformArray } from './random';

/** A haiku initialiser: fills `shape`, drawing keys from `nextKey` as haiku's would. */
export type Initializer = (shape: number[], nextKey: () => PRNGKey) => Float32Array;

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** `s * x + m` in float32, as haiku computes it with float32 scalars. */
function affine32(x: Float32Array, stddev: number, mean: number): Float32Array {
  const s = Math.fround(stddev);
  const m = Math.fround(mean);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.fround(s * x[i]) + m);
  return x;
}

/** `_compute_fans` of haiku/_src/initializers.py: conv kernels are (..., in, out). */
export function computeFans(shape: number[], fanInAxes?: number[]): [number, number] {
  if (shape.length < 1) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  if (fanInAxes) {
    const fanIn = sizeOf(fanInAxes.map((i) => shape[i]));
    return [fanIn, sizeOf(shape.filter((_, i) => !fanInAxes.includes(i)))];
  }
  const receptive = sizeOf(shape.slice(0, -2));
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** haiku's initialisers (`hk.initializers.*`), with its defaults. */
export const initializers = {
  constant(value: number): Initializer {
    return (shape) => new Float32Array(sizeOf(shape)).fill(value);
  },
  zeros(): Initializer {
    return initializers.constant(0);
  },
  ones(): Initializer {
    return initializers.constant(1);
  },
  truncatedNormal({ stddev = 1, mean = 0, lower = -2, upper = 2 } = {}): Initializer {
    return (shape, nextKey) => affine32(truncatedNormalArray(nextKey(), sizeOf(shape), lower, upper), stddev, mean);
  },
  randomNormal({ stddev = 1, mean = 0 } = {}): Initializer {
    return (shape, nextKey) => affine32(normalArray(nextKey(), sizeOf(shape)), stddev, mean);
  },
  randomUniform({ minval = 0, maxval = 1 } = {}): Initializer {
    return (shape, nextKey) => uniformArray(nextKey(), sizeOf(shape), minval, maxval);
  },
  varianceScaling({
    scale = 1,
    mode = 'fan_in',
    distribution = 'truncated_normal',
    fanInAxes,
  }: {
    scale?: number;
    mode?: 'fan_in' | 'fan_out' | 'fan_avg';
    distribution?: 'truncated_normal' | 'normal' | 'uniform';
    fanInAxes?: number[];
  } = {}): Initializer {
    return (shape, nextKey) => {
      const [fanIn, fanOut] = computeFans(shape, fanInAxes);
      const n = mode === 'fan_in' ? fanIn : mode === 'fan_out' ? fanOut : (fanIn + fanOut) / 2;
      const s = scale / Math.max(1, n);
      if (distribution === 'truncated_normal') {
        // 0.8796… is the standard deviation of a unit normal truncated to ±2.
        return initializers.truncatedNormal({ stddev: Math.sqrt(s) / Math.fround(0.87962566103423978) })(shape, nextKey);
      }
      if (distribution === 'normal') return initializers.randomNormal({ stddev: Math.sqrt(s) })(shape, nextKey);
      const limit = Math.sqrt(3 * s);
      return initializers.randomUniform({ minval: -limit, maxval: limit })(shape, nextKey);
    };
  },
};

/** One parameter on the host: its shape and float32 values. */
export interface HostParam {
  shape: number[];
  values: Float32Array;
}

/**
 * The state of one `init` call: the key sequence and the parameters made so far, by module name
 * and parameter name (haiku's `{'mlp/~/linear_0': {'w': ..., 'b': ...}}`).
 */
export class HaikuInit {
  readonly params: Record<string, Record<string, HostParam>> = {};
  private readonly rng: PRNGSequence;

  constructor(key: PRNGKey) {
    this.rng = new PRNGSequence(key);
  }

  /** `hk.next_rng_key()`. */
  nextRngKey(): PRNGKey {
    return this.rng.next();
  }

  /** `hk.get_parameter(name, shape, init=...)` inside module `module` ('~' outside any module). */
  getParameter(module: string, name: string, shape: number[], init: Initializer): Float32Array {
    const mod = (this.params[module] ??= {});
    if (mod[name]) throw new Error(`haiku init: parameter '${module}/${name}' is created twice`);
    const values = init(shape, () => this.nextRngKey());
    mod[name] = { shape: [...shape], values };
    return values;
  }

  /** `hk.Linear(outputSize, with_bias, w_init, b_init)` applied to inputs of width `inputSize`. */
  linear(module: string, inputSize: number, outputSize: number, opts: LinearOptions = {}): void {
    const wInit = opts.wInit ?? initializers.truncatedNormal({ stddev: 1 / Math.sqrt(inputSize) });
    this.getParameter(module, 'w', [inputSize, outputSize], wInit);
    if (opts.withBias ?? true) this.getParameter(module, 'b', [outputSize], opts.bInit ?? initializers.zeros());
  }

  /** `hk.nets.MLP(outputSizes, name=name)` applied to inputs of width `inputSize`. */
  mlp(inputSize: number, outputSizes: number[], opts: LinearOptions & { name?: string } = {}): void {
    const name = opts.name ?? 'mlp';
    let fanIn = inputSize;
    outputSizes.forEach((out, i) => {
      this.linear(`${name}/~/linear_${i}`, fanIn, out, opts);
      fanIn = out;
    });
  }
}

/** Options of `hk.Linear` (haiku/_src/basic.py): bias on or off and the two initialisers. */
export interface LinearOptions {
  withBias?: boolean;
  wInit?: Initializer;
  bInit?: Initializer;
}

/** The parameters one `build` makes, as tensors: `hk.transform(f).init(key)`. */
export function haikuInit(key: PRNGKey, build: (hk: HaikuInit) => void): Record<string, Record<string, tf.Tensor>> {
  const hk = new HaikuInit(key);
  build(hk);
  const out: Record<string, Record<string, tf.Tensor>> = {};
  for (const [m, ps] of Object.entries(hk.params)) {
    out[m] = {};
    for (const [n, p] of Object.entries(ps)) out[m][n] = tf.tensor(p.values, p.shape, 'float32');
  }
  return out;
}

/** `jax.vmap(init)(keys)`: one `build` per key, every parameter stacked on a new leading axis. */
export function haikuInitBatch(keys: PRNGKey[], build: (hk: HaikuInit) => void): Record<string, Record<string, tf.Tensor>> {
  if (keys.length === 0) throw new Error('haikuInitBatch needs at least one key');
  const inits = keys.map((k) => {
    const hk = new HaikuInit(k);
    build(hk);
    return hk.params;
  });
  const out: Record<string, Record<string, tf.Tensor>> = {};
  for (const [m, ps] of Object.entries(inits[0])) {
    out[m] = {};
    for (const [n, p] of Object.entries(ps)) {
      const size = p.values.length;
      const all = new Float32Array(keys.length * size);
      inits.forEach((params, i) => all.set(params[m][n].values, i * size));
      out[m][n] = tf.tensor(all, [keys.length, ...p.shape], 'float32');
    }
  }
  return out;
}
