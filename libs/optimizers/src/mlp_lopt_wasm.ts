/**
 * The wasm tf.js variants of the `MLPLOptUpdate` kernel (contract in mlp_lopt_kernel.ts), for
 * shared and per-task θ where the native kernel is not built, turned off (LOPT_NATIVE=off) or not
 * compiled for the MLP's shape. The same values as the readable `mlpLoptUpdateOps`
 * (mlp_lopt.ts) up to float rounding, in fewer and cheaper wasm kernels: on wasm each tf.js kernel
 * costs ~5 µs of dispatch, more than most of these kernels' arithmetic, and broadcasts, concats and
 * slices along a short last axis are slow generic loops.
 *
 * - `host`: few parameter values (all tasks together, at most `HOST_MAX_VALUES`; e.g. a 10-d
 *   quadratic), the whole update in JavaScript (float64 arithmetic, float32 results): no tensor
 *   kernel at all. Its cost grows with the values (~2.5 µs each); `blocks` costs ~0.2 ms at least.
 * - `blocks`: every leaf at once, channels-first: `[N, P]` / `[N, P, K]` blocks, the momenta as
 *   two matMuls, the per-leaf normalisation as two matMuls against a leaf indicator, the MLP as
 *   one fused matMul per layer and task (`applyPerTaskMLPChannelsFirst`), or per layer for all
 *   tasks with shared θ (`applySharedMLPChannelsFirst`).
 */
import * as tf from '@tensorflow/tfjs';
import { batchMatMul3, incCounter, secondMomentNormalize, tanhEmbedding, TIME_SCALES } from './common';
import { unpackMLPLOptInputs, type MLPLOptUpdateAttrs, type MLPLOptUpdateImpl, type MLPLOptUpdateInputs } from './mlp_lopt_kernel';
import { applyPerTaskMLPChannelsFirst, applySharedMLPChannelsFirst } from './per_param_mlp';

/**
 * Updates of at most this many parameter values (all tasks) run as `host`: measured crossovers
 * with `blocks` on wasm (per-task θ needs one MLP per task there, shared θ one for all tasks).
 */
export const HOST_MAX_VALUES = { perTask: 256, shared: 64 };

/** Whether the wasm variants take these inputs: any MLP, shared or per-task θ. */
export function wasmVariantHandles(_inputs: MLPLOptUpdateInputs, _attrs: MLPLOptUpdateAttrs): boolean {
  return true;
}

/** The wasm kernel's tf.js side: `host` for few values, else `blocks`. Outputs as the contract. */
export function mlpLoptUpdateWasmOps(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[] {
  let total = 0;
  for (let i = 0; i < attrs.numLeaves; i++) total += inputs[`p${i}`].size;
  return total <= HOST_MAX_VALUES[attrs.perTask ? 'perTask' : 'shared'] ? updateOnHost(inputs, attrs) : updateInBlocks(inputs, attrs);
}

/**
 * `host`: reads p, g, m, θ once each and creates the outputs directly. Momenta
 * `m·β + g·(1 − β)` rounded to float32 as the tensor paths do; the rest in float64. (Its ReLU maps
 * NaN to 0, as wasm's fused XNNPACK ReLU does.)
 */
function updateOnHost(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[] {
  const { ps, gs, ms, layers: thetaLayers, iteration: it, t } = unpackMLPLOptInputs(inputs, attrs);
  const N = it.shape[0];
  const K = attrs.decays.length;
  const F = 2 + K;
  const T = TIME_SCALES.length;
  const lead = attrs.perTask ? 1 : 0;
  const layers = thetaLayers.map((l) => ({ w: l.w.dataSync() as Float32Array, b: l.b.dataSync() as Float32Array, rows: l.w.shape[lead] as number, cols: l.w.shape[lead + 1] as number }));
  const iteration = it.dataSync() as Int32Array;
  const f32 = Math.fround;
  const beta = attrs.decays.map(f32);
  const mix = beta.map((d) => f32(1 - d));
  const pIn = ps.map((p) => p.dataSync() as Float32Array);
  const gIn = gs.map((g) => g.dataSync() as Float32Array);
  const mIn = ms.map((m) => m.dataSync() as Float32Array);
  const pOut = ps.map((p) => new Float32Array(p.size));
  const mOut = ms.map((m) => new Float32Array(m.size));
  // one task's θ in float64, row-major [in][out]
  const W = layers.map((l) => new Float64Array(l.rows * l.cols));
  const B = layers.map((l) => new Float64Array(l.cols));
  const maxH = Math.max(...layers.map((l) => l.cols));
  let h = new Float64Array(maxH);
  let h2 = new Float64Array(maxH);
  const feat = new Float64Array(F);
  const H0 = layers[0].cols;
  const row0 = new Float64Array(H0);
  for (let n = 0; n < N; n++) {
    if (n === 0 || attrs.perTask) {
      layers.forEach((l, li) => {
        W[li].set(l.w.subarray(n * l.rows * l.cols, (n + 1) * l.rows * l.cols));
        B[li].set(l.b.subarray(n * l.cols, (n + 1) * l.cols));
      });
    }
    // the first layer's time term, the same for every value of the task: b0 + time @ W0[F:]
    row0.set(B[0]);
    for (let q = 0; q < T; q++) {
      const tq = Math.tanh(f32(iteration[n] / TIME_SCALES[q]) - 1);
      for (let j = 0; j < H0; j++) row0[j] += tq * W[0][(F + q) * H0 + j];
    }
    for (let i = 0; i < ps.length; i++) {
      const S = pIn[i].length / N;
      const p = pIn[i].subarray(n * S, (n + 1) * S);
      const g = gIn[i].subarray(n * S, (n + 1) * S);
      const m = mIn[i].subarray(n * S * K, (n + 1) * S * K);
      const mo = mOut[i].subarray(n * S * K, (n + 1) * S * K);
      for (let e = 0; e < S * K; e++) {
        const k = e % K;
        mo[e] = f32(m[e] * beta[k] + g[(e - k) / K] * mix[k]);
      }
      // per-feature second moments over this leaf of this task
      const scale = new Float64Array(F);
      for (let e = 0; e < S; e++) {
        scale[0] += g[e] * g[e];
        scale[1] += p[e] * p[e];
        for (let k = 0; k < K; k++) scale[2 + k] += mo[e * K + k] * mo[e * K + k];
      }
      for (let c = 0; c < F; c++) scale[c] = 1 / Math.sqrt(1e-5 + scale[c] / S);
      const po = pOut[i].subarray(n * S, (n + 1) * S);
      for (let e = 0; e < S; e++) {
        feat[0] = g[e] * scale[0];
        feat[1] = p[e] * scale[1];
        for (let k = 0; k < K; k++) feat[2 + k] = mo[e * K + k] * scale[2 + k];
        // the MLP, a row of the input times W at a time (zero inputs, half of them after a ReLU, skipped)
        h.set(row0);
        for (let c = 0; c < F; c++) {
          const x = feat[c];
          if (x !== 0) for (let j = 0, o = c * H0; j < H0; j++) h[j] += x * W[0][o + j];
        }
        for (let j = 0; j < H0; j++) if (!(h[j] > 0)) h[j] = 0;
        let width = H0;
        for (let li = 1; li < layers.length; li++) {
          const cols = layers[li].cols;
          const w = W[li];
          h2.set(B[li]);
          for (let c = 0; c < width; c++) {
            const x = h[c];
            if (x !== 0) for (let j = 0, o = c * cols; j < cols; j++) h2[j] += x * w[o + j];
          }
          if (li !== layers.length - 1) for (let j = 0; j < cols; j++) if (!(h2[j] > 0)) h2[j] = 0;
          [h, h2] = [h2, h];
          width = cols;
        }
        po[e] = f32(p[e] - h[0] * Math.exp(h[1] * attrs.expMult) * attrs.stepMult);
      }
    }
  }
  return [
    ...ps.map((p, i) => tf.tensor(pOut[i], p.shape, 'float32')),
    ...ms.map((m, i) => tf.tensor(mOut[i], m.shape, 'float32')),
    tf.tensor(iteration.map((v) => v + 1), it.shape, 'int32'),
    tf.tensor((t.dataSync() as Int32Array).map((v) => v + 1), t.shape, 'int32'),
  ];
}

const segmentCache = new Map<string, { mean: Float32Array; spread: Float32Array }>();

/** For leaves of `sizes` laid side by side (P columns): `mean [1, P, L]` (1/size of the column's
 * leaf, else 0) and `spread [1, L, P]` (1 where the column belongs to the leaf). New tensors. */
function segmentMatrices(sizes: number[]): { mean: tf.Tensor; spread: tf.Tensor } {
  const key = sizes.join(',');
  let c = segmentCache.get(key);
  if (!c) {
    const L = sizes.length;
    const P = sizes.reduce((a, b) => a + b, 0);
    const mean = new Float32Array(P * L);
    const spread = new Float32Array(L * P);
    let col = 0;
    sizes.forEach((S, l) => {
      for (let j = 0; j < S; j++, col++) {
        mean[col * L + l] = 1 / S;
        spread[l * P + col] = 1;
      }
    });
    c = { mean, spread };
    if (segmentCache.size > 64) segmentCache.clear();
    segmentCache.set(key, c);
  }
  const L = sizes.length;
  const P = c.mean.length / L;
  return { mean: tf.tensor3d(c.mean, [1, P, L]), spread: tf.tensor3d(c.spread, [1, L, P]) };
}

/**
 * `blocks`: the leaves concatenated into `[N, P]` / `[N, P, K]` blocks, the momenta one pair of
 * matMuls (`m·diag(β) + g ⊗ (1 − β)`), the features one `[N, 8, P]` block, the per-leaf
 * second-moment normalisation two matMuls against a `[P, leaves]` indicator (segment means, then
 * back to every column), the MLP `applyPerTaskMLPChannelsFirst`: ~45 kernels for a 4-leaf task.
 */
function updateInBlocks(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[] {
  return tf.tidy(() => {
    const { ps, gs, ms, layers, iteration, t } = unpackMLPLOptInputs(inputs, attrs);
    const N = iteration.shape[0];
    const K = attrs.decays.length;
    const F = 2 + K;
    const sizes = ps.map((p) => p.size / N);
    const P = sizes.reduce((a, b) => a + b, 0);
    const L = sizes.length;
    const cat = (ts: tf.Tensor[], axis: number) => (ts.length === 1 ? ts[0] : tf.concat(ts, axis));
    const g2 = cat(gs.map((g, i) => tf.reshape(g, [N, sizes[i]])), 1); // [N, P]
    const p2 = cat(ps.map((p, i) => tf.reshape(p, [N, sizes[i]])), 1); // [N, P]
    const m3 = cat(ms.map((m, i) => tf.reshape(m, [N, sizes[i], K])), 1); // [N, P, K]

    const decays = tf.tensor1d(attrs.decays);
    const scaled = batchMatMul3(tf.reshape(m3, [1, N * P, K]), tf.reshape(tf.diag(decays), [1, K, K]));
    const fresh = batchMatMul3(tf.reshape(g2, [1, N * P, 1]), tf.reshape(tf.sub(1, decays), [1, 1, K]));
    const mNew = tf.reshape(tf.add(scaled, fresh), [N, P, K]);
    const mParts = L === 1 ? [mNew] : tf.split(mNew, sizes, 1);
    const time = tanhEmbedding(iteration); // [N, 11]

    const x = tf.concat([tf.reshape(g2, [N, 1, P]), tf.reshape(p2, [N, 1, P]), tf.transpose(mNew, [0, 2, 1])], 1); // [N, F, P]
    let xT: tf.Tensor;
    if (L === 1) xT = secondMomentNormalize(x, [2]);
    else {
      const { mean, spread } = segmentMatrices(sizes);
      const meanSq = batchMatMul3(tf.reshape(tf.square(x), [1, N * F, P]), mean); // [1, N·F, L]
      const r = batchMatMul3(tf.rsqrt(tf.add(1e-5, meanSq)), spread); // [1, N·F, P]
      xT = tf.mul(x, tf.reshape(r, [N, F, P]));
    }
    const out = attrs.perTask ? applyPerTaskMLPChannelsFirst(xT, time, layers) : applySharedMLPChannelsFirst(xT, time, layers); // [2, N, P]
    const [direction, magnitude] = tf.unstack(out); // [N, P] each
    const stepAll = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, attrs.expMult))), attrs.stepMult);
    const newAll = tf.sub(p2, stepAll);
    const newParts = L === 1 ? [newAll] : tf.split(newAll, sizes, 1);
    return [...newParts.map((p, i) => tf.reshape(p, ps[i].shape)), ...mParts.map((m, i) => tf.reshape(m, ms[i].shape)), incCounter(iteration), incCounter(t)];
  });
}

/** The two variants, run directly (any backend), for the comparison test. */
export const MLPLOPT_WASM_VARIANTS: MLPLOptUpdateImpl[] = [
  { name: 'wasm tf.js: host', handles: wasmVariantHandles, run: updateOnHost },
  { name: 'wasm tf.js: blocks', handles: wasmVariantHandles, run: updateInBlocks },
];
