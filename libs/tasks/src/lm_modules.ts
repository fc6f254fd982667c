/**
 * The haiku modules of the language-model tasks, for N stacked parameter sets (leading task axis):
 * `hk.Embed`, `hk.Linear`, the recurrent cores `hk.LSTM`, `hk.GRU`, `hk.VanillaRNN` and
 * `rnn.IRNN` (dm-haiku `haiku/_src/recurrent.py`, reference `tasks/rnn.py`) unrolled over time, the
 * reference's decoder-only transformer (`tasks/transformer.py`: `CausalSelfAttention`,
 * `DenseBlock`, `Transformer`), and the masked token loss both LM tasks use.
 *
 * Each module has two halves: an `init*` that makes its parameters in haiku's order on a
 * `HaikuInit` (so `init(key)` equals haiku's), and a forward in tf.js ops on stacked tensors.
 * Gradients come from tf.js autodiff.
 */
import * as tf from '@tensorflow/tfjs';
import { initializers, type HaikuInit, type Initializer, type PRNGKey, random } from '@lopt/core';

type P = Record<string, Record<string, tf.Tensor>>;

/**
 * Parameter `module/name` of a haiku-style params tree (stacked `[N, ...]`); throws naming the modules
 * present when it is absent.
 */
export function param(params: P, module: string, name: string): tf.Tensor {
  const m = params[module];
  if (!m || !m[name]) throw new Error(`language model: params lack '${module}/${name}' (have modules ${Object.keys(params).join(', ')})`);
  return m[name];
}

// ---- embed, linear ----

/** `hk.Embed(vocab, dim)`: `embeddings` [V, D], TruncatedNormal(stddev 1) unless `wInit`. */
export function initEmbed(hk: HaikuInit, module: string, vocabSize: number, dim: number, wInit?: Initializer): void {
  hk.getParameter(module, 'embeddings', [vocabSize, dim], wInit ?? initializers.truncatedNormal({ stddev: 1 }));
}

/**
 * Rows `idx` of a table [R, D], whose gradient is a scatter-add of dy into the rows (tf.js's own
 * gather gradient is an unsorted segment sum that loops over all R rows: a 32100-row embedding
 * takes ~40 s on the cpu backend this way, milliseconds by scatter).
 */
const gatherRows = tf.customGrad(((table: tf.Tensor, idx: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
  save([idx]);
  return {
    value: tf.gather(table, idx),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.expandDims(saved[0], 1), dy, table.shape), tf.zerosLike(saved[0])],
  };
}) as any) as (table: tf.Tensor, idx: tf.Tensor) => tf.Tensor;

/**
 * `embeddings[ids]` per task: emb [N, V, D], ids [N, ...] int32 -> [N, ..., D]. Ids are clamped
 * into [0, V-1] as jax's gather does for out-of-range indices.
 */
export function embed(emb: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [N, V, D] = emb.shape;
  const offs = tf.reshape(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), [N, ...ids.shape.slice(1).map(() => 1)]);
  const clamped = tf.minimum(tf.maximum(tf.cast(ids, 'int32'), tf.scalar(0, 'int32')), tf.scalar(V - 1, 'int32'));
  const idx = tf.add(clamped, offs);
  const flat = gatherRows(tf.reshape(emb, [N * V, D]), tf.reshape(idx, [-1]));
  return tf.reshape(flat, [...ids.shape, D]);
}

/** `x @ w + b` per task: x [N, ..., I], w [N, I, O], b [N, O] (or none) -> [N, ..., O]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [N, I, O] = w.shape;
  const lead = x.shape.slice(0, -1);
  let y = tf.matMul(tf.reshape(x, [N, -1, I]), w);
  if (b) y = tf.add(y, tf.reshape(b, [N, 1, O]));
  return tf.reshape(y, [...lead, O]);
}

/**
 * {@link linear} with the `w` (and, with `withBias`, `b`) of haiku module `module`: `hk.Linear` applied per
 * task.
 */
export function linearOf(params: P, module: string, x: tf.Tensor, withBias = true): tf.Tensor {
  return linear(x, param(params, module, 'w'), withBias ? param(params, module, 'b') : undefined);
}

// ---- recurrent cores ----

/**
 * The recurrent cores of the LM tasks: `hk.LSTM`, `hk.GRU`, `hk.VanillaRNN` and the reference's `rnn.IRNN`.
 */
export const RNN_CORES = ['lstm', 'gru', 'vanilla_rnn', 'irnn'] as const;
/** One of {@link RNN_CORES}. */
export type RnnCore = (typeof RNN_CORES)[number];

/** haiku's class names, for task names (`hk.LSTM` -> `LSTM128`). */
export const RNN_CORE_CLASS: Record<RnnCore, string> = { lstm: 'LSTM', gru: 'GRU', vanilla_rnn: 'VanillaRNN', irnn: 'IRNN' };

/** The leaves of `core.initial_state(1)` in tree order: LSTMState is (hidden, cell). */
export function rnnStateSizes(core: RnnCore, hidden: number): number[][] {
  return core === 'lstm' ? [[1, hidden], [1, hidden]] : [[1, hidden]];
}

/**
 * The core's parameters, made on its first step (inputs of width `inputSize`), in haiku's order.
 * `irnnGain`: `rnn.IRNN`'s identity gain on the recurrent weight.
 */
export function initRnnCore(hk: HaikuInit, core: RnnCore, inputSize: number, hidden: number, irnnGain = 1): void {
  switch (core) {
    case 'lstm':
      hk.linear('lstm/linear', inputSize + hidden, 4 * hidden);
      return;
    case 'gru':
      hk.getParameter('gru', 'w_i', [inputSize, 3 * hidden], initializers.varianceScaling());
      hk.getParameter('gru', 'w_h', [hidden, 3 * hidden], initializers.varianceScaling());
      hk.getParameter('gru', 'b', [3 * hidden], initializers.zeros());
      return;
    case 'vanilla_rnn':
      hk.linear('vanilla_rnn/linear', inputSize, hidden);
      hk.linear('vanilla_rnn/linear_1', hidden, hidden);
      return;
    case 'irnn': {
      hk.linear('irnn/linear', inputSize, hidden);
      const eye: Initializer = (shape) => {
        const out = new Float32Array(shape[0] * shape[1]);
        for (let i = 0; i < Math.min(shape[0], shape[1]); i++) out[i * shape[1] + i] = Math.fround(irnnGain);
        return out;
      };
      hk.linear('irnn/linear_1', hidden, hidden, { wInit: eye });
      return;
    }
  }
}

/**
 * `hk.dynamic_unroll(core, x, state, time_major=False)`'s outputs: x [N, B, T, I], state leaves
 * [N, B, H] -> [N, B, T, H].
 */
export function unrollRnn(params: P, core: RnnCore, x: tf.Tensor, state: tf.Tensor[]): tf.Tensor {
  const T = x.shape[2] as number;
  const xs = tf.unstack(x, 2); // T of [N, B, I]
  const outs: tf.Tensor[] = [];
  let s = state;
  const sig = tf.sigmoid;
  for (let t = 0; t < T; t++) {
    const xt = xs[t];
    switch (core) {
      case 'lstm': {
        const [h, c] = s;
        const gated = linearOf(params, 'lstm/linear', tf.concat([xt, h], -1));
        const [i, g, f, o] = tf.split(gated, 4, -1);
        const c2 = tf.add(tf.mul(sig(tf.add(f, 1)), c), tf.mul(sig(i), tf.tanh(g)));
        const h2 = tf.mul(sig(o), tf.tanh(c2));
        s = [h2, c2];
        outs.push(h2);
        break;
      }
      case 'gru': {
        const [h] = s;
        const H = h.shape[2] as number;
        const wi = param(params, 'gru', 'w_i');
        const wh = param(params, 'gru', 'w_h');
        const b = param(params, 'gru', 'b');
        const [whZ, whA] = tf.split(wh, [2 * H, H], 2);
        const [bZ, bA] = tf.split(b, [2 * H, H], 1);
        const [zrX, aX] = tf.split(linear(xt, wi), [2 * H, H], -1);
        const zr = tf.sigmoid(tf.add(tf.add(zrX, linear(h, whZ)), tf.expandDims(bZ, 1)));
        const [z, r] = tf.split(zr, 2, -1);
        const a = tf.tanh(tf.add(tf.add(aX, linear(tf.mul(r, h), whA)), tf.expandDims(bA, 1)));
        const h2 = tf.add(tf.mul(tf.sub(1, z), h), tf.mul(z, a));
        s = [h2];
        outs.push(h2);
        break;
      }
      case 'vanilla_rnn':
      case 'irnn': {
        const [h] = s;
        const h2 = tf.relu(tf.add(linearOf(params, `${core}/linear`, xt), linearOf(params, `${core}/linear_1`, h)));
        s = [h2];
        outs.push(h2);
        break;
      }
    }
  }
  return tf.stack(outs, 2);
}

// ---- transformer ----

/**
 * Sizes of the reference's `Transformer` (`tasks/transformer.py`): heads, layers, model width, vocabulary and
 * dropout rate.
 */
export interface TransformerShape {
  numHeads: number;
  numLayers: number;
  dModel: number;
  vocabSize: number;
  dropoutRate: number;
}

/** The reference's `CausalSelfAttention` key size (fixed in `Transformer`). */
export const KEY_SIZE = 32;

/**
 * `Transformer(...)` (module name `transformer`) applied to ids: its parameters in haiku's order.
 * Each `hk.dropout(hk.next_rng_key(), ...)` draws a key even in `init` and at rate 0, so init
 * spends one key after each attention and each dense block.
 */
export function initTransformer(hk: HaikuInit, c: TransformerShape): void {
  const D = c.dModel;
  const vs = initializers.varianceScaling({ scale: 2 / c.numLayers });
  initEmbed(hk, 'transformer/embed', c.vocabSize, D);
  const ln = (name: string) => {
    hk.getParameter(`transformer/${name}`, 'scale', [D], initializers.ones());
    hk.getParameter(`transformer/${name}`, 'offset', [D], initializers.zeros());
  };
  for (let i = 0; i < c.numLayers; i++) {
    ln(`h${i}_ln_1`);
    for (const p of ['query', 'key', 'value']) hk.linear(`transformer/h${i}_attn/${p}`, D, c.numHeads * KEY_SIZE, { wInit: vs });
    hk.linear(`transformer/h${i}_attn/linear`, c.numHeads * KEY_SIZE, D, { wInit: vs });
    hk.nextRngKey();
    ln(`h${i}_ln_2`);
    hk.linear(`transformer/h${i}_mlp/linear`, D, 4 * D, { wInit: vs });
    hk.linear(`transformer/h${i}_mlp/linear_1`, 4 * D, D, { wInit: vs });
    hk.nextRngKey();
  }
  ln('h_f');
  hk.linear('transformer/linear', D, c.vocabSize);
}

/** `hk.LayerNorm(axis=-1, create_scale, create_offset)`: eps 1e-5, two-pass variance. */
export function layerNorm(params: P, module: string, x: tf.Tensor): tf.Tensor {
  const N = x.shape[0];
  const D = x.shape[x.shape.length - 1];
  const bshape = [N, ...x.shape.slice(1, -1).map(() => 1), D];
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  const inv = tf.mul(tf.reshape(param(params, module, 'scale'), bshape), tf.rsqrt(tf.add(variance, 1e-5)));
  return tf.add(tf.mul(inv, xc), tf.reshape(param(params, module, 'offset'), bshape));
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

// The tanh form is computed as x·σ(v) with v = 2c(x + a·x³), using ½(1 + tanh(z)) = σ(2z): tf.js
// wasm runs Tanh and Pow as scalar libm loops (~25 ns a value) but Sigmoid and Mul with XNNPACK
// (~1 and ~0.2 ns), and gelu of the MLP-Mixer's token-mixing hidden layer (2·B·hidden·tokens_mlp
// values) was most of its step time. Same function; the values differ by float rounding (and
// σ(2z) does not cancel where 1 + tanh(z) does, for x ≪ 0).
const GELU_K1 = 2 * GELU_C;
const GELU_K2 = 2 * GELU_C * GELU_A;

/** Replaces `prev` by `next` (disposing `prev`): keeps at most a few x-sized tensors alive. */
function then(prev: tf.Tensor, next: tf.Tensor): tf.Tensor {
  prev.dispose();
  return next;
}

/** σ(v), v = 2c·(x + a·x³) = x·(2c + 2ca·x²), and x² (which the derivative reuses). */
function geluSigmoid(x: tf.Tensor): { s: tf.Tensor; x2: tf.Tensor } {
  const x2 = tf.square(x);
  let v = tf.mul(x2, GELU_K2);
  v = then(v, tf.add(v, GELU_K1));
  v = then(v, tf.mul(x, v));
  return { s: then(v, tf.sigmoid(v)), x2 };
}

/** d gelu / dx from σ(v) and x²: σ + x·σ(1 − σ)·v', v' = 2c(1 + 3a·x²) (x2 is disposed). */
function geluDerivativeOf(x: tf.Tensor, s: tf.Tensor, x2: tf.Tensor): tf.Tensor {
  let q = tf.mul(x2, 3 * GELU_K2);
  x2.dispose();
  q = then(q, tf.add(q, GELU_K1));
  let r = tf.sub(1, s);
  r = then(r, tf.mul(s, r));
  q = then(q, tf.mul(q, r));
  r.dispose();
  q = then(q, tf.mul(q, x));
  return then(q, tf.add(s, q));
}

/** The gelu forward formula, 0.5·x·(1 + tanh(c·(x + a·x³))) = x·σ(2c·(x + a·x³)); no custom gradient. */
export function geluValue(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { s, x2 } = geluSigmoid(x);
    x2.dispose();
    return then(s, tf.mul(x, s));
  });
}

/** d gelu(x) / dx = ½(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(√(2/π)(x + 0.044715x³)). */
export function geluDerivative(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { s, x2 } = geluSigmoid(x);
    return then(s, geluDerivativeOf(x, s, x2));
  });
}

/** `[geluValue(x), geluDerivative(x)]`, sharing their σ (what a written-out backward pass needs). */
export function geluWithDerivative(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const { s, x2 } = geluSigmoid(x);
    const g = tf.mul(x, s);
    return [g, then(s, geluDerivativeOf(x, s, x2))];
  });
}

/**
 * gelu with its derivative written out, saving only x for the backward pass: autodiff of the
 * composed formula keeps ~8 tensors of x's size per call alive until backprop (each Pow/Mul/Tanh
 * saves its inputs or output), which at the Mixer's token-mixing width (B·D·tokens_mlp_dim floats,
 * 100 MB per tensor at batch 128) exhausted the wasm backend's 4 GiB heap and aborted the module.
 * The gradient is built from tf ops, so nested (second-order) gradients still flow through it.
 */
const geluCustomGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: geluValue(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => tf.mul(dy, geluDerivative(saved[0]))),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** `jax.nn.gelu` (approximate=True, its default): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluCustomGrad(x);
}

/**
 * `hk.dropout(key, rate, x)` per task: keep ~ bernoulli(key_n, 1 - rate) (jax: uniform < keep),
 * `keep · x / (1 - rate)`; rate 0 returns x.
 */
export function dropout(keys: PRNGKey[], rate: number, x: tf.Tensor): tf.Tensor {
  if (rate === 0) return x;
  const keep = Math.fround(1 - rate);
  const size = x.size / x.shape[0];
  const mask = new Float32Array(x.size);
  keys.forEach((k, n) => {
    const u = random.uniformArray(k, size);
    for (let i = 0; i < size; i++) mask[n * size + i] = u[i] < keep ? 1 : 0;
  });
  return tf.div(tf.mul(tf.tensor(mask, x.shape, 'float32'), x), keep);
}

/**
 * `Transformer(...)(ids, mask, is_training=True)` -> logits [N, B, T, V]. ids and mask [N, B, T]
 * (mask: a padding mask over keys); `rngs[n]` is task n's haiku key sequence (dropout keys), or
 * null when the dropout rate is 0.
 */
export function transformerForward(params: P, c: TransformerShape, ids: tf.Tensor, padMask: tf.Tensor, rngs: random.PRNGSequence[] | null): tf.Tensor {
  const [N, B, T] = ids.shape;
  const H = c.numHeads;
  let h = embed(param(params, 'transformer/embed', 'embeddings'), ids); // [N, B, T, D]
  // key mask [N, B, 1, 1, T] times the causal [T, T]
  const causal = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  const mask = tf.greater(tf.mul(tf.reshape(tf.cast(padMask, 'float32'), [N, B, 1, 1, T]), causal), 0);
  const neg = tf.fill([N, B, H, T, T], -1e30);
  const scale = Math.fround(Math.sqrt(KEY_SIZE));
  const drop = (x: tf.Tensor) => {
    const keys = rngs ? rngs.map((r) => r.next()) : null;
    return keys && c.dropoutRate > 0 ? dropout(keys, c.dropoutRate, x) : x;
  };
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [N, B, T, H, KEY_SIZE]), [0, 1, 3, 2, 4]); // [N, B, H, T, K]
  for (let i = 0; i < c.numLayers; i++) {
    const a = `transformer/h${i}_attn`;
    const hn = layerNorm(params, `transformer/h${i}_ln_1`, h);
    const q = heads(linearOf(params, `${a}/query`, hn));
    const k = heads(linearOf(params, `${a}/key`, hn));
    const v = heads(linearOf(params, `${a}/value`, hn));
    const logits = tf.where(mask, tf.div(tf.matMul(q, k, false, true), scale), neg);
    const att = tf.matMul(tf.softmax(logits), v); // [N, B, H, T, K]
    const attVec = tf.reshape(tf.transpose(att, [0, 1, 3, 2, 4]), [N, B, T, H * KEY_SIZE]);
    h = tf.add(h, drop(linearOf(params, `${a}/linear`, attVec)));
    const hn2 = layerNorm(params, `transformer/h${i}_ln_2`, h);
    const dense = linearOf(params, `transformer/h${i}_mlp/linear_1`, gelu(linearOf(params, `transformer/h${i}_mlp/linear`, hn2)));
    h = tf.add(h, drop(dense));
  }
  h = layerNorm(params, 'transformer/h_f', h);
  return linearOf(params, 'transformer/linear', h);
}

// ---- loss ----

/** `where(x > v, 1 + x % (v - 1), x)`: the reference's fold of a larger vocabulary into v ids. */
export function foldVocab(x: tf.Tensor, vocabSize: number): tf.Tensor {
  const i = (v: number) => tf.scalar(v, 'int32');
  const xi = tf.cast(x, 'int32');
  return tf.where(tf.greater(xi, i(vocabSize)), tf.add(i(1), tf.mod(xi, i(vocabSize - 1))), xi);
}

/**
 * `sum(softmax_cross_entropy(logits, one_hot(target, V)) · mask) / sum(mask)` per task, mask =
 * `maskIds != 0`. A target equal to V (possible after `foldVocab`) one-hots to zeros, as in jax.
 */
export function maskedTokenLoss(logits: tf.Tensor, target: tf.Tensor, maskIds: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.shape.length - 1];
  const onehot = tf.cast(tf.oneHot(tf.reshape(target, [-1]), V), 'float32');
  const vec = tf.neg(tf.sum(tf.mul(tf.reshape(onehot, logits.shape), tf.logSoftmax(logits)), -1)); // [N, B, T]
  const mask = tf.cast(tf.notEqual(maskIds, 0), 'float32');
  return tf.div(tf.sum(tf.mul(vec, mask), [1, 2]), tf.sum(mask, [1, 2]));
}
