/**
 * The per-parameter MLP applied once to every parameter of every leaf of every stacked task.
 *
 * - `perParamFirstLayer` + `perParamOutputs` (AdafacMLPLOpt, AdafacNominal, HyperV2's first layer):
 *   the features never concatenated; the first layer input by input, the second-moment
 *   normalisation folded into its weights, factored (Adafactor row / column) inputs multiplied at
 *   their factored size; only the outputs used computed.
 * - `applyPerParamMLP`: the same MLP on concatenated features `x [N, P, F]` (the readable form; the
 *   tests check the above against it).
 * - `applyPerTaskMLPChannelsFirst` / `applySharedMLPChannelsFirst`: the wasm tf.js variant of
 *   MLPLOpt's update kernel (mlp_lopt_wasm.ts; MLPLOpt's readable update is in mlp_lopt.ts).
 *
 * `applyPerParamMLP`'s input: `x [N, P, F]` (already normalised features of all P parameters of each of N tasks) and
 * `time [N, T]` (the un-normalised tanh time features, identical for every parameter of a task).
 * The first layer is split: `concat(x, time) @ W0 + b0 = x @ W0[:F] + (time @ W0[F:] + b0)`, the
 * second term one row per task, which saves T/(F+T) of the first layer's multiply-adds.
 *
 * Shared weights (`w [in, out]`): one 2-D matMul per layer over all N·P rows.
 * Per-task weights (`w [N, in, out]`, thetaIsVector): N plain 2-D matMuls per layer, not a rank-3
 * batched matMul (which falls off XNNPACK on wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { noGradientRecorded } from '@lopt/core';
import { batchMatMul3 } from './common';

/** One dense layer's weights: `w [in, out]` (or `[N, in, out]` per task) and `b`. */
export interface Linear {
  w: tf.Tensor;
  b: tf.Tensor;
}

function layerStack(h: tf.Tensor, layers: Linear[], from: number, wOf: (l: Linear) => tf.Tensor, bOf: (l: Linear) => tf.Tensor): tf.Tensor {
  for (let i = from; i < layers.length; i++) {
    h = tf.add(tf.matMul(h, wOf(layers[i])), bOf(layers[i]));
    if (i !== layers.length - 1) h = tf.relu(h);
  }
  return h;
}

/** The per-parameter MLP on `x [N, P, F]` with the time features `time [N, T]` split out of the first layer (see the file comment). */
export function applyPerParamMLP(x: tf.Tensor, time: tf.Tensor, layers: Linear[], perTask: boolean): tf.Tensor {
  const [N, P, F] = x.shape as number[];
  const T = time.shape[time.rank - 1];
  const w0 = layers[0].w;
  const outSize = layers[layers.length - 1].w.shape[layers[layers.length - 1].w.rank - 1];
  if (!perTask) {
    if (w0.rank !== 2 || (w0.shape as number[])[0] !== F + T) throw new Error(`MLP layer 0: w of shape [${(w0.shape as number[])}], expected [${F + T}, H]`);
    const H = (w0.shape as number[])[1];
    const w0x = tf.slice(w0, [0, 0], [F, H]);
    const w0t = tf.slice(w0, [F, 0], [T, H]);
    const rowTerm = tf.add(tf.matMul(time, w0t), layers[0].b); // [N, H]
    let h = tf.reshape(tf.matMul(tf.reshape(x, [N * P, F]), w0x), [N, P, H]);
    h = tf.add(h, tf.reshape(rowTerm, [N, 1, H]));
    if (layers.length > 1) h = tf.relu(h); // a ReLU between layers only (none with no hidden layer)
    const out = layerStack(tf.reshape(h, [N * P, H]), layers, 1, (l) => l.w, (l) => l.b);
    return tf.reshape(out, [N, P, outSize]);
  }
  if (w0.rank !== 3 || (w0.shape as number[])[0] !== N || (w0.shape as number[])[1] !== F + T) {
    throw new Error(`per-task MLP layer 0: w of shape [${(w0.shape as number[])}], expected [${N}, ${F + T}, H] (thetaIsVector)`);
  }
  const H = (w0.shape as number[])[2];
  const w0x = tf.unstack(tf.slice(w0, [0, 0, 0], [N, F, H]));
  const w0t = tf.slice(w0, [0, F, 0], [N, T, H]);
  // [N, T, 1] * [N, T, H] summed over T: the per-task time row, elementwise (no batched matMul).
  const rowTerm = tf.unstack(tf.add(tf.sum(tf.mul(tf.expandDims(time, 2), w0t), 1), layers[0].b)); // N x [H]
  const xs = tf.unstack(x); // N x [P, F]
  const ws = layers.map((l) => tf.unstack(l.w));
  const bs = layers.map((l) => tf.unstack(l.b));
  const outs: tf.Tensor[] = [];
  for (let n = 0; n < N; n++) {
    const pre = tf.add(tf.matMul(xs[n], w0x[n]), rowTerm[n]);
    const h = layers.length > 1 ? tf.relu(pre) : pre;
    outs.push(
      layerStack(
        h,
        layers.map((_, i) => ({ w: ws[i][n], b: bs[i][n] })),
        1,
        (l) => l.w,
        (l) => l.b,
      ),
    );
  }
  return tf.stack(outs);
}

/**
 * Per-task weights (`w [N, in, out]`, thetaIsVector), features given channels-first: `xT [N, F, P]`
 * (one row per feature, one column per parameter; the caller builds it by stacking rows, which
 * are contiguous copies) and `time [N, T]`. Returns the outputs channels-first, `[out, N, P]`, so
 * each output channel is a contiguous `[N, P]` block.
 *
 * Same values as `applyPerParamMLP(x, time, layers, true)` up to float rounding. Every layer is a
 * single fused kernel (`tf.fused.matMul` with the bias and ReLU: one XNNPACK call on wasm instead
 * of matMul + broadcast add + relu, which cost about as much as the matMul itself there); the two
 * layout changes are one transpose each for all tasks. Measured on wasm for P = 2,410 (one task):
 * 0.5 ms fused row layout vs 1.1 ms unfused; concat / slice along a short last axis (the
 * alternative to the transposes) are slow per-row JS copy loops on wasm.
 */
/** Below this many FLOPs per task in the hidden layer, the per-task MLP uses one batched matMul per layer. */
const SMALL_LAYER_FLOPS = 100_000;

/** The rows of `[N, H]` as N rank-1 tensors with their own data (wasm's fused matMul checks the
 * rank of the bias's *buffer*, and `unstack` results share a buffer shaped `[1, H]`). */
function rowsOf(b: tf.Tensor): tf.Tensor[] {
  const [N, H] = b.shape as number[];
  const flat = tf.reshape(b, [N * H]);
  return Array.from({ length: N }, (_, n) => tf.slice(flat, [n * H], [H]));
}

/** The same MLP on channels-first features `xT [N, F, P]` with per-task weights, for MLPLOpt's wasm update. */
export function applyPerTaskMLPChannelsFirst(xT: tf.Tensor, time: tf.Tensor, layers: Linear[]): tf.Tensor {
  const [N, F, P] = xT.shape as number[];
  const T = time.shape[time.rank - 1];
  const w0 = layers[0].w;
  if (w0.rank !== 3 || (w0.shape as number[])[0] !== N || (w0.shape as number[])[1] !== F + T) {
    throw new Error(`per-task MLP layer 0: w of shape [${(w0.shape as number[])}], expected [${N}, ${F + T}, H] (thetaIsVector)`);
  }
  const H = (w0.shape as number[])[2];
  const w0t = tf.slice(w0, [0, F, 0], [N, T, H]);
  // [N, T, 1] * [N, T, H] summed over T: the per-task time row, elementwise (no batched matMul).
  const rowTerm = tf.add(tf.sum(tf.mul(tf.expandDims(time, 2), w0t), 1), layers[0].b); // [N, H]
  if (P * H * H * 2 < SMALL_LAYER_FLOPS) {
    // Few parameters (e.g. a 10-d quadratic): one rank-3 batched matMul per layer for all tasks.
    // Its slow loop on wasm costs less than N separate XNNPACK calls (each packs its weights).
    let h = tf.transpose(xT, [0, 2, 1]); // [N, P, F]
    for (let i = 0; i < layers.length; i++) {
      const w = i === 0 ? tf.slice(w0, [0, 0, 0], [N, F, H]) : layers[i].w;
      const b = i === 0 ? rowTerm : layers[i].b;
      h = tf.add(tf.matMul(h, w), tf.expandDims(b, 1));
      if (i !== layers.length - 1) h = tf.relu(h);
    }
    return tf.transpose(h, [2, 0, 1]); // [out, N, P]
  }
  // Rank-3 operands [1, rows, cols] cut straight from the stacked tensors go to the fused kernel
  // as they are: the op's own reshapes (3 per call) and the unstacks were a third of the kernels.
  const bs = layers.map((l, i) => rowsOf(i === 0 ? rowTerm : l.b));
  const xs = tf.transpose(xT, [0, 2, 1]); // [N, P, F]
  const outs: tf.Tensor[] = [];
  for (let n = 0; n < N; n++) {
    let h = tf.slice(xs, [n, 0, 0], [1, P, F]);
    for (let i = 0; i < layers.length; i++) {
      const w = layers[i].w;
      const [, rows, cols] = w.shape as number[];
      const wn = tf.slice(w, [n, 0, 0], [1, i === 0 ? F : rows, cols]);
      h = fusedMatMul3(h, wn, bs[i][n], i !== layers.length - 1 ? 'relu' : 'linear');
    }
    outs.push(h);
  }
  return tf.transpose(tf.concat(outs, 0), [2, 0, 1]); // [out, N, P]
}

/**
 * Shared weights (`w [in, out]`), features channels-first `xT [N, F, P]`, `time [N, T]`: the
 * same as `applyPerTaskMLPChannelsFirst` for one θ. The first layer is one matMul over all N·P
 * rows plus the per-task time row; the other layers are one fused matMul each over all rows.
 * Returns `[out, N, P]`.
 */
export function applySharedMLPChannelsFirst(xT: tf.Tensor, time: tf.Tensor, layers: Linear[]): tf.Tensor {
  const [N, F, P] = xT.shape as number[];
  const T = time.shape[time.rank - 1];
  const w0 = layers[0].w;
  if (w0.rank !== 2 || (w0.shape as number[])[0] !== F + T) throw new Error(`MLP layer 0: w of shape [${w0.shape as number[]}], expected [${F + T}, H]`);
  const H = (w0.shape as number[])[1];
  const rowTerm = tf.add(tf.matMul(time, tf.slice(w0, [F, 0], [T, H])), layers[0].b); // [N, H]
  const xs = tf.reshape(tf.transpose(xT, [0, 2, 1]), [1, N * P, F]);
  const w0x = tf.reshape(tf.slice(w0, [0, 0], [F, H]), [1, F, H]);
  let h: tf.Tensor;
  const act0 = layers.length > 1 ? 'relu' : 'linear'; // a ReLU between layers only
  if (N === 1) h = fusedMatMul3(xs, w0x, rowsOf(rowTerm)[0], act0);
  else {
    const pre = tf.add(tf.reshape(batchMatMul3(xs, w0x), [N, P, H]), tf.reshape(rowTerm, [N, 1, H]));
    h = tf.reshape(act0 === 'relu' ? tf.relu(pre) : pre, [1, N * P, H]);
  }
  for (let i = 1; i < layers.length; i++) {
    const [rows, cols] = layers[i].w.shape as number[];
    const bias = rowsOf(tf.reshape(layers[i].b, [1, cols]))[0];
    h = fusedMatMul3(h, tf.reshape(layers[i].w, [1, rows, cols]), bias, i !== layers.length - 1 ? 'relu' : 'linear');
  }
  const out = h.shape[2] as number;
  return tf.transpose(tf.reshape(h, [N, P, out]), [2, 0, 1]); // [out, N, P]
}

/**
 * `act(a @ b + bias)` for `a [1, m, k]`, `b [1, k, n]`, `bias [n]`: the `_FusedMatMul` kernel
 * called directly (no reshapes around it) when no gradient is being recorded, else `tf.fused.matMul`.
 */
export function fusedMatMul3(a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor, activation: 'relu' | 'linear'): tf.Tensor {
  if (!noGradientRecorded()) return tf.fused.matMul({ a, b, bias, activation });
  return (tf.engine() as any).runKernel('_FusedMatMul', { a, b, bias }, { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 }) as tf.Tensor;
}

/**
 * One input of a per-parameter MLP's first layer (HyperV2, AdafacMLPLOpt, AdafacNominal): `x`
 * `[N, R, k]`, k features of each of R rows. R = S (one row per parameter of the leaf) unless the
 * input is an Adafactor row/column feature, which is constant along axis `broadcastAt` of the leaf
 * and is kept at its factored `shape` (the leaf's shape without that axis), R = its size.
 */
export interface PerParamInput {
  x: tf.Tensor;
  broadcastAt?: number;
  shape?: number[];
}

/**
 * The first layer of a per-parameter MLP on second-moment normalised inputs,
 * `second_moment_normalize(concat(inputs)) @ w0 + b0` (the normalisation over the leaf, per feature
 * column, as `common.second_moment_normalize(x, axis=[0])` in hyper_v2.py `_ff_mod` and
 * adafac_mlp_lopt.py `_mod`), computed input by input without the concat: with
 * r = rsqrt(1e-5 + mean_S x²) per column, it is Σ_i x_i @ (r · w0)[rows of input i] + b0, so the
 * normalisation scales the small weights, not the `[N, S, k]` inputs. Factored inputs are
 * multiplied at their own size, summed there with the other inputs constant along the same axis,
 * and only then broadcast over the leaf. (The mean of a broadcast input over S is the mean over
 * its factored rows.)
 *
 * `w0`: the rows of the first layer's weights that the inputs meet, in their order, `[F, hid]`
 * (shared) or `[N, F, hid]` (per task), F the inputs' total width; `b0`: `[N, hid]` (the bias, plus
 * anything constant over the leaf such as the time features' term); `leafShape`: `[N, ...leaf
 * shape]`. Returns the pre-activation `[N, S, hid]`. Differentiable.
 */
export function perParamFirstLayer(inps: PerParamInput[], w0: tf.Tensor, b0: tf.Tensor, leafShape: number[]): tf.Tensor {
  const [n, ...shp] = leafShape;
  const S = Math.max(1, shp.reduce((a, b) => a * b, 1));
  const hid = b0.shape[1] as number;
  const widths = inps.map(({ x }) => x.shape[2] as number);
  const F = widths.reduce((a, b) => a + b, 0);
  if (w0.shape[w0.rank - 2] !== F) throw new Error(`per-parameter MLP layer 0: ${w0.shape[w0.rank - 2]} input rows, expected ${F}`);
  // every column's normaliser at once: [N, F] -> the scaled weights [N, F, hid]
  const meanSq = inps.map(({ x }) => tf.mean(tf.square(x), 1)); // [N, k_i]
  const r = tf.rsqrt(tf.add(1e-5, meanSq.length === 1 ? meanSq[0] : tf.concat(meanSq, 1)));
  const wScaled = tf.mul(w0, tf.expandDims(r, 2));
  let off = 0;
  const scaled = inps.map(({ x }, i) => {
    const wi = tf.slice(wScaled, [0, off, 0], [n, widths[i], hid]);
    off += widths[i];
    return () => tf.matMul(x, wi); // [N, R, hid]
  });
  let o: tf.Tensor = tf.expandDims(b0, 1); // [N, 1, hid]
  inps.forEach((p, i) => {
    if (p.broadcastAt === undefined) o = tf.add(o, scaled[i]());
  });
  // (adding zeros broadcasts with a gradient at any rank; tf.broadcastTo's tile has one up to rank 4)
  if (o.shape[1] !== S) o = tf.add(o, tf.zeros([n, S, hid]));
  o = tf.reshape(o, [n, ...shp, hid]);
  // the factored inputs, summed per broadcast axis at their factored size, then broadcast once
  const byAxis = new Map<number, tf.Tensor>();
  inps.forEach((p, i) => {
    if (p.broadcastAt === undefined) return;
    const t = tf.reshape(scaled[i](), [n, ...p.shape!, hid]);
    const prev = byAxis.get(p.broadcastAt);
    byAxis.set(p.broadcastAt, prev ? tf.add(prev, t) : t);
  });
  for (const [at, t] of byAxis) o = tf.add(o, tf.expandDims(t, at + 1));
  return tf.reshape(o, [n, S, hid]);
}

/**
 * The rest of a per-parameter MLP after its first layer, with shared weights (`w [in, out]`,
 * `b [out]`) or per-task ones (`w [N, in, out]`, `b [N, out]`, thetaIsVector): from the first
 * layer's pre-activation `h0 [N, S, H]`, ReLU between layers (none after the last); shared, each
 * hidden layer is one fused matMul over all N·S rows. Returns, for each j of `outputs`, output j of
 * the last layer as `[N, S]`, each computed from its own weight column (no array sliced along its
 * short last axis, and unused outputs not computed). Differentiable (tf.fused.matMul falls back to
 * plain ops under a gradient tape).
 */
export function perParamOutputs(h0: tf.Tensor, layers: Linear[], outputs: number[], perTask = false): tf.Tensor[] {
  const [N, S, H] = h0.shape as number[];
  const last = layers.length - 1;
  if (last === 0) return outputs.map((j) => tf.reshape(tf.slice(h0, [0, 0, j], [N, S, 1]), [N, S]));
  if (perTask) {
    let h = tf.relu(h0);
    for (let i = 1; i < last; i++) h = tf.relu(tf.add(tf.matMul(h, layers[i].w), tf.expandDims(layers[i].b, 1)));
    const { w, b } = layers[last];
    const rows = w.shape[1] as number;
    return outputs.map((j) => tf.reshape(tf.add(tf.matMul(h, tf.slice(w, [0, 0, j], [N, rows, 1])), tf.reshape(tf.slice(b, [0, j], [N, 1]), [N, 1, 1])), [N, S]));
  }
  let h = tf.relu(tf.reshape(h0, [N * S, H]));
  for (let i = 1; i < last; i++) h = tf.fused.matMul({ a: h, b: layers[i].w, bias: layers[i].b, activation: 'relu' });
  const { w, b } = layers[last];
  const rows = w.shape[0] as number;
  return outputs.map((j) => tf.reshape(tf.fused.matMul({ a: h, b: tf.slice(w, [0, j], [rows, 1]), bias: tf.slice(b, [j], [1]) }), [N, S]));
}
