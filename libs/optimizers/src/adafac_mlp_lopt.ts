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
import { parseOptions, registerPlugin, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta } from './base';
import { adafacFeatures, adafacInitTheta, adafacMLPOutputs, adafacInitState, adafacNumFeatures, checkAdafacTheta, type AdafacTheta } from './adafac_features';
import { BatchedOptimizer } from './batched_optimizer';
import type { FactoredAccum, MomAccumulator, RMSAccumulator } from './common';
import type { Linear } from './per_param_mlp';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';

/**
 * State of {@link AdafacMLPLOptOptimizer}: params, model state, momentum, RMS and factored accumulators,
 * number of steps and iteration (reference `adafac_mlp_lopt.py`, `AdafacMLPLOptState`).
 */
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
/** The options `new AdafacMLPLOpt(opts)` takes (see `AdafacMLPLOptSchema`). */
export type AdafacMLPLOptOptions = z.input<typeof AdafacMLPLOptSchema>;

/**
 * The AdafacMLPLOpt learned optimizer (reference `learned_optimizers/adafac_mlp_lopt.py`, `AdafacMLPLOpt`): a
 * per-parameter MLP on momentum, RMS and Adafactor features with learnable decays.
 */
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
    return adafacNumFeatures(this);
  }

  layerSizes(): number[] {
    return [this.numFeatures() + 11, ...new Array(this.hiddenLayers).fill(this.hiddenSize), 2];
  }

  /**
   * θ: the decay offsets (zeros) and the MLP made by haiku from `key`: per layer `w<i>` with
   * TruncatedNormal(1/√fan_in) then `b<i>` zeros, outside any module (`'~'`).
   */
  init(key: PRNGKey): Theta {
    return adafacInitTheta(key, this, this.layerSizes());
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new AdafacMLPLOptOptimizer(this, theta as any, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

/** The optimizer {@link AdafacMLPLOpt.optFn} returns for a θ (the reference's `_Opt` inside `opt_fn`). */
export class AdafacMLPLOptOptimizer extends BatchedOptimizer<AdafacMLPLOptState> {
  constructor(
    readonly lopt: AdafacMLPLOpt,
    readonly theta: AdafacTheta,
    readonly thetaIsVector: boolean,
  ) {
    super('AdafacMLPLOpt');
    checkAdafacTheta(theta, 'AdafacMLPLOpt');
  }

  private layers(): Linear[] {
    const nn = this.theta.nn['~'];
    return Array.from({ length: this.lopt.hiddenLayers + 1 }, (_, i) => ({ w: nn[`w${i}`], b: nn[`b${i}`] }));
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): AdafacMLPLOptState {
    return adafacInitState(this.lopt, params, opts, batched, 'AdafacMLPLOpt');
  }

  /**
   * Batched update (leading task axis on every leaf; reference `_Opt.update` + `_mod`). Call inside
   * a tidy. The MLP runs input by input (`adafacMLPOutputs`): no `[N, P, 39]` feature array, the
   * Adafactor row / column features at their factored size.
   */
  protected step(s: AdafacMLPLOptState, grad: Params): AdafacMLPLOptState {
    const { next, time, leaves, def } = adafacFeatures(this.lopt, this.theta, s, grad);
    if (leaves.length === 0) return next;
    // per leaf p − direction · exp(magnitude · expMult) · stepMult, [N, S]
    const outs = adafacMLPOutputs(leaves, time, this.layers(), [0, 1], this.thetaIsVector, { expMult: this.lopt.expMult, stepMult: this.lopt.stepMult });
    const newPs = leaves.map(({ p }, i) => tf.reshape(outs[i][0], p.shape));
    return { ...next, params: treeUnflatten(def, newPs) };
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
