/**
 * flax (linen) pieces of the MLP-Mixer and ViT tasks, whose reference models are flax modules
 * (`vision_transformer`'s vit_jax/models_mixer.py and models_vit.py, used by the reference's
 * tasks/fixed/mlp_mixer.py and tasks/fixed/vit.py): flax-exact parameter initialisation and the
 * layers both models share, for N stacked parameter sets (leading task axis).
 *
 * How flax turns one key into parameters (flax/core/scope.py, `LazyRng`, `_fold_in_static`,
 * `Scope.make_rng`; flax 0.12 with `flax_fix_rng_separator` off, its default):
 * - every module is a scope with a path of names (`('Transformer', 'encoderblock_0', 'MlpBlock_0',
 *   'Dense_0')`); each scope counts its own `make_rng(collection)` calls from 1;
 * - `self.param(name, init, shape)` calls `make_rng('params')` (even for zeros), and that key is
 *   `fold_in(root_key, h)`, h = the first 4 bytes (big-endian) of the SHA-1 of the path's names
 *   (utf-8) followed by the counter's big-endian bytes, all run together;
 * - dropout keys are made the same way from the `dropout` key, in the dropout module's scope.
 * So, unlike haiku, the order parameters are made in does not matter; only the names do.
 *
 * Initialisers (jax/_src/nn/initializers.py, in float32): `lecun_normal` = truncated normal on
 * [-2, 2] × sqrt(1/fan_in)/0.8796…, `xavier_uniform` = uniform(-1, 1) × sqrt(3/((fan_in+fan_out)/2)),
 * `normal(s)` = normal × s, `zeros`, `ones`. flax's `DenseGeneral` (the attention projections)
 * initialises its kernel on the flattened 2-d shape `(prod(in axes), prod(feature axes))` and
 * reshapes it.
 */
import { createHash } from 'crypto';
import * as tf from '@tensorflow/tfjs';
import { random, type PRNGKey } from '@lopt/core';
import { dropout, linear } from './lm_modules';

/** A flax initialiser on the host: fills `shape` (row-major) from `key`. */
export type FlaxInitializer = (key: PRNGKey, shape: number[]) => Float32Array;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** jax's `_compute_fans` with its defaults (in_axis -2, out_axis -1, the rest receptive field). */
function fans(shape: number[]): [number, number] {
  if (shape.length < 2) throw new Error(`flax init: fans of a ${shape.length}-d shape`);
  const receptive = size(shape.slice(0, -2));
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

function scaled(x: Float32Array, s: number): Float32Array {
  const s32 = Math.fround(s);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * s32);
  return x;
}

/** The flax / jax initialisers the Mixer and ViT models use, computed as jax does in float32. */
export const flaxInitializers = {
  zeros(): FlaxInitializer {
    return (_key, shape) => new Float32Array(size(shape));
  },
  ones(): FlaxInitializer {
    return (_key, shape) => new Float32Array(size(shape)).fill(1);
  },
  /** `nn.initializers.normal(stddev)`. */
  normal(stddev: number): FlaxInitializer {
    return (key, shape) => scaled(random.normalArray(key, size(shape)), stddev);
  },
  /** `nn.initializers.lecun_normal()` (flax's Dense and Conv default kernel init). */
  lecunNormal(): FlaxInitializer {
    return (key, shape) => {
      const variance = Math.fround(1 / fans(shape)[0]);
      const stddev = Math.fround(Math.fround(Math.sqrt(variance)) / Math.fround(0.87962566103423978));
      return scaled(random.truncatedNormalArray(key, size(shape), -2, 2), stddev);
    };
  },
  /** `nn.initializers.xavier_uniform()`. */
  xavierUniform(): FlaxInitializer {
    return (key, shape) => {
      const [fi, fo] = fans(shape);
      const variance = Math.fround(1 / ((fi + fo) / 2));
      return scaled(random.uniformArray(key, size(shape), -1, 1), Math.sqrt(Math.fround(3 * variance)));
    };
  },
};

/** `_fold_in_static(key, data)`: fold the SHA-1 of the names and counters into the key. */
export function foldInStatic(key: PRNGKey, data: Array<string | number>): PRNGKey {
  if (data.length === 0) return key;
  const h = createHash('sha1');
  for (const x of data) {
    if (typeof x === 'string') h.update(Buffer.from(x, 'utf-8'));
    else {
      const bytes: number[] = [];
      for (let v = x; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
      h.update(Buffer.from(bytes));
    }
  }
  return random.foldIn(key, h.digest().readUInt32BE(0));
}

/** The key flax's `make_rng` gives the `counter`-th call in the scope at `path` (counter from 1). */
export function flaxRng(key: PRNGKey, path: string[], counter = 1): PRNGKey {
  return foldInStatic(key, [...path, counter]);
}

interface HostLeaf {
  shape: number[];
  values: Float32Array;
}
type HostTree = { [name: string]: HostTree | HostLeaf };

/** One flax scope during `init`: its path, its `params` counter, and the variables made in it. */
export class FlaxScope {
  private counter = 0;
  constructor(
    private readonly key: PRNGKey,
    readonly path: string[],
    private readonly vars: HostTree,
  ) {}

  /** The child module `name` (a new scope). */
  child(name: string): FlaxScope {
    if (name in this.vars) throw new Error(`flax init: module '${[...this.path, name].join('/')}' made twice`);
    const sub: HostTree = {};
    this.vars[name] = sub;
    return new FlaxScope(this.key, [...this.path, name], sub);
  }

  /** `self.param(name, init, shape)`: spends one `params` key of this scope. */
  param(name: string, shape: number[], init: FlaxInitializer): void {
    if (name in this.vars) throw new Error(`flax init: parameter '${[...this.path, name].join('/')}' made twice`);
    this.counter += 1;
    this.vars[name] = { shape: [...shape], values: init(flaxRng(this.key, this.path, this.counter), shape) };
  }

  /** `nn.Dense(out, kernel_init, bias_init)` on inputs of width `inputSize` (kernel [in, out], bias [out]). */
  dense(name: string, inputSize: number, outputSize: number, kernelInit = flaxInitializers.lecunNormal(), biasInit = flaxInitializers.zeros()): void {
    const s = this.child(name);
    s.param('kernel', [inputSize, outputSize], kernelInit);
    s.param('bias', [outputSize], biasInit);
  }

  /**
   * `nn.DenseGeneral`: kernel `[...inShape, ...outShape]` initialised on its flattened 2-d shape,
   * bias `outShape` on its flattened 1-d shape.
   */
  denseGeneral(name: string, inShape: number[], outShape: number[], kernelInit: FlaxInitializer, biasInit = flaxInitializers.zeros()): void {
    const s = this.child(name);
    s.param('kernel', [...inShape, ...outShape], (k) => kernelInit(k, [size(inShape), size(outShape)]));
    s.param('bias', outShape, (k) => biasInit(k, [size(outShape)]));
  }

  /** `nn.LayerNorm()`: scale ones, bias zeros (each still spends a key, as flax does). */
  layerNorm(name: string, features: number): void {
    const s = this.child(name);
    s.param('scale', [features], flaxInitializers.ones());
    s.param('bias', [features], flaxInitializers.zeros());
  }
}

/** `jax.vmap(module.init)(keys)`: `{params: ...}`, every leaf stacked on a new leading task axis. */
export function flaxInitBatch(keys: PRNGKey[], build: (root: FlaxScope) => void): { params: tf.NamedTensorMap } {
  if (keys.length === 0) throw new Error('flaxInitBatch needs at least one key');
  const trees = keys.map((k) => {
    const t: HostTree = {};
    build(new FlaxScope(k, [], t));
    return t;
  });
  const stack = (parts: HostTree[]): any => {
    const out: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(parts[0])) {
      if ('values' in v && v.values instanceof Float32Array) {
        const leaf = v as HostLeaf;
        const all = new Float32Array(parts.length * leaf.values.length);
        parts.forEach((p, i) => all.set((p[name] as HostLeaf).values, i * leaf.values.length));
        out[name] = tf.tensor(all, [parts.length, ...leaf.shape], 'float32');
      } else {
        out[name] = stack(parts.map((p) => p[name] as HostTree));
      }
    }
    return out;
  };
  return { params: stack(trees) };
}

// ---- forward pieces (stacked: every parameter has a leading task axis N) ----

/** A flax parameter subtree. */
export type FlaxTree = { [name: string]: FlaxTree | tf.Tensor };

/** The subtree at `path` (each name a module). */
export function sub(tree: FlaxTree, ...path: string[]): FlaxTree {
  let t = tree;
  for (const p of path) {
    const next = t[p];
    if (!next || next instanceof tf.Tensor) throw new Error(`flax params lack module '${path.join('/')}'`);
    t = next;
  }
  return t;
}

/** The parameter `name` of a module subtree. */
export function leaf(tree: FlaxTree, name: string): tf.Tensor {
  const v = tree[name];
  if (!(v instanceof tf.Tensor)) throw new Error(`flax params lack parameter '${name}'`);
  return v;
}

/** `nn.Dense` per task: x [N, ..., I] -> [N, ..., O]. */
export function denseOf(m: FlaxTree, x: tf.Tensor): tf.Tensor {
  return linear(x, leaf(m, 'kernel'), leaf(m, 'bias'));
}

/**
 * `nn.LayerNorm()` (epsilon 1e-6, flax's fast variance `max(0, E[x²] − E[x]²)`):
 * `(x − mean) · (rsqrt(var + eps) · scale) + bias` over the last axis, per task.
 */
export function flaxLayerNorm(m: FlaxTree, x: tf.Tensor): tf.Tensor {
  const N = x.shape[0];
  const D = x.shape[x.shape.length - 1];
  const bshape = [N, ...x.shape.slice(1, -1).map(() => 1), D];
  const mean = tf.mean(x, -1, true);
  const mean2 = tf.mean(tf.square(x), -1, true);
  const variance = tf.relu(tf.sub(mean2, tf.square(mean)));
  const mul = tf.mul(tf.rsqrt(tf.add(variance, 1e-6)), tf.reshape(leaf(m, 'scale'), bshape));
  return tf.add(tf.mul(tf.sub(x, mean), mul), tf.reshape(leaf(m, 'bias'), bshape));
}

/**
 * `nn.Conv(D, (P, P), strides=(P, P), padding)` on images [N, B, H, W, C] -> patch embeddings
 * [N, B, h, w, D], done as patches × kernel (the kernel [P, P, C, D] flattened row-major matches a
 * patch flattened as (row, column, channel)). 'SAME' pads (lax's rule: total = (out−1)·P + P − H,
 * low half rounded down); 'VALID' drops the pixels past the last whole patch.
 */
export function patchEmbed(m: FlaxTree, image: tf.Tensor, patch: number, padding: 'SAME' | 'VALID'): tf.Tensor {
  const [N, B, H, W, C] = image.shape;
  const kernel = leaf(m, 'kernel');
  const D = kernel.shape[kernel.shape.length - 1];
  const P = patch;
  let x = tf.reshape(image, [N * B, H, W, C]);
  let h: number;
  let w: number;
  if (padding === 'SAME') {
    h = Math.ceil(H / P);
    w = Math.ceil(W / P);
    const ph = Math.max(h * P - H, 0);
    const pw = Math.max(w * P - W, 0);
    if (ph || pw) x = tf.pad(x, [[0, 0], [Math.floor(ph / 2), ph - Math.floor(ph / 2)], [Math.floor(pw / 2), pw - Math.floor(pw / 2)], [0, 0]]);
  } else {
    h = Math.floor(H / P);
    w = Math.floor(W / P);
    if (h * P !== H || w * P !== W) x = tf.slice(x, [0, 0, 0, 0], [N * B, h * P, w * P, C]);
  }
  if (h === 0 || w === 0) throw new Error(`patch embedding: a ${H}x${W} image has no whole ${P}x${P} patch`);
  // [N·B·h, P, w, P·C] -> [N·B·h, w, P, P·C] -> [N, B·h·w, P·P·C]
  const patches = tf.reshape(tf.transpose(tf.reshape(x, [N * B * h, P, w, P * C]), [0, 2, 1, 3]), [N, B * h * w, P * P * C]);
  const y = linear(patches, tf.reshape(kernel, [N, P * P * C, D]), leaf(m, 'bias'));
  return tf.reshape(y, [N, B, h, w, D]);
}

/**
 * `nn.Dropout(rate)(x, deterministic=False)` per task, its key `make_rng('dropout')` in the scope
 * at `path` (task n's loss key `keys[n]`): keep ~ bernoulli(1 − rate), `keep ? x / (1 − rate) : 0`.
 * Rate 0 returns x (flax returns before drawing a key).
 */
export function flaxDropout(keys: PRNGKey[] | null, path: string[], rate: number, x: tf.Tensor): tf.Tensor {
  if (rate === 0) return x;
  if (!keys) throw new Error(`dropout at ${path.join('/')}: this task is stochastic and needs one key per task`);
  return dropout(keys.map((k) => flaxRng(k, path)), rate, x);
}

/** The mean softmax cross-entropy over the batch, per task: logits [N, B, C], labels [N, B]. */
export function meanCrossEntropy(logits: tf.Tensor, label: tf.Tensor): tf.Tensor {
  const C = logits.shape[logits.shape.length - 1];
  // Not oneHot(..., 'float32'): tfjs-backend-wasm 4.22's OneHot writes int32 bits whatever the dtype.
  const onehot = tf.cast(tf.oneHot(tf.cast(label, 'int32'), C), 'float32');
  return tf.mean(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1)), -1);
}

/**
 * The Mixer and ViT tasks' normalizer: max = ln(2C); NaN and ±inf become max; `clip(10 · loss / max, 0, 10)`.
 */
export function mixerVitNormalizer(loss: tf.Tensor, numClasses: number): tf.Tensor {
  return tf.tidy(() => {
    const maxClass = Math.log(2 * numClasses);
    const finite = tf.where(tf.isFinite(loss), loss, tf.fill(loss.shape, maxClass));
    return tf.clipByValue(tf.mul(tf.div(finite, maxClass), 10), 0, 10);
  });
}
