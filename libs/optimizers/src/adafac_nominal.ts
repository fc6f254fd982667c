/**
 * AdafacNominal (reference `learned_optimizers/adafac_nominal.py`, `MLPNomLOpt`): AdafacMLPLOpt's
 * per-parameter MLP on momentum, RMS and Adafactor-style features, with 4 outputs (direction,
 * magnitude, nominal magnitude, regularisation magnitude) and, beside the learned step, a
 * "nominal" hand-designed step (by default the mean over the decays of Adam-like `m/√rms`,
 * AggMo-style) and a weight decay, each scaled by an output when its controller is on:
 *
 * ```
 * step     = direction · exp(magnitude · expMult[0]) · stepMult      (· rsqrt(rms₀+1e-6) if normalizeBlackbox,
 *                                                                     · mean(g) if selfnormalizeBlackbox)
 * reg      = 1 − weightDecay · exp(regMagnitude · expMult[2])        (regMagnitude = out[3], or 0 without the controller)
 * nomStep  = nominalStepsize · exp(nomMagnitude · expMult[1]) · gEst  (nomMagnitude = out[2], or 1 without the controller)
 * p'       = reg · p − step − nomStep
 * ```
 *
 * θ: `{ momentum_decays: [3], rms_decays: [1], adafactor_decays: [3],
 *       nn: { '~': { w0: [39,4], b0: [4], w1: [4,4], b1: [4], w2: [4,4], b2: [4] } } }`
 * (the decays are offsets in `log(1−β)/10` space, zero at init). With `concatWeights: false,
 * makeSeparateWeights: true` every weight is its own scalar haiku parameter instead:
 * `w<layer>_<in>_<out>` (each its own TruncatedNormal draw, in that order) and `b<layer>_<out>`.
 * With thetaIsVector every leaf has a leading [N].
 *
 * State: the reference reuses AdafacMLPLOpt's state class, so the layout is AdafacMLPLOptState's:
 * `{ params, state, momRolling, rmsRolling, facRollingFeatures: {vCol, vRow, vDiag}, numSteps, iteration }`.
 *
 * Quirks of the reference, kept (and tested against its golden values):
 * - Without `nominalController` the nominal magnitude is ones, not zeros: the nominal step is
 *   `nominalStepsize · exp(expMult[1]) · gEst`. Without `regularizationController` it is zeros:
 *   `reg = 1 − weightDecay`.
 * - `aggregateRegMagnitude: true` cannot work: the mean makes `reg` one value that the reference
 *   then reshapes to the parameter's shape, which fails for every leaf of more than one value —
 *   and `init` always traces the MLP on a fake 10×10 leaf, so it fails there too. lopt-ts throws
 *   in both places, with the reference's message.
 * - `concatWeights: false` (the reference's "scalar math" path) computes the same function as the
 *   matmul path (per-feature second-moment normalisation over the leaf, the time features
 *   appended un-normalised); here both run as matmuls, so only θ's layout differs
 *   (`makeSeparateWeights`). `splitWeights` is dead code in the reference (its branch needs
 *   weights that are neither full nor separate, which never happens): accepted, no effect.
 * - `makeSeparateWeights` only counts when `concatWeights` is false (concat wins).
 * - The summaries (`ADAFAC_NOMINAL_SUMMARY_NAMES`) keep AdafacMLPLOpt's `adafac_mlp_lopt/` prefix;
 *   like the other learned optimizers here, the update does not emit them.
 */
import * as tf from '@tensorflow/tfjs';
import { parseOptions, registerPlugin, treeUnflatten, type PRNGKey } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, Params, Theta } from './base';
import { adafacFeatures, adafacInitTheta, adafacMLPOutputs, adafacInitState, adafacNumFeatures, checkAdafacTheta, type AdafacTheta } from './adafac_features';
import type { AdafacMLPLOptState } from './adafac_mlp_lopt';
import { BatchedOptimizer } from './batched_optimizer';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import type { Linear } from './per_param_mlp';

/** The reference's state class is AdafacMLPLOpt's (adafac_nominal.py defines its own copy of it). */
export type AdafacNominalState = AdafacMLPLOptState;

/** The estimators of the gradient the nominal step follows (`nominal_grad_estimator`). */
export const NOMINAL_GRAD_ESTIMATORS = ['SGD', 'SGDM', 'AggMo', 'Adam', 'AdamAggMo'] as const;

/** The names `_mod` logs with summary.summary (the prefix is AdafacMLPLOpt's, as in the reference). */
export const ADAFAC_NOMINAL_SUMMARY_NAMES = [
  'adafac_mlp_lopt/avg_step_size',
  'adafac_mlp_lopt/avg_step_size_hist',
  'adafac_mlp_lopt/direction/mean_abs',
  'adafac_mlp_lopt/magnitude/mean_abs',
  'adafac_mlp_lopt/magnitude/mean',
  'adafac_mlp_lopt/grad/mean_abs',
] as const;

const decayList = (d: number[]) => z.array(z.number().min(0).lt(1)).nonempty().default(d as [number, ...number[]]);

/** AdafacNominal's options and their defaults (the reference's `MLPNomLOpt.__init__`). */
export const AdafacNominalSchema = z
  .object({
    /** multipliers of the magnitude, nominal magnitude and regularisation magnitude outputs */
    expMult: z.tuple([z.number(), z.number(), z.number()]).default([0.001, 0.001, 0.001]),
    stepMult: z.number().default(0.001),
    hiddenSize: z.number().int().positive().default(4),
    hiddenLayers: z.number().int().min(0).default(2),
    initialMomentumDecays: decayList([0.9, 0.99, 0.999]),
    initialRmsDecays: decayList([0.999]),
    initialAdafactorDecays: decayList([0.9, 0.99, 0.999]),
    nominalStepsize: z.number().default(0),
    weightDecay: z.number().default(0),
    concatWeights: z.boolean().default(true),
    makeSeparateWeights: z.boolean().default(false),
    /** dead code in the reference: accepted, no effect */
    splitWeights: z.boolean().default(false),
    nominalController: z.boolean().default(false),
    regularizationController: z.boolean().default(false),
    nominalGradEstimator: z.enum(NOMINAL_GRAD_ESTIMATORS).default('AdamAggMo'),
    aggregateMagnitude: z.boolean().default(false),
    aggregateNomMagnitude: z.boolean().default(false),
    aggregateRegMagnitude: z.boolean().default(false),
    normalizeBlackbox: z.boolean().default(false),
    selfnormalizeBlackbox: z.boolean().default(false),
  })
  .strict();
/** The options `new AdafacNominal(opts)` takes (see `AdafacNominalSchema`). */
export type AdafacNominalOptions = z.input<typeof AdafacNominalSchema>;
type AdafacNominalConfig = z.output<typeof AdafacNominalSchema>;

const OUT_SIZE = 4;

/** The reference's error for `aggregate_regularization_magnitude` (jax's reshape message). */
function aggregateRegError(shape: number[]): Error {
  const size = shape.reduce((a, b) => a * b, 1);
  return new Error(
    `AdafacNominal: aggregateRegMagnitude makes reg a single value that the reference reshapes to the parameter's shape: ` +
      `cannot reshape array of shape () (size 1) into shape (${shape.join(', ')}${shape.length === 1 ? ',' : ''}) (size ${size})`,
  );
}

/**
 * The AdafacNominal learned optimizer (reference `learned_optimizers/adafac_nominal.py`, `MLPNomLOpt`):
 * AdafacMLPLOpt's MLP plus a scaled nominal (hand-designed) step and weight decay.
 */
export class AdafacNominal implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly config: Readonly<AdafacNominalConfig>;

  constructor(opts: AdafacNominalOptions = {}) {
    const c = parseOptions(AdafacNominalSchema, opts, 'AdafacNominal');
    this.config = Object.freeze({ ...c });
    const [km, kr, kf] = [c.initialMomentumDecays.length, c.initialRmsDecays.length, c.initialAdafactorDecays.length];
    if (!(kr === 1 || km === 1 || kr === km)) throw new Error(`initialRmsDecays: length ${kr} must broadcast with initialMomentumDecays (${km})`);
    if (!(kf === 1 || km === 1 || kf === km)) throw new Error(`initialAdafactorDecays: length ${kf} must broadcast with initialMomentumDecays (${km})`);
  }

  /** θ holds one scalar per weight (`w<l>_<in>_<out>`, `b<l>_<out>`) rather than matrices. */
  get separateWeights(): boolean {
    return !(this.config.concatWeights || !this.config.makeSeparateWeights);
  }

  /** Number of normalised per-parameter features (28 by default). */
  numFeatures(): number {
    return adafacNumFeatures(this.config);
  }

  /** [inputs (features + 11 time features), hidden..., 4]. */
  layerSizes(): number[] {
    return [this.numFeatures() + 11, ...new Array(this.config.hiddenLayers).fill(this.config.hiddenSize), OUT_SIZE];
  }

  /**
   * θ: the decay offsets (zeros) and the MLP haiku makes from `key` (reference `MLPNomLOpt.init`:
   * `_mod` run on a fake 10×10 leaf): per layer, weights TruncatedNormal(1/√fan_in) then zero
   * biases, outside any module (`'~'`).
   */
  init(key: PRNGKey): Theta {
    const c = this.config;
    if (c.aggregateRegMagnitude) throw aggregateRegError([10, 10]);
    return adafacInitTheta(key, c, this.layerSizes(), this.separateWeights);
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new AdafacNominalOptimizer(this, theta as any, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

/** The optimizer {@link AdafacNominal.optFn} returns for a θ. */
export class AdafacNominalOptimizer extends BatchedOptimizer<AdafacNominalState> {
  constructor(
    readonly lopt: AdafacNominal,
    readonly theta: AdafacTheta,
    readonly thetaIsVector: boolean,
  ) {
    super('AdafacNominal');
    checkAdafacTheta(theta, 'AdafacNominal');
    const nn = theta.nn?.['~'];
    const first = lopt.separateWeights ? 'w0_0_0' : 'w0';
    if (!nn || !(first in nn)) throw new Error(`AdafacNominal theta: nn['~'] lacks '${first}' (${lopt.separateWeights ? 'per-scalar' : 'matrix'} weights for this configuration)`);
  }

  /** The MLP's layers as matrices; per-scalar weights are stacked (`[in, out]`, or `[N, in, out]`). */
  private layers(): Linear[] {
    const nn = this.theta.nn['~'];
    const sizes = this.lopt.layerSizes();
    return sizes.slice(0, -1).map((fanIn, i) => {
      if (!this.lopt.separateWeights) return { w: nn[`w${i}`], b: nn[`b${i}`] };
      const fanOut = sizes[i + 1];
      const outs = (name: (o: number) => string) => tf.stack(Array.from({ length: fanOut }, (_, o) => nn[name(o)]), -1);
      const w = tf.stack(Array.from({ length: fanIn }, (_, v) => outs((o) => `w${i}_${v}_${o}`)), -2);
      return { w, b: outs((o) => `b${i}_${o}`) };
    });
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): AdafacNominalState {
    return adafacInitState(this.lopt.config, params, opts, batched, 'AdafacNominal');
  }

  /** Batched update (a leading task axis on every leaf), reference `_Opt.update` + `_mod`. Call inside a tidy. */
  protected step(s: AdafacNominalState, grad: Params): AdafacNominalState {
    const c = this.lopt.config;
    // the accumulators and, per leaf flattened to [N, S, channels], the raw pieces the nominal
    // step needs and the MLP's inputs (reference `_mod`, in its order)
    const { next, time, leaves, def } = adafacFeatures(c, this.theta, s, grad);
    if (leaves.length === 0) return next;
    const N = leaves[0].p.shape[0];
    const sizes = leaves.map((l) => l.S);
    if (c.aggregateRegMagnitude) {
      for (const { p, S } of leaves) if (S !== 1) throw aggregateRegError(p.shape.slice(1));
    }
    const layers = this.layers();
    // the MLP outputs each leaf needs, [N, S] each: direction, magnitude, and the nominal and
    // regularisation magnitudes when their controllers are on
    const used = [0, 1, ...(c.nominalController ? [2] : []), ...(c.regularizationController ? [3] : [])];
    // input by input, no [N, P, features] array (adafacMLPOutputs)
    const outs = adafacMLPOutputs(leaves, time, layers, used, this.thetaIsVector);
    const outputOf = (leaf: number, k: number) => outs[leaf][used.indexOf(k)];
    const channel = (t: tf.Tensor, k: number) => {
      const [n, S] = t.shape as number[];
      return tf.reshape(tf.slice(t, [0, 0, k], [n, S, 1]), [n, S]);
    };
    const leafMean = (t: tf.Tensor) => tf.mean(t, 1, true); // over the leaf, per task: [N, 1]
    const [e0, e1, e2] = c.expMult;

    const newPs = leaves.map(({ p, g, m, rsq, adam }, i) => {
      const direction = outputOf(i, 0);
      let magnitude = outputOf(i, 1);
      // without their controllers the magnitudes are constant over the leaf (ones / zeros, as the
      // reference's ones_like / zeros_like): one value per task, [N, 1], broadcast in the step
      let nomMagnitude = c.nominalController ? outputOf(i, 2) : tf.ones([N, 1]);
      let regMagnitude = c.regularizationController ? outputOf(i, 3) : tf.zeros([N, 1]);
      if (c.aggregateMagnitude) magnitude = leafMean(magnitude);
      if (c.aggregateNomMagnitude) nomMagnitude = leafMean(nomMagnitude);
      if (c.aggregateRegMagnitude) regMagnitude = leafMean(regMagnitude);

      let step = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, e0))), c.stepMult);
      if (c.normalizeBlackbox) step = tf.mul(step, channel(rsq, 0));
      if (c.selfnormalizeBlackbox) step = tf.mul(step, leafMean(g));

      const reg = tf.sub(1, tf.mul(c.weightDecay, tf.exp(tf.mul(regMagnitude, e2))));
      let gEst: tf.Tensor;
      switch (c.nominalGradEstimator) {
        case 'SGD':
          gEst = g;
          break;
        case 'SGDM':
          gEst = channel(m, (m.shape as number[])[2] - 1);
          break;
        case 'AggMo':
          gEst = tf.mean(m, 2);
          break;
        case 'Adam':
          gEst = channel(adam, (adam.shape as number[])[2] - 1);
          break;
        case 'AdamAggMo':
          gEst = tf.mean(adam, 2);
          break;
      }
      const nomStep = tf.mul(tf.mul(c.nominalStepsize, tf.exp(tf.mul(nomMagnitude, e1))), gEst);
      const flatP = tf.reshape(p, [N, sizes[i]]);
      return tf.reshape(tf.sub(tf.sub(tf.mul(reg, flatP), step), nomStep), p.shape);
    });
    return { ...next, params: treeUnflatten(def, newPs) };
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'AdafacNominal',
  description: 'AdafacMLPLOpt-style MLP (4 outputs) plus a nominal AggMo/Adam step and weight decay it can scale (reference MLPNomLOpt)',
  schema: AdafacNominalSchema,
  create: (c) => new AdafacNominal(c),
  cls: AdafacNominal,
});
