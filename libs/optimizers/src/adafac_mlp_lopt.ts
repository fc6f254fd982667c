/**
 * AdafacMLPLOpt (reference `learned_optimizers/adafac_mlp_lopt.py`, `AdafacMLPLOpt`): a small per-parameter
 * MLP (default 39 -> 4 -> 4 -> 2) on momentum, RMS and Adafactor-style factored features, with
 * learnable accumulator decays.
 *
 * θ: `{ momentum_decays: [3], rms_decays: [1], adafactor_decays: [3],
 *       nn: { '~': { w0: [39,4], b0: [4], w1: [4,4], b1: [4], w2: [4,2], b2: [2] } } }`
 * (decays are offsets in `log(1−β)/10` space, zero at init: `β = 1 − exp(10·(log(1−β0)/10 + θ))`;
 * with thetaIsVector every leaf has a leading [N]).
 *
 * Features per parameter, in this order (28 with the default decays), second-moment normalised per
 * leaf (per task) over all of them, then the 11 un-normalised tanh time features:
 * g, p, m (3), rms (1), m·rsqrt(rms+1e-6) (3), rsqrt(rms+1e-6) (1), fac_g (3), then for tensors of
 * rank ≥ 2 (factored: the two largest dims) row (3), col (3), rsqrt(row+1e-8) (3),
 * rsqrt(col+1e-8) (3), m·row_factor·col_factor (3); otherwise v, v, rsqrt(v+1e-8) twice,
 * m·(v+1e-6)^−½ with v the full (diagonal) accumulator.
 *
 * State (AdafacMLPLOptState):
 * ```
 * { params, state, momRolling: {m: leaf+[3], t: int32 [3]}, rmsRolling: {rms: leaf+[1], t: int32 [1]},
 *   facRollingFeatures: {vCol, vRow, vDiag} (factored leaves: vRow = leaf without d0 + [3],
 *   vCol = leaf without d1 + [3], vDiag [0,3]; others: vRow/vCol [0,3], vDiag leaf+[3]),
 *   numSteps: int32 [], iteration: int32 [] }      batched: a leading [N] on every entry
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, initializers, parseOptions, registerPlugin, treeFlatten, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta } from './base';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import {
  BatchCtx,
  factoredDims,
  incCounter,
  FactoredAccum,
  MomAccumulator,
  numTasks,
  RMSAccumulator,
  safeRsqrt,
  secondMomentNormalize,
  tanhEmbedding,
  tidy,
  treeClone,
  vecFactoredRolling,
  vecRollingMom,
  vecRollingRms,
  zerosCounter,
} from './common';
import { applyPerParamMLP, Linear } from './per_param_mlp';
import { BatchedOptimizer } from './batched_optimizer';

export interface AdafacMLPLOptState extends OptState {
  params: Params;
  state: PyTree | null;
  momRolling: MomAccumulator;
  rmsRolling: RMSAccumulator;
  facRollingFeatures: FactoredAccum;
  numSteps: tf.Tensor;
  iteration: tf.Tensor;
}

/** AdafacMLPLOpt's options and their defaults (the reference's `AdafacMLPLOpt.__init__`). */
export const AdafacMLPLOptSchema = z
  .object({
    expMult: z.number().default(0.001),
    stepMult: z.number().default(0.001),
    hiddenSize: z.number().int().positive().default(4),
    hiddenLayers: z.number().int().min(0).default(2),
    initialMomentumDecays: z.array(z.number().min(0).lt(1)).nonempty().default([0.9, 0.99, 0.999]),
    initialRmsDecays: z.array(z.number().min(0).lt(1)).nonempty().default([0.999]),
    initialAdafactorDecays: z.array(z.number().min(0).lt(1)).nonempty().default([0.9, 0.99, 0.999]),
  })
  .strict();
export type AdafacMLPLOptOptions = z.input<typeof AdafacMLPLOptSchema>;

const bc = (a: number, b: number) => (a === 1 ? b : a);

export class AdafacMLPLOpt implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly expMult: number;
  readonly stepMult: number;
  readonly hiddenSize: number;
  readonly hiddenLayers: number;
  readonly initialMomentumDecays: number[];
  readonly initialRmsDecays: number[];
  readonly initialAdafactorDecays: number[];

  constructor(opts: AdafacMLPLOptOptions = {}) {
    const c = parseOptions(AdafacMLPLOptSchema, opts, 'AdafacMLPLOpt');
    this.expMult = c.expMult;
    this.stepMult = c.stepMult;
    this.hiddenSize = c.hiddenSize;
    this.hiddenLayers = c.hiddenLayers;
    this.initialMomentumDecays = c.initialMomentumDecays;
    this.initialRmsDecays = c.initialRmsDecays;
    this.initialAdafactorDecays = c.initialAdafactorDecays;
    const [km, kr, kf] = [this.initialMomentumDecays.length, this.initialRmsDecays.length, this.initialAdafactorDecays.length];
    if (!(kr === 1 || kr === km)) throw new Error(`initialRmsDecays: length ${kr} must be 1 or match initialMomentumDecays (${km})`);
    if (!(kf === 1 || km === 1 || kf === km)) throw new Error(`initialAdafactorDecays: length ${kf} must be 1 or match initialMomentumDecays (${km})`);
  }

  /** Number of normalised per-parameter features (28 by default). */
  numFeatures(): number {
    const [km, kr, kf] = [this.initialMomentumDecays.length, this.initialRmsDecays.length, this.initialAdafactorDecays.length];
    return 2 + km + kr + bc(km, kr) + kr + 5 * kf + bc(km, kf);
  }

  layerSizes(): number[] {
    return [this.numFeatures() + 11, ...new Array(this.hiddenLayers).fill(this.hiddenSize), 2];
  }

  /**
   * θ: the decay offsets (zeros) and the MLP made by haiku from `key`: per layer `w<i>` with
   * TruncatedNormal(1/√fan_in) then `b<i>` zeros, outside any module (`'~'`).
   */
  init(key: PRNGKey): Theta {
    const sizes = this.layerSizes();
    const nn = haikuInit(key, (hk) => {
      for (let i = 0; i + 1 < sizes.length; i++) {
        hk.getParameter('~', `w${i}`, [sizes[i], sizes[i + 1]], initializers.truncatedNormal({ stddev: 1 / Math.sqrt(sizes[i]) }));
        hk.getParameter('~', `b${i}`, [sizes[i + 1]], initializers.zeros());
      }
    })['~'];
    return {
      momentum_decays: tf.zeros([this.initialMomentumDecays.length]),
      rms_decays: tf.zeros([this.initialRmsDecays.length]),
      adafactor_decays: tf.zeros([this.initialAdafactorDecays.length]),
      nn: { '~': nn },
    };
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new AdafacMLPLOptOptimizer(this, theta as any, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta);
  }
}

/** `1 − exp(10·(log(1−β0)/10 + θ))` (param_to_decay(decay_to_param(β0) + θ)). */
function decays(initial: number[], offset: tf.Tensor): tf.Tensor {
  const base = tf.div(tf.log(tf.sub(1, tf.tensor1d(initial))), 10);
  return tf.sub(1, tf.exp(tf.mul(tf.add(base, offset), 10)));
}

export class AdafacMLPLOptOptimizer extends BatchedOptimizer<AdafacMLPLOptState> {
  constructor(
    readonly lopt: AdafacMLPLOpt,
    readonly theta: { momentum_decays: tf.Tensor; rms_decays: tf.Tensor; adafactor_decays: tf.Tensor; nn: { '~': Record<string, tf.Tensor> } },
    readonly thetaIsVector: boolean,
  ) {
    super('AdafacMLPLOpt');
    for (const k of ['momentum_decays', 'rms_decays', 'adafactor_decays', 'nn'] as const) {
      if (!theta || !(k in theta)) throw new Error(`AdafacMLPLOpt theta: missing '${k}' (expected momentum_decays, rms_decays, adafactor_decays, nn)`);
    }
  }

  private rolling() {
    const l = this.lopt;
    return {
      mom: decays(l.initialMomentumDecays, this.theta.momentum_decays),
      rms: decays(l.initialRmsDecays, this.theta.rms_decays),
      fac: decays(l.initialAdafactorDecays, this.theta.adafactor_decays),
    };
  }

  private layers(): Linear[] {
    const nn = this.theta.nn['~'];
    return Array.from({ length: this.lopt.hiddenLayers + 1 }, (_, i) => ({ w: nn[`w${i}`], b: nn[`b${i}`] }));
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): AdafacMLPLOptState {
    if (opts.numSteps === null || opts.numSteps === undefined) throw new Error('AdafacMLPLOpt: numSteps must be given to init (the reference requires it)');
    return tidy(() => {
      const ctx: BatchCtx = { batched };
      const l = this.lopt;
      const n = batched ? numTasks(params) : 0;
      const ns = opts.numSteps as number | tf.Tensor;
      const numSteps = tf.add(zerosCounter(ctx, n), typeof ns === 'number' ? tf.scalar(Math.round(ns), 'int32') : tf.cast(ns, 'int32'));
      return {
        params: treeClone(params),
        state: treeClone(opts.modelState ?? null),
        momRolling: vecRollingMom.init(params, l.initialMomentumDecays.length, ctx),
        rmsRolling: vecRollingRms.init(params, l.initialRmsDecays.length, ctx),
        facRollingFeatures: vecFactoredRolling.init(params, l.initialAdafactorDecays.length, ctx),
        numSteps,
        iteration: zerosCounter(ctx, n),
      };
    });
  }

  /** Batched update (leading task axis on every leaf). Call inside a tidy. */
  protected step(s: AdafacMLPLOptState, grad: Params): AdafacMLPLOptState {
    const ctx: BatchCtx = { batched: true };
    const d = this.rolling();
    const mom = vecRollingMom.update(s.momRolling, grad, d.mom, ctx);
    const rms = vecRollingRms.update(s.rmsRolling, grad, d.rms, ctx);
    const [fac, facG] = vecFactoredRolling.update(s.facRollingFeatures, grad, d.fac, ctx);
    const time = tanhEmbedding(s.iteration); // [N, 11]

    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const base = { params: treeClone(s.params), state: null, momRolling: mom, rmsRolling: rms, facRollingFeatures: fac, numSteps: tf.clone(s.numSteps), iteration: incCounter(s.iteration) };
    if (ps.length === 0) return base;
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const ms = treeFlatten<tf.Tensor>(mom.m)[0];
    const rs = treeFlatten<tf.Tensor>(rms.rms)[0];
    const fgs = treeFlatten<tf.Tensor>(facG)[0];
    const rows = treeFlatten<tf.Tensor>(fac.vRow)[0];
    const cols = treeFlatten<tf.Tensor>(fac.vCol)[0];
    const diags = treeFlatten<tf.Tensor>(fac.vDiag)[0];
    const N = ps[0].shape[0];
    const sizes = ps.map((p) => p.size / N);

    const feats = ps.map((p, i) => {
      const S = sizes[i];
      const shp = p.shape.slice(1);
      const flatC = (t: tf.Tensor) => tf.reshape(t, [N, S, t.shape[t.rank - 1]]);
      const m = ms[i];
      const rsq = tf.rsqrt(tf.add(rs[i], 1e-6));
      const inps: tf.Tensor[] = [
        tf.reshape(gs[i], [N, S, 1]),
        tf.reshape(p, [N, S, 1]),
        flatC(m),
        flatC(rs[i]),
        flatC(tf.mul(m, rsq)),
        flatC(rsq),
        flatC(fgs[i]),
      ];
      const f = factoredDims(shp);
      if (f) {
        const [d1, d0] = f;
        const kf = rows[i].shape[rows[i].rank - 1];
        const full = [N, ...shp, kf];
        const rowFeat = tf.broadcastTo(tf.expandDims(rows[i], d0 + 1), full);
        const colFeat = tf.broadcastTo(tf.expandDims(cols[i], d1 + 1), full);
        const reducedD1 = d1 > d0 ? d1 - 1 : d1;
        const rowColMean = tf.mean(rows[i], reducedD1 + 1, true);
        const rowFactor = safeRsqrt(tf.div(rows[i], tf.add(rowColMean, 1e-9)));
        const colFactor = safeRsqrt(cols[i]);
        const facMom = tf.mul(tf.mul(m, tf.expandDims(rowFactor, d0 + 1)), tf.expandDims(colFactor, d1 + 1));
        inps.push(flatC(rowFeat), flatC(colFeat), flatC(tf.rsqrt(tf.add(rowFeat, 1e-8))), flatC(tf.rsqrt(tf.add(colFeat, 1e-8))), flatC(facMom));
      } else {
        const v = flatC(diags[i]);
        const rv = tf.rsqrt(tf.add(v, 1e-8));
        inps.push(v, v, rv, rv, tf.mul(flatC(m), tf.rsqrt(tf.add(v, 1e-6))));
      }
      return secondMomentNormalize(tf.concat(inps, 2), [1]);
    });
    const x = feats.length === 1 ? feats[0] : tf.concat(feats, 1);
    const out = applyPerParamMLP(x, time, this.layers(), this.thetaIsVector);
    const P = (x.shape as number[])[1];
    const direction = tf.reshape(tf.slice(out, [0, 0, 0], [N, P, 1]), [N, P]);
    const magnitude = tf.reshape(tf.slice(out, [0, 0, 1], [N, P, 1]), [N, P]);
    const stepAll = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, this.lopt.expMult))), this.lopt.stepMult);
    const steps = sizes.length === 1 ? [stepAll] : tf.split(stepAll, sizes, 1);
    return { ...base, params: treeUnflatten(def, ps.map((p, i) => tf.sub(p, tf.reshape(steps[i], p.shape)))) };
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'AdafacMLPLOpt',
  description: 'Per-parameter MLP (4x2) on momentum, RMS and Adafactor features with learnable decays',
  schema: AdafacMLPLOptSchema,
  create: (c) => new AdafacMLPLOpt(c),
  cls: AdafacMLPLOpt,
});
