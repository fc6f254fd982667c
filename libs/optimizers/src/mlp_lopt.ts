/**
 * MLPLOpt ("LOLv2", reference `learned_optimizers/mlp_lopt.py`, `MLPLOpt` and the optimizer its `opt_fn` returns): a per-parameter MLP
 * 19 -> 32 -> 32 -> 2 on [g, p, six momenta] (second-moment normalised per leaf and channel) plus
 * eleven tanh time features; `p ← p − direction · exp(magnitude · expMult) · stepMult`.
 *
 * θ (Haiku names): `{'mlp/~/linear_0': {w: [19,32], b: [32]}, 'mlp/~/linear_1': {w: [32,32], b: [32]},
 * 'mlp/~/linear_2': {w: [32,2], b: [2]}}` — 1,762 values; with thetaIsVector every leaf has a
 * leading task axis [N].
 *
 * Optimizer state (MLPLOptState):
 * ```
 * { params, rollingFeatures: { m: <params tree, leaf.shape + [6]>, t: int32 [6] },
 *   iteration: int32 [], state: modelState | null }
 * batched: m [N, ...leaf, 6], t [N, 6], iteration [N]
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, nativeUsable, noGradientRecorded, registerPlugin, treeFlatten, treeMap, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta, UpdateOptions } from './base';
import { BatchCtx, MomAccumulator, TIME_SCALES, batchMatMul3, secondMomentNormalize, tanhEmbedding, tidy, treeClone, vecRollingMom, zerosCounter, numTasks, incCounter } from './common';
import { applyPerParamMLP, applyPerTaskMLPChannelsFirst, Linear } from './per_param_mlp';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import { LOPT_MLP_STEP_KERNEL, mlpLoptNative } from './native';

export const MLPLOPT_DECAYS = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999];

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

export interface MLPLOptState extends OptState {
  params: Params;
  rollingFeatures: MomAccumulator;
  iteration: tf.Tensor;
  state: PyTree | null;
}

export interface MLPLOptOptions {
  expMult?: number;
  stepMult?: number;
  hiddenSize?: number;
  hiddenLayers?: number;
}

/** Expand (axis 0) every tensor leaf: one task as a stack of one. */
export function treeExpand(tree: PyTree): any {
  return treeMap((x: tf.Tensor) => tf.expandDims(x, 0), tree);
}
export function treeSqueeze(tree: PyTree): any {
  return treeMap((x: tf.Tensor) => tf.squeeze(x, [0]), tree);
}

export class MLPLOpt implements LearnedOptimizer {
  readonly expMult: number;
  readonly stepMult: number;
  readonly hiddenSize: number;
  readonly hiddenLayers: number;
  /** The reference's `name` is None for the base lopts. */
  readonly name: string | null = null;

  constructor(opts: MLPLOptOptions = {}) {
    this.expMult = opts.expMult ?? 0.001;
    this.stepMult = opts.stepMult ?? 0.001;
    this.hiddenSize = opts.hiddenSize ?? 32;
    this.hiddenLayers = opts.hiddenLayers ?? 2;
  }

  layerSizes(): number[] {
    return [19, ...new Array(this.hiddenLayers).fill(this.hiddenSize), 2];
  }

  /** `hk.nets.MLP([hidden] * layers + [2])` initialised on 19 input features, haiku-exact. */
  init(key: PRNGKey): Theta {
    const sizes = this.layerSizes();
    return haikuInit(key, (hk) => hk.mlp(sizes[0], sizes.slice(1)));
  }

  optFn(theta: Theta, isTraining = false, thetaIsVector = false): Optimizer {
    return new MLPLOptOptimizer(this, theta as Record<string, Linear>, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (for `model.compile` / `minimize`); see tfjs_adapter.ts. */
  asTfjsOptimizer(theta: Theta): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta);
  }
}

/** The optimizer that has captured θ. */
export class MLPLOptOptimizer implements Optimizer {
  /**
   * Layout of the per-task (thetaIsVector) update: 'channels-first' (default, fused kernels; see
   * `stepChannelsFirst`) or 'rows' (the original formulation, kept for comparisons and tests).
   * Both give the same values up to float rounding.
   */
  static perTaskLayout: 'channels-first' | 'rows' = 'channels-first';
  /**
   * On wasm, per-task updates of at most this many parameter values (all tasks) run on the host
   * (`stepOnHost`): for a 10-d quadratic the ~55 tiny kernels of the tensor path cost ~0.5 ms of
   * dispatch for microseconds of arithmetic. 0 turns the host path off.
   */
  static hostMaxValues = 256;
  /**
   * Use the native kernel (`./native.ts`) where it is built, the backend is wasm or cpu, the MLP
   * has the default shape and no gradient is being recorded. Tests turn it off to compare paths.
   */
  static useNative = true;
  readonly name = 'UnnamedOptimizer';
  constructor(
    readonly lopt: MLPLOpt,
    readonly theta: Record<string, Linear>,
    readonly thetaIsVector: boolean,
  ) {
    const n = lopt.hiddenLayers + 1;
    for (let i = 0; i < n; i++) {
      if (!theta[`mlp/~/linear_${i}`]) throw new Error(`MLPLOpt theta: missing 'mlp/~/linear_${i}' (expected linear_0..linear_${n - 1})`);
    }
  }

  private layers(): Linear[] {
    return Array.from({ length: this.lopt.hiddenLayers + 1 }, (_, i) => this.theta[`mlp/~/linear_${i}`]);
  }

  private initImpl(params: Params, opts: InitOptions, batched: boolean): MLPLOptState {
    return tidy(() => {
      const ctx: BatchCtx = { batched };
      return {
        params: treeClone(params),
        rollingFeatures: vecRollingMom.init(params, MLPLOPT_DECAYS.length, ctx),
        iteration: zerosCounter(ctx, batched ? numTasks(params) : 0),
        state: treeClone(opts.modelState ?? null),
      };
    });
  }

  init(params: Params, opts: InitOptions = {}): MLPLOptState {
    return this.initImpl(params, opts, false);
  }
  initBatch(params: Params, opts: InitOptions = {}): MLPLOptState {
    return this.initImpl(params, opts, true);
  }

  /** One task: the N = 1 case of the batched update (same per-leaf normalisation). */
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): MLPLOptState {
    if (this.thetaIsVector) throw new Error('MLPLOpt: thetaIsVector optimizers work on stacked tasks only; use updateBatch');
    return tidy(() => {
      const s = state as MLPLOptState;
      const batched: MLPLOptState = {
        params: treeExpand(s.params),
        rollingFeatures: { m: treeExpand(s.rollingFeatures.m), t: tf.expandDims(s.rollingFeatures.t, 0) },
        iteration: tf.reshape(s.iteration, [1]),
        state: null,
      };
      const out = this.step(batched, treeExpand(grad));
      return {
        params: treeSqueeze(out.params),
        rollingFeatures: { m: treeSqueeze(out.rollingFeatures.m), t: tf.squeeze(out.rollingFeatures.t, [0]) },
        iteration: tf.reshape(out.iteration, []),
        state: treeClone(opts.modelState ?? null),
      };
    });
  }

  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): MLPLOptState {
    return tidy(() => ({ ...this.step(state as MLPLOptState, grad), state: treeClone(opts.modelState ?? null) }));
  }

  /** The batched update (every leaf has the task axis N first). Call inside a tidy. */
  private step(s: MLPLOptState, grad: Params): MLPLOptState {
    const ctx: BatchCtx = { batched: true };
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    if (ps.length > 0 && this.nativeApplies()) return this.stepNative(s, grad, ps, def);
    if (this.thetaIsVector && MLPLOptOptimizer.perTaskLayout === 'channels-first' && tf.getBackend() === 'wasm' && ps.length > 0) {
      const total = ps.reduce((n, p) => n + p.size, 0);
      if (total <= MLPLOptOptimizer.hostMaxValues && noGradientRecorded()) return this.stepOnHost(s, grad);
      return this.stepAllLeavesWasm(s, grad);
    }
    const rolling = vecRollingMom.update(s.rollingFeatures, grad, tf.tensor1d(MLPLOPT_DECAYS), ctx);
    const time = tanhEmbedding(s.iteration); // pre-increment iteration, [N, 11]
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const ms = treeFlatten<tf.Tensor>(rolling.m)[0];
    if (ps.length === 0) return { params: treeClone(s.params), rollingFeatures: rolling, iteration: incCounter(s.iteration), state: null };
    const N = ps[0].shape[0];
    const sizes = ps.map((p) => p.size / N);
    if (this.thetaIsVector && MLPLOptOptimizer.perTaskLayout === 'channels-first') return this.stepChannelsFirst(s, ps, gs, ms, sizes, def, rolling, time);
    const feats = ps.map((p, i) => {
      const S = sizes[i];
      const x = tf.concat([tf.reshape(gs[i], [N, S, 1]), tf.reshape(p, [N, S, 1]), tf.reshape(ms[i], [N, S, MLPLOPT_DECAYS.length])], 2);
      return secondMomentNormalize(x, [1]); // per task, per leaf, per channel
    });
    const x = feats.length === 1 ? feats[0] : tf.concat(feats, 1); // [N, P, 8]
    const out = applyPerParamMLP(x, time, this.layers(), this.thetaIsVector); // [N, P, 2]
    const P = (x.shape as number[])[1];
    const direction = tf.reshape(tf.slice(out, [0, 0, 0], [N, P, 1]), [N, P]);
    const magnitude = tf.reshape(tf.slice(out, [0, 0, 1], [N, P, 1]), [N, P]);
    const stepAll = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, this.lopt.expMult))), this.lopt.stepMult);
    const steps = sizes.length === 1 ? [stepAll] : tf.split(stepAll, sizes, 1);
    const newPs = ps.map((p, i) => tf.sub(p, tf.reshape(steps[i], p.shape)));
    return {
      params: treeUnflatten(def, newPs),
      rollingFeatures: rolling,
      iteration: incCounter(s.iteration),
      state: null,
    };
  }

  private nativeApplies(): boolean {
    return MLPLOptOptimizer.useNative && this.lopt.hiddenSize === 32 && this.lopt.hiddenLayers === 2 && nativeUsable() && mlpLoptNative() !== null;
  }

  /**
   * The whole batched update as one native kernel (momenta, normalisation, MLP and step for every
   * leaf of every task); the counters are still tf.js ops. Same values as the tf.js path up to
   * float rounding; not differentiable (used only when no gradient is recorded).
   */
  private stepNative(s: MLPLOptState, grad: Params, ps: tf.Tensor[], def: ReturnType<typeof treeFlatten>[1]): MLPLOptState {
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const [ms, mDef] = treeFlatten<tf.Tensor>(s.rollingFeatures.m);
    const N = ps[0].shape[0];
    const inputs: Record<string, tf.Tensor> = {};
    ps.forEach((p, i) => {
      if (gs[i].size !== p.size || ms[i].size !== p.size * MLPLOPT_DECAYS.length) {
        throw new Error(`MLPLOpt: leaf ${i} has params of shape [${p.shape}], grads [${gs[i].shape}], momenta [${ms[i].shape}]; expected equal shapes and momenta with a trailing 6`);
      }
      inputs[`p${i}`] = p;
      inputs[`g${i}`] = gs[i];
      inputs[`m${i}`] = ms[i];
    });
    const sizes = this.lopt.layerSizes();
    this.layers().forEach((l, i) => {
      const lead = this.thetaIsVector ? [N] : [];
      const want = [[...lead, sizes[i], sizes[i + 1]], [...lead, sizes[i + 1]]];
      if (l.w.shape.join() !== want[0].join() || l.b.shape.join() !== want[1].join()) {
        throw new Error(
          `MLPLOpt theta 'mlp/~/linear_${i}': w [${l.w.shape}], b [${l.b.shape}]; expected w [${want[0]}], b [${want[1]}]` +
            (this.thetaIsVector ? ` (thetaIsVector: one θ per task, N = ${N})` : ''),
        );
      }
      inputs[`w${i}`] = l.w;
      inputs[`b${i}`] = l.b;
    });
    inputs.iteration = s.iteration.dtype === 'int32' ? s.iteration : tf.cast(s.iteration, 'int32');
    const attrs = {
      numLeaves: ps.length,
      numTasks: N,
      perTask: this.thetaIsVector,
      expMult: this.lopt.expMult,
      stepMult: this.lopt.stepMult,
      decays: MLPLOPT_DECAYS,
      timeScales: TIME_SCALES,
    };
    const out = tf.engine().runKernel(LOPT_MLP_STEP_KERNEL, inputs as any, attrs as any) as unknown as tf.Tensor[];
    const L = ps.length;
    return {
      params: treeUnflatten(def, out.slice(0, L)),
      rollingFeatures: { m: treeUnflatten(mDef, out.slice(L)), t: incCounter(s.rollingFeatures.t) },
      iteration: incCounter(s.iteration),
      state: null,
    };
  }

  /**
   * The per-task (thetaIsVector) update with features laid out channels-first, `[N, 8, P]`: the
   * same values as the row layout up to float rounding, with no concat or slice along a short
   * last axis (slow per-row copies on wasm). See `applyPerTaskMLPChannelsFirst`.
   */
  private stepChannelsFirst(
    s: MLPLOptState,
    ps: tf.Tensor[],
    gs: tf.Tensor[],
    ms: tf.Tensor[],
    sizes: number[],
    def: ReturnType<typeof treeFlatten>[1],
    rolling: MomAccumulator,
    time: tf.Tensor,
  ): MLPLOptState {
    const N = ps[0].shape[0];
    const K = MLPLOPT_DECAYS.length;
    const feats = ps.map((p, i) => {
      const S = sizes[i];
      const mT = tf.transpose(tf.reshape(ms[i], [N, S, K]), [0, 2, 1]); // [N, 6, S]
      const x = tf.concat([tf.reshape(gs[i], [N, 1, S]), tf.reshape(p, [N, 1, S]), mT], 1); // [N, 8, S]
      return secondMomentNormalize(x, [2]); // per task, per leaf, per channel
    });
    const xT = feats.length === 1 ? feats[0] : tf.concat(feats, 2); // [N, 8, P]
    const out = applyPerTaskMLPChannelsFirst(xT, time, this.layers()); // [2, N, P]
    const P = (xT.shape as number[])[2];
    const [direction, magnitude] = tf.unstack(out); // [N, P] each
    const stepAll = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, this.lopt.expMult))), this.lopt.stepMult);
    const pAll = ps.length === 1 ? tf.reshape(ps[0], [N, P]) : tf.concat(ps.map((p, i) => tf.reshape(p, [N, sizes[i]])), 1);
    const newAll = tf.sub(pAll, stepAll);
    const newParts = sizes.length === 1 ? [newAll] : tf.split(newAll, sizes, 1);
    const newPs = ps.map((p, i) => tf.reshape(newParts[i], p.shape));
    return {
      params: treeUnflatten(def, newPs),
      rollingFeatures: rolling,
      iteration: incCounter(s.iteration),
      state: null,
    };
  }

  /**
   * The per-task update for few parameters, on the host: the same arithmetic as
   * `stepAllLeavesWasm` in float64 with float32 results (values equal up to float rounding);
   * reads p, g, m, θ once each and creates the new state's tensors directly.
   */
  private stepOnHost(s: MLPLOptState, grad: Params): MLPLOptState {
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const [ms, mDef] = treeFlatten<tf.Tensor>(s.rollingFeatures.m);
    const N = ps[0].shape[0];
    const K = MLPLOPT_DECAYS.length;
    const F = 2 + K;
    const T = TIME_SCALES.length;
    const layers = this.layers().map((l) => ({ w: l.w.dataSync() as Float32Array, b: l.b.dataSync() as Float32Array, rows: l.w.shape[1] as number, cols: l.w.shape[2] as number }));
    const iteration = s.iteration.dataSync();
    const tOld = s.rollingFeatures.t.dataSync();
    const beta = MLPLOPT_DECAYS.map((d) => Math.fround(d));
    const mix = beta.map((d) => Math.fround(1 - d));
    const f32 = Math.fround;
    const newPs: tf.Tensor[] = [];
    const newMs: tf.Tensor[] = [];
    const pOut = ps.map((p) => new Float32Array(p.size));
    const mOut = ms.map((m) => new Float32Array(m.size));
    const pIn = ps.map((p) => p.dataSync() as Float32Array);
    const gIn = gs.map((g) => g.dataSync() as Float32Array);
    const mIn = ms.map((m) => m.dataSync() as Float32Array);
    const maxH = Math.max(...layers.map((l) => l.cols));
    let h = new Float64Array(maxH);
    let h2 = new Float64Array(maxH);
    const feat = new Float64Array(F);
    for (let n = 0; n < N; n++) {
      const it = iteration[n];
      // first layer's time term: b0 + time @ W0[F:]
      const l0 = layers[0];
      const H0 = l0.cols;
      const row0 = new Float64Array(H0);
      for (let j = 0; j < H0; j++) {
        let acc = l0.b[n * H0 + j];
        for (let q = 0; q < T; q++) acc += Math.tanh(f32(it / TIME_SCALES[q]) - 1) * l0.w[(n * l0.rows + F + q) * H0 + j];
        row0[j] = acc;
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
        // per-channel second moments over this leaf of this task
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
          for (let j = 0; j < H0; j++) {
            let acc = row0[j];
            for (let c = 0; c < F; c++) acc += feat[c] * l0.w[(n * l0.rows + c) * H0 + j];
            h[j] = acc > 0 ? acc : 0;
          }
          let width = H0;
          for (let li = 1; li < layers.length; li++) {
            const l = layers[li];
            const last = li === layers.length - 1;
            for (let j = 0; j < l.cols; j++) {
              let acc = l.b[n * l.cols + j];
              for (let c = 0; c < width; c++) acc += h[c] * l.w[(n * l.rows + c) * l.cols + j];
              h2[j] = last || acc > 0 ? acc : 0;
            }
            [h, h2] = [h2, h];
            width = l.cols;
          }
          const step = h[0] * Math.exp(h[1] * this.lopt.expMult) * this.lopt.stepMult;
          po[e] = f32(p[e] - step);
        }
      }
    }
    ps.forEach((p, i) => newPs.push(tf.tensor(pOut[i], p.shape, 'float32')));
    ms.forEach((m, i) => newMs.push(tf.tensor(mOut[i], m.shape, 'float32')));
    return {
      params: treeUnflatten(def, newPs),
      rollingFeatures: { m: treeUnflatten(mDef, newMs), t: tf.tensor(Int32Array.from(tOld, (v) => v + 1), s.rollingFeatures.t.shape, s.rollingFeatures.t.dtype) },
      iteration: tf.tensor(Int32Array.from(iteration, (v) => v + 1), s.iteration.shape, s.iteration.dtype),
      state: null,
    };
  }

  /**
   * The channels-first per-task update with every leaf handled at once (wasm): the leaves are
   * concatenated into `[N, P]` / `[N, P, 6]` blocks first, the momenta are one pair of matMuls
   * (`m·diag(β) + g ⊗ (1 − β)`, as `vecRollingMom` on wasm), the features one `[N, 8, P]` block,
   * and the per-leaf second-moment normalisation two matMuls against a `[P, leaves]` indicator
   * (segment means, then back to every column). Same values as `stepChannelsFirst` up to float
   * rounding, with ~45 instead of ~75 tf.js kernels for a 4-leaf MLP task (each costs ~5 µs of
   * dispatch on wasm, more than most of these kernels' arithmetic).
   */
  private stepAllLeavesWasm(s: MLPLOptState, grad: Params): MLPLOptState {
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const [ms, mDef] = treeFlatten<tf.Tensor>(s.rollingFeatures.m);
    const N = ps[0].shape[0];
    const K = MLPLOPT_DECAYS.length;
    const sizes = ps.map((p) => p.size / N);
    const P = sizes.reduce((a, b) => a + b, 0);
    const L = sizes.length;
    const cat = (ts: tf.Tensor[], axis: number) => (ts.length === 1 ? ts[0] : tf.concat(ts, axis));
    const g2 = cat(gs.map((g, i) => tf.reshape(g, [N, sizes[i]])), 1); // [N, P]
    const p2 = cat(ps.map((p, i) => tf.reshape(p, [N, sizes[i]])), 1); // [N, P]
    const m3 = cat(ms.map((m, i) => tf.reshape(m, [N, sizes[i], K])), 1); // [N, P, K]

    const decays = tf.tensor1d(MLPLOPT_DECAYS);
    const scaled = batchMatMul3(tf.reshape(m3, [1, N * P, K]), tf.reshape(tf.diag(decays), [1, K, K]));
    const fresh = batchMatMul3(tf.reshape(g2, [1, N * P, 1]), tf.reshape(tf.sub(1, decays), [1, 1, K]));
    const mNew = tf.reshape(tf.add(scaled, fresh), [N, P, K]);
    const mParts = L === 1 ? [mNew] : tf.split(mNew, sizes, 1);
    const rolling: MomAccumulator = {
      m: treeUnflatten(mDef, mParts.map((m, i) => tf.reshape(m, ms[i].shape))),
      t: incCounter(s.rollingFeatures.t),
    };
    const time = tanhEmbedding(s.iteration); // pre-increment iteration, [N, 11]

    const x = tf.concat([tf.reshape(g2, [N, 1, P]), tf.reshape(p2, [N, 1, P]), tf.transpose(mNew, [0, 2, 1])], 1); // [N, 8, P]
    let xT: tf.Tensor;
    if (L === 1) xT = secondMomentNormalize(x, [2]);
    else {
      const { mean, spread } = segmentMatrices(sizes);
      const meanSq = batchMatMul3(tf.reshape(tf.square(x), [1, N * 8, P]), mean); // [1, N·8, L]
      const r = batchMatMul3(tf.rsqrt(tf.add(1e-5, meanSq)), spread); // [1, N·8, P]
      xT = tf.mul(x, tf.reshape(r, [N, 8, P]));
    }
    const out = applyPerTaskMLPChannelsFirst(xT, time, this.layers()); // [2, N, P]
    const [direction, magnitude] = tf.unstack(out); // [N, P] each
    const stepAll = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, this.lopt.expMult))), this.lopt.stepMult);
    const newAll = tf.sub(p2, stepAll);
    const newParts = L === 1 ? [newAll] : tf.split(newAll, sizes, 1);
    return {
      params: treeUnflatten(def, newParts.map((p, i) => tf.reshape(p, ps[i].shape))),
      rollingFeatures: rolling,
      iteration: incCounter(s.iteration),
      state: null,
    };
  }

  getParams(state: OptState): Params {
    return state.params;
  }
  getState(state: OptState): PyTree | null {
    return state.state ?? null;
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'MLPLOpt',
  description: 'Per-parameter MLP learned optimizer (LOLv2): 19 features, 32x2 hidden, 1,762 meta-parameters',
  schema: z
    .object({
      expMult: z.number().default(0.001),
      stepMult: z.number().default(0.001),
      hiddenSize: z.number().int().positive().default(32),
      hiddenLayers: z.number().int().min(0).default(2),
    })
    .strict(),
  create: (c: MLPLOptOptions) => new MLPLOpt(c),
  cls: MLPLOpt,
});
