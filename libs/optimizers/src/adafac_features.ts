/**
 * What AdafacMLPLOpt (reference `learned_optimizers/adafac_mlp_lopt.py`) and AdafacNominal
 * (`learned_optimizers/adafac_nominal.py`, `MLPNomLOpt`, which reuses them) share: the learnable
 * accumulator decays in θ, the state (`AdafacMLPLOptState`) and its init, and the first half of
 * the update — the momentum, RMS and Adafactor accumulators and the per-parameter features
 * the MLP reads (see adafac_mlp_lopt.ts for their order).
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, initializers, treeFlatten, type PRNGKey, type PyTree, type TreeDef } from '@lopt/core';
import type { InitOptions, Params } from './base';
import type { AdafacMLPLOptState } from './adafac_mlp_lopt';
import {
  BatchCtx,
  factoredDims,
  type FactoredAccum,
  type MomAccumulator,
  type RMSAccumulator,
  facGrad,
  factoredFactors,
  incCounter,
  numTasks,
  secondMomentNormalize,
  tanhEmbedding,
  tidy,
  treeClone,
  vecFactoredRolling,
  vecRollingMom,
  vecRollingRms,
  zerosCounter,
} from './common';
import { perParamFirstLayer, perParamOutputs, type Linear, type PerParamInput } from './per_param_mlp';
import { perParamMLPNative, perParamNativeUsable, type NativeFeature, type PerParamNativeLeaf } from './per_param_native';

/** The initial decays of the momentum, RMS and Adafactor accumulators. */
export interface AdafacDecays {
  initialMomentumDecays: number[];
  initialRmsDecays: number[];
  initialAdafactorDecays: number[];
}

/** θ: the decay offsets and the MLP (haiku's, outside any module). */
export interface AdafacTheta {
  momentum_decays: tf.Tensor;
  rms_decays: tf.Tensor;
  adafactor_decays: tf.Tensor;
  nn: { '~': Record<string, tf.Tensor> };
}

const bc = (a: number, b: number) => (a === 1 ? b : a);

/** Number of normalised per-parameter features (28 by default). */
export function adafacNumFeatures(c: AdafacDecays): number {
  const [km, kr, kf] = [c.initialMomentumDecays.length, c.initialRmsDecays.length, c.initialAdafactorDecays.length];
  return 2 + km + kr + bc(km, kr) + kr + 5 * kf + bc(km, kf);
}

/**
 * θ made from `key`: the decay offsets (zeros, in `log(1−β)/10` space) and the MLP of `sizes`
 * haiku makes, outside any module (`'~'`): per layer `w<i>` TruncatedNormal(1/√fan_in) then zero
 * `b<i>`; with `separateWeights` (AdafacNominal) one scalar parameter per weight instead,
 * `w<i>_<in>_<out>` (each its own draw, in that order) then `b<i>_<out>`.
 */
export function adafacInitTheta(key: PRNGKey, c: AdafacDecays, sizes: number[], separateWeights = false): AdafacTheta {
  const nn = haikuInit(key, (hk) => {
    for (let i = 0; i + 1 < sizes.length; i++) {
      const wInit = initializers.truncatedNormal({ stddev: 1 / Math.sqrt(sizes[i]) });
      if (!separateWeights) {
        hk.getParameter('~', `w${i}`, [sizes[i], sizes[i + 1]], wInit);
        hk.getParameter('~', `b${i}`, [sizes[i + 1]], initializers.zeros());
      } else {
        for (let v = 0; v < sizes[i]; v++) for (let o = 0; o < sizes[i + 1]; o++) hk.getParameter('~', `w${i}_${v}_${o}`, [], wInit);
        for (let o = 0; o < sizes[i + 1]; o++) hk.getParameter('~', `b${i}_${o}`, [], initializers.zeros());
      }
    }
  })['~'];
  return {
    momentum_decays: tf.zeros([c.initialMomentumDecays.length]),
    rms_decays: tf.zeros([c.initialRmsDecays.length]),
    adafactor_decays: tf.zeros([c.initialAdafactorDecays.length]),
    nn: { '~': nn },
  };
}

/** Throws unless θ has every key. */
export function checkAdafacTheta(theta: AdafacTheta, label: string): void {
  for (const k of ['momentum_decays', 'rms_decays', 'adafactor_decays', 'nn'] as const) {
    if (!theta || !(k in theta)) throw new Error(`${label} theta: missing '${k}' (expected momentum_decays, rms_decays, adafactor_decays, nn)`);
  }
}

/** `1 − exp(10·(log(1−β0)/10 + θ))` (param_to_decay(decay_to_param(β0) + θ)). */
function decays(initial: number[], offset: tf.Tensor): tf.Tensor {
  const base = tf.div(tf.log(tf.sub(1, tf.tensor1d(initial))), 10);
  return tf.sub(1, tf.exp(tf.mul(tf.add(base, offset), 10)));
}

/** The state for `params` (one task, or N stacked tasks when `batched`); `opts.numSteps` is required. */
export function adafacInitState(c: AdafacDecays, params: Params, opts: InitOptions, batched: boolean, label: string): AdafacMLPLOptState {
  if (opts.numSteps === null || opts.numSteps === undefined) throw new Error(`${label}: numSteps must be given to init (the reference requires it)`);
  return tidy(() => {
    const ctx: BatchCtx = { batched };
    const n = batched ? numTasks(params) : 0;
    const ns = opts.numSteps as number | tf.Tensor;
    const numSteps = tf.add(zerosCounter(ctx, n), typeof ns === 'number' ? tf.scalar(Math.round(ns), 'int32') : tf.cast(ns, 'int32'));
    return {
      params: treeClone(params),
      state: treeClone(opts.modelState ?? null),
      momRolling: vecRollingMom.init(params, c.initialMomentumDecays.length, ctx),
      rmsRolling: vecRollingRms.init(params, c.initialRmsDecays.length, ctx),
      facRollingFeatures: vecFactoredRolling.init(params, c.initialAdafactorDecays.length, ctx),
      numSteps,
      iteration: zerosCounter(ctx, n),
    };
  });
}

/** One params leaf of every task, flattened to `[N, S, channels]` (S = the leaf's size). */
export interface AdafacLeaf {
  /** the leaf `[N, ...shape]` */
  p: tf.Tensor;
  S: number;
  /** the gradient `[N, S]` */
  g: tf.Tensor;
  /** the new momenta `[N, S, km]` */
  m: tf.Tensor;
  /** the new RMS `[N, S, kr]` */
  rms: tf.Tensor;
  /** the Adafactor-preconditioned gradient `fac_g` `[N, S, kf]` (made when first read) */
  readonly fg: tf.Tensor;
  /**
   * a factored leaf's new row / column accumulators (`rows` lacks axis d0 of the leaf, `cols` axis
   * d1) and factors (`safe_rsqrt(row / mean row)`, `safe_rsqrt(col)`, the same shapes); null for a
   * leaf of rank < 2
   */
  factored: { rows: tf.Tensor; cols: tf.Tensor; d0: number; d1: number; rowFactor: tf.Tensor; colFactor: tf.Tensor } | null;
  /** a non-factored leaf's new diagonal accumulator `[N, S, kf]`; null for a factored leaf */
  diag: tf.Tensor | null;
  /** `rsqrt(rms + 1e-6)` of the new RMS `[N, S, kr]` (made when first read) */
  readonly rsq: tf.Tensor;
  /** `m · rsqrt(rms + 1e-6)` (made when first read) */
  readonly adam: tf.Tensor;
  /**
   * the features before their normalisation, in the reference's order (see adafac_mlp_lopt.ts),
   * the Adafactor row / column ones at their factored size (made when first read: the native
   * kernel computes them from the arrays above instead)
   */
  readonly inputs: PerParamInput[];
}

/**
 * A leaf's features as one array, second-moment normalised over the leaf: `[N, S, numFeatures]`
 * (the reference's `second_moment_normalize(concat(inputs), axis=[0])` in adafac_mlp_lopt.py
 * `_mod`; the row / column features broadcast over the leaf). The update never builds it
 * ({@link adafacMLPOutputs} computes the same MLP input by input); it is the readable form the
 * tests check that against (with `applyPerParamMLP`).
 */
export function adafacFeatureArray(leaf: AdafacLeaf): tf.Tensor {
  const { p, S } = leaf;
  const [N, ...shp] = p.shape;
  const cols = leaf.inputs.map(({ x, broadcastAt, shape }) => {
    if (broadcastAt === undefined) return x;
    const k = x.shape[2] as number;
    // Broadcast by adding zeros, not tf.broadcastTo: that is tf.tile, whose gradient tf.js has only up to rank 4.
    return tf.reshape(tf.add(tf.expandDims(tf.reshape(x, [N, ...shape!, k]), broadcastAt + 1), tf.zeros([N, ...shp, k])), [N, S, k]);
  });
  return secondMomentNormalize(tf.concat(cols, 2), [1]);
}

/**
 * The MLP of AdafacMLPLOpt / AdafacNominal on every leaf, without the `[N, S, features]` array:
 * `concat(normalised features, time) @ W0 + b0` computed input by input (`perParamFirstLayer`: the
 * normalisation folded into W0's rows, the row / column features multiplied at their factored
 * size), the time features' term `time @ W0[F:] + b0` once per task, then the other layers
 * (`perParamOutputs`). Weights shared (`w [in, out]`) or per task (`perTask`, thetaIsVector:
 * `w [N, in, out]`). Returns per leaf, for each j of `outputs`, output j as `[N, S]`; with `step`
 * (`outputs` the direction and magnitude columns) per leaf instead the one tensor
 * `p − (d · exp(m · expMult)) · stepMult` `[N, S]` (AdafacMLPLOpt's update).
 */
export function adafacMLPOutputs(
  leaves: AdafacLeaf[],
  time: tf.Tensor,
  layers: Linear[],
  outputs: number[],
  perTask = false,
  step?: { expMult: number; stepMult: number },
): tf.Tensor[][] {
  const w0 = layers[0].w;
  // the features' count from the accumulators' widths (reading `inputs` would make them)
  const { m, rms } = leaves[0];
  const decayCounts = (t: tf.Tensor, n: number) => new Array(t.shape[t.rank - 1]).fill(n);
  const kf = leaves[0].factored ? leaves[0].factored.rows.shape[leaves[0].factored.rows.rank - 1] : leaves[0].diag!.shape[2];
  const F = adafacNumFeatures({ initialMomentumDecays: decayCounts(m, 0), initialRmsDecays: decayCounts(rms, 0), initialAdafactorDecays: new Array(kf).fill(0) });
  const [N, T] = time.shape as number[];
  const lead = perTask ? [N] : [];
  if (w0.rank !== lead.length + 2 || (perTask && w0.shape[0] !== N) || w0.shape[lead.length] !== F + T) {
    throw new Error(`MLP layer 0: w of shape [${w0.shape}], expected [${[...lead, F + T, 'H']}]`);
  }
  const H = w0.shape[lead.length + 1] as number;
  const z = lead.map(() => 0);
  const w0t = tf.slice(w0, [...z, F, 0], [...lead, T, H]);
  // the time features' term, one row per task: [N, H] (per task elementwise, no batched matMul)
  const timeTerm = perTask ? tf.sum(tf.mul(tf.expandDims(time, 2), w0t), 1) : tf.matMul(time, w0t);
  const rowTerm = tf.add(timeTerm, layers[0].b);
  const w0x = tf.slice(w0, [...z, 0, 0], [...lead, F, H]);
  if (step) {
    // the update itself: p − d·exp(m·expMult)·stepMult, in the kernel where it runs
    const scale = tf.fill([N], step.stepMult);
    return leaves.map((leaf) => {
      const flatP = tf.reshape(leaf.p, [N, leaf.S]);
      const native = perParamMLPNative(adafacNativeLeaf(leaf), w0x, rowTerm, layers, outputs, perTask, { p: flatP, scale, expMult: step.expMult });
      if (native) return native;
      const [direction, magnitude] = perParamOutputs(perParamFirstLayer(leaf.inputs, w0x, rowTerm, leaf.p.shape), layers, outputs, perTask);
      return [tf.sub(flatP, tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, step.expMult))), step.stepMult))];
    });
  }
  return leaves.map(
    (leaf) =>
      perParamMLPNative(adafacNativeLeaf(leaf), w0x, rowTerm, layers, outputs, perTask) ??
      perParamOutputs(perParamFirstLayer(leaf.inputs, w0x, rowTerm, leaf.p.shape), layers, outputs, perTask),
  );
}

/**
 * A leaf's MLP inputs as the native kernel takes them (per_param_native.ts): the same features as
 * {@link AdafacLeaf}.inputs, in the same order, the full-size ones as formulas of the leaf's arrays,
 * the Adafactor row / column ones at their factored size.
 */
export function adafacNativeLeaf(leaf: AdafacLeaf): PerParamNativeLeaf {
  const { p, S, g, m, rms, factored, diag } = leaf;
  const [N] = p.shape;
  const [km, kr] = [m.shape[2] as number, rms.shape[2] as number];
  const copy = (a: tf.Tensor): NativeFeature => ({ op: 'copy', a, width: a.size / (N * S) });
  const inputs: PerParamNativeLeaf['inputs'] = [
    copy(g),
    copy(p),
    copy(m),
    copy(rms),
    { op: 'mulRsqrt', a: m, b: rms, eps: 1e-6, width: bc(km, kr) }, // m · rsqrt(rms + 1e-6)
    { op: 'rsqrt', a: rms, eps: 1e-6, width: kr },
  ];
  if (factored) {
    const { rows, cols, d0, d1, rowFactor, colFactor } = factored;
    const fac = (t: tf.Tensor, at: number): PerParamInput => ({ x: tf.reshape(t, [N, -1, t.shape[t.rank - 1]]), broadcastAt: at, shape: t.shape.slice(1, -1) });
    const kf = rows.shape[rows.rank - 1] as number;
    inputs.push(
      { op: 'mulFactors', a: g, width: kf }, // fac_g = g · rowFactor · colFactor
      fac(rows, d0), fac(cols, d1), fac(tf.rsqrt(tf.add(rows, 1e-8)), d0), fac(tf.rsqrt(tf.add(cols, 1e-8)), d1), { op: 'mulFactors', a: m, width: bc(km, kf) });
    return { leafShape: p.shape, inputs, factors: { row: rowFactor, col: colFactor, d0, d1 } };
  }
  const v = diag!;
  const kf = v.shape[2] as number;
  inputs.push({ op: 'mulSafeRsqrt', a: g, b: v, eps: 1e-9, width: kf }, copy(v), copy(v), { op: 'rsqrt', a: v, eps: 1e-8, width: kf }, { op: 'rsqrt', a: v, eps: 1e-8, width: kf }, { op: 'mulRsqrt', a: m, b: v, eps: 1e-6, width: bc(km, kf) });
  return { leafShape: p.shape, inputs };
}

/**
 * The accumulators' leaves in params order: momentum `ms`, RMS `rs`, the factored gradient `fgs`
 * and the Adafactor row / column / diagonal accumulators (AdafacMLPLOpt, AdafacNominal, HyperV2).
 */
export function accumulatorLeaves(mom: MomAccumulator, rms: RMSAccumulator, facG: Params | null, fac: FactoredAccum) {
  const leaves = (t: PyTree) => treeFlatten<tf.Tensor>(t)[0];
  return { ms: leaves(mom.m), rs: leaves(rms.rms), fgs: facG === null ? null : leaves(facG), rows: leaves(fac.vRow), cols: leaves(fac.vCol), diags: leaves(fac.vDiag) };
}

/**
 * The accumulators and features of one batched update (a leading task axis N on every leaf):
 * `next` is the next state but for the params (cloned, unchanged) and the model state (null);
 * `time` the tanh time features `[N, 11]`; `leaves` every params leaf's features (none for an
 * empty params tree); `def` the params tree's structure. Call inside a tidy.
 */
export function adafacFeatures(
  c: AdafacDecays,
  theta: AdafacTheta,
  s: AdafacMLPLOptState,
  grad: Params,
): { next: AdafacMLPLOptState; time: tf.Tensor; leaves: AdafacLeaf[]; def: TreeDef } {
  const ctx: BatchCtx = { batched: true };
  const mom = vecRollingMom.update(s.momRolling, grad, decays(c.initialMomentumDecays, theta.momentum_decays), ctx);
  const rms = vecRollingRms.update(s.rmsRolling, grad, decays(c.initialRmsDecays, theta.rms_decays), ctx);
  // the native kernel computes fac_g itself, from the factors (no [N, S, k] array)
  const native = perParamNativeUsable();
  const [fac, facG] = vecFactoredRolling.update(s.facRollingFeatures, grad, decays(c.initialAdafactorDecays, theta.adafactor_decays), ctx, 1e-30, !native);
  const time = tanhEmbedding(s.iteration); // [N, 11]

  const [ps, def] = treeFlatten<tf.Tensor>(s.params);
  const next = { params: treeClone(s.params), state: null, momRolling: mom, rmsRolling: rms, facRollingFeatures: fac, numSteps: tf.clone(s.numSteps), iteration: incCounter(s.iteration) };
  if (ps.length === 0) return { next, time, leaves: [], def };
  const gs = treeFlatten<tf.Tensor>(grad)[0];
  const { ms, rs, fgs, rows, cols, diags } = accumulatorLeaves(mom, rms, facG, fac);
  const N = ps[0].shape[0];

  const leaves = ps.map((p, i): AdafacLeaf => {
    const S = p.size / N;
    const shp = p.shape.slice(1);
    const flatC = (t: tf.Tensor) => tf.reshape(t, [N, S, t.shape[t.rank - 1]]);
    const m = flatC(ms[i]);
    const rms = flatC(rs[i]);
    const g = tf.reshape(gs[i], [N, S]);
    const f = factoredDims(shp);
    let factored: AdafacLeaf['factored'] = null;
    if (f) {
      const [d1, d0] = f;
      factored = { rows: rows[i], cols: cols[i], d0, d1, ...factoredFactors(rows[i], cols[i], d0, d1, 1) };
    }
    const diag = f ? null : flatC(diags[i]);
    // made when first read (the native kernel needs none of them), and again if a scope that
    // ended since (e.g. a gradient's) disposed them
    const once = <T extends tf.Tensor | PerParamInput[]>(make: () => T): (() => T) => {
      let v: T | undefined;
      const live = (x: T) => (x instanceof tf.Tensor ? !x.isDisposed : x.every((i) => !i.x.isDisposed));
      return () => (v !== undefined && live(v) ? v : (v = make()));
    };
    const fg = once(() => flatC(fgs ? fgs[i] : facGrad(gs[i], factored, diags[i], 1)));
    const rsq = once(() => tf.rsqrt(tf.add(rms, 1e-6)));
    const adam = once(() => tf.mul(m, rsq()));
    const inputs = once((): PerParamInput[] => {
      const out: PerParamInput[] = [tf.reshape(g, [N, S, 1]), tf.reshape(p, [N, S, 1]), m, rms, adam(), rsq(), fg()].map((x) => ({ x }));
      if (factored) {
        const { d0, d1, rowFactor, colFactor } = factored;
        // The row / column accumulators stay at their factored size (rows[i] lacks axis d0 of the
        // leaf, cols[i] axis d1): the features are constant along that axis.
        const fac = (t: tf.Tensor, at: number): PerParamInput => ({ x: tf.reshape(t, [N, -1, t.shape[t.rank - 1]]), broadcastAt: at, shape: t.shape.slice(1, -1) });
        const facMom = tf.mul(tf.mul(ms[i], tf.expandDims(rowFactor, d0 + 1)), tf.expandDims(colFactor, d1 + 1));
        out.push(fac(rows[i], d0), fac(cols[i], d1), fac(tf.rsqrt(tf.add(rows[i], 1e-8)), d0), fac(tf.rsqrt(tf.add(cols[i], 1e-8)), d1), { x: flatC(facMom) });
      } else {
        const v = diag!;
        const rv = tf.rsqrt(tf.add(v, 1e-8));
        out.push({ x: v }, { x: v }, { x: rv }, { x: rv }, { x: tf.mul(m, tf.rsqrt(tf.add(v, 1e-6))) });
      }
      return out;
    });
    return {
      p,
      S,
      g,
      m,
      rms,
      factored,
      diag,
      get fg() {
        return fg();
      },
      get rsq() {
        return rsq();
      },
      get adam() {
        return adam();
      },
      get inputs() {
        return inputs();
      },
    };
  });
  return { next, time, leaves, def };
}
