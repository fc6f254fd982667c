/**
 * HyperV2 (reference `research/general_lopt/hyper_v2.py`, `HyperV2`), VeLO's architecture: a
 * per-tensor LSTM that, once per step, reads a feature vector of every parameter tensor and emits
 * `paramInits` mixing coefficients (and a step-size multiplier) per tensor; the coefficients mix
 * `paramInits` stored per-parameter-MLP weight sets into one small MLP per tensor, which then maps
 * per-parameter features (gradient, parameter, momentum, RMS, Adafactor-style factored features)
 * to a step.
 *
 * θ (haiku names, so the reference's keystr paths name our leaves; with thetaIsVector every leaf
 * has a leading [N]):
 * ```
 * { lstm_init_state: { hidden: [1, H], cell: [1, H] },            (zeros)
 *   rnn_params: { linear, linear_1, linear_2: {w: [F, H], b: [H]},  (the mixing layers)
 *                 'rnn/linear': {w: [2H, 4H], b: [4H]},             (hk.LSTM(H, name='rnn'))
 *                 rnn_to_controls: {w: [H, paramInits], b}, step_size: {w: [H, 1], b: [1]} },
 *   ff_mod_stack: { '~': { w0__0 … w0__13: [paramInits, width_i, ffHiddenSize], b0, w1, b1, …,
 *                          w<L>: [paramInits, ffHiddenSize, 3], b<L>: [paramInits, 3] } } }
 * ```
 * H = lstmHiddenSize (128), F = 30 LSTM features, L = ffHiddenLayers (2).
 *
 * State (HyperV2State; batched: a leading [N] on every entry):
 * ```
 * { params, state, momRolling: {m: leaf+[3], t: [3]}, rmsRolling: {rms: leaf+[1], t: [1]},
 *   facRolling: {vCol, vRow, vDiag} (as AdafacMLPLOpt's), iteration: int32 [], numSteps: int32 [],
 *   lstmHiddenState: {hidden: [numLeaves, H], cell: [numLeaves, H]},
 *   lossBuffer: {means: [10], iteration: int32 [], runningMin: [10], decays: [10]} }
 * ```
 *
 * Quirks of the reference, kept (each has a test):
 * - `_rnn_forward` computes its first mixing layer (`linear`) and throws it away: the second
 *   (`linear_1`) is applied to the LSTM input again, not to the first's output. θ still holds
 *   `linear`; nothing reads it.
 * - the LSTM features `var_rms` subtract the mean of the *momentum*, not of the RMS, so they have
 *   `max(#momentum decays, #rms decays)` entries (3 by default), and F = 30.
 * - the LSTM sees the previous step's momentum / RMS accumulators (the per-parameter MLP the new
 *   ones).
 * - `useBuggedLossFeatures` (default true; the VeLO checkpoint sets false) builds the loss buffer
 *   for 10 steps whatever numSteps is: all its decays are then equal and its features are 0 for
 *   3 steps, −1 after.
 * - the per-parameter MLP has 3 outputs of which only the first two (direction, magnitude) are used.
 * - non-factored leaves use `m·v^−½` (no epsilon) as the Adafactor momentum feature.
 * - `useBuggedNextLstmState` (default false) keeps the initial LSTM state forever.
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, haikuInitBatch, initializers, parseOptions, random, registerPlugin, treeFlatten, treeMap, treeUnflatten, type HaikuInit, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta, UpdateOptions } from './base';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import {
  BatchCtx,
  FactoredAccum,
  facGrad,
  factoredDims,
  factoredFactors,
  incCounter,
  MomAccumulator,
  numTasks,
  RMSAccumulator,
  tidy,
  toFloatTensor,
  treeClone,
  treeExpand,
  treeSqueeze,
  vecFactoredRolling,
  vecRollingMom,
  vecRollingRms,
  zerosCounter,
} from './common';
import { loadLearnedOptimizerCheckpoint, type LoadedLearnedOptimizer } from './checkpoint';
import { accumulatorLeaves } from './adafac_features';
import { perParamFirstLayer, type PerParamInput } from './per_param_mlp';
import { perParamMLPNative, perParamNativeUsable, tensorStatsNative, type PerParamNativeLeaf } from './per_param_native';

/** The loss buffer (`BufferLossAccumulators` state), camelCase. */
export interface LossBuffer {
  means: tf.Tensor;
  iteration: tf.Tensor;
  runningMin: tf.Tensor;
  decays: tf.Tensor;
}

/** `hk.LSTMState`. */
export interface LSTMState {
  hidden: tf.Tensor;
  cell: tf.Tensor;
}

/**
 * State of {@link HyperV2Optimizer}: params, model state, RMS, momentum and factored accumulators, iteration
 * and number of steps, the per-tensor LSTM state and the loss buffer (reference `hyper_v2.py`,
 * `HyperV2State`).
 */
export interface HyperV2State extends OptState {
  params: Params;
  state: PyTree | null;
  rmsRolling: RMSAccumulator;
  momRolling: MomAccumulator;
  facRolling: FactoredAccum;
  iteration: tf.Tensor;
  numSteps: tf.Tensor;
  lstmHiddenState: LSTMState;
  lossBuffer: LossBuffer;
}

const decay = z.number().min(0).lt(1);
/** HyperV2's options and their defaults (the reference's `HyperV2.__init__`, camelCase). */
export const HyperV2Schema = z
  .object({
    lstmHiddenSize: z.number().int().positive().default(128),
    ffHiddenSize: z.number().int().positive().default(4),
    ffHiddenLayers: z.number().int().min(0).default(2),
    initialMomentumDecays: z.array(decay).nonempty().default([0.9, 0.99, 0.999]),
    initialRmsDecays: z.array(decay).nonempty().default([0.999]),
    initialAdafactorDecays: z.array(decay).nonempty().default([0.9, 0.99, 0.999]),
    paramInits: z.number().int().positive().default(64),
    mixLayers: z.boolean().default(true),
    expMult: z.number().default(0.001),
    stepMult: z.number().default(0.001),
    validationMode: z.boolean().default(false),
    withValidationFeatureDim: z.boolean().default(false),
    withG: z.boolean().default(true),
    withM: z.boolean().default(true),
    withMFeat: z.boolean().default(true),
    withRms: z.boolean().default(true),
    withRmsFeat: z.boolean().default(true),
    withRmsNormG: z.boolean().default(true),
    withRsqrtRms: z.boolean().default(true),
    withP: z.boolean().default(true),
    withFacNormG: z.boolean().default(true),
    withFacRms: z.boolean().default(true),
    withFacRsqrt: z.boolean().default(true),
    withGradClipFeat: z.boolean().default(true),
    withFacMomMult: z.boolean().default(true),
    withRmsOnlyNormG: z.boolean().default(true),
    adafactorAccumulator: z.boolean().default(true),
    paramScaleMult: z.boolean().default(true),
    useBuggedNextLstmState: z.boolean().default(false),
    useBuggedLossFeatures: z.boolean().default(true),
    preconditionOutput: z.boolean().default(false),
    reparamDecay: z.number().default(10),
    rnnStateDecay: z.number().min(0).default(0),
    summarizeEachLayer: z.boolean().default(false),
    summarizeAllControl: z.boolean().default(false),
    constantLoss: z.boolean().default(false),
    clipParamScaleAmount: z.number().positive().nullable().default(null),
  })
  .strict();
/** The options `new HyperV2(opts)` takes (see `HyperV2Schema`). */
export type HyperV2Options = z.input<typeof HyperV2Schema>;
type HyperV2Config = z.output<typeof HyperV2Schema>;

/**
 * The HyperV2 configuration of VeLO (the config.gin of pretrained_optimizers' default,
 * `aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620`, which prefab.py uses).
 */
export const VELO_HYPER_V2_OPTIONS = Object.freeze({ lstmHiddenSize: 512, paramInits: 256, useBuggedLossFeatures: false });

/** `_fractional_tanh_embed`'s time scales. */
export const FRACTION_TIMESCALES = [0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1];
const LOSS_BUFFER_SIZE = 10;

const bc = (a: number, b: number) => (a === 1 ? b : a);

/** One per-parameter MLP input: its name (for errors) and width. */
interface FfInput {
  name: string;
  width: number;
}

/**
 * The HyperV2 learned optimizer, VeLO's architecture (reference `research/general_lopt/hyper_v2.py`,
 * `HyperV2`): a per-tensor LSTM that mixes stored per-parameter MLPs into one per tensor.
 */
export class HyperV2 implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly config: Readonly<HyperV2Config>;

  constructor(opts: HyperV2Options = {}) {
    this.config = Object.freeze(parseOptions(HyperV2Schema, opts, 'HyperV2'));
    const [km, kr, kf] = this.decayCounts();
    if (!(kr === 1 || km === 1 || kr === km)) throw new Error(`HyperV2: initialRmsDecays (${kr}) and initialMomentumDecays (${km}) must broadcast`);
    if (!(kf === 1 || km === 1 || kf === km)) throw new Error(`HyperV2: initialAdafactorDecays (${kf}) and initialMomentumDecays (${km}) must broadcast`);
  }

  private decayCounts(): [number, number, number] {
    const c = this.config;
    return [c.initialMomentumDecays.length, c.initialRmsDecays.length, c.initialAdafactorDecays.length];
  }

  /** The per-parameter MLP's inputs in the reference's `_ff_mod` order, with their widths. */
  ffInputs(): FfInput[] {
    const c = this.config;
    const [km, kr, kf] = this.decayCounts();
    const out: FfInput[] = [];
    if (c.withG) out.push({ name: 'g', width: 1 });
    if (c.withGradClipFeat) out.push({ name: 'clip_g', width: 1 });
    if (c.withP) out.push({ name: 'p', width: 1 });
    if (c.withM && c.withMFeat) out.push({ name: 'm', width: km });
    if (c.withRms && c.withRmsFeat) out.push({ name: 'rms', width: kr });
    if (c.withRmsNormG) out.push({ name: 'norm_g', width: bc(km, kr) });
    if (c.withRsqrtRms) out.push({ name: 'rsqrt_rms', width: kr });
    if (c.withFacNormG) out.push({ name: 'fac_g', width: kf });
    if (c.withRmsOnlyNormG) out.push({ name: 'rms_norm_g', width: kr });
    if (c.adafactorAccumulator) {
      if (c.withFacRms) out.push({ name: 'fac_row', width: kf }, { name: 'fac_col', width: kf });
      if (c.withFacRsqrt) out.push({ name: 'fac_rsqrt_row', width: kf }, { name: 'fac_rsqrt_col', width: kf });
      if (c.withFacMomMult) out.push({ name: 'fac_mom_mult', width: bc(km, kf) });
    }
    return out;
  }

  /** Number of LSTM input features per tensor (30 by default). */
  numRnnFeatures(): number {
    const [km, kr] = this.decayCounts();
    // sorted: fraction_left (9), loss_features (9), mean_rms (kr), rank (5), var_m (km), var_rms
    return FRACTION_TIMESCALES.length + (LOSS_BUFFER_SIZE - 1) + kr + 5 + km + bc(km, kr) + (this.config.withValidationFeatureDim ? 1 : 0);
  }

  /** Layer output sizes of the per-parameter MLP: ffHiddenSize × ffHiddenLayers, then 3. */
  ffLayerSizes(): number[] {
    return [...new Array(this.config.ffHiddenLayers).fill(this.config.ffHiddenSize), 3];
  }

  /** `_ff_mod`'s parameters in creation order (haiku, outside any module). */
  private buildFf(hk: HaikuInit): void {
    const inputs = this.ffInputs();
    let last = inputs.reduce((a, i) => a + i.width, 0);
    this.ffLayerSizes().forEach((w, wi) => {
      const init = initializers.truncatedNormal({ stddev: 1 / Math.sqrt(last) });
      if (wi === 0) inputs.forEach((inp, ii) => hk.getParameter('~', `w0__${ii}`, [inp.width, w], init));
      else hk.getParameter('~', `w${wi}`, [last, w], init);
      hk.getParameter('~', `b${wi}`, [w], initializers.zeros());
      last = w;
    });
  }

  /** `_rnn_forward`'s parameters in creation order. */
  private buildRnn(hk: HaikuInit): void {
    const H = this.config.lstmHiddenSize;
    const F = this.numRnnFeatures();
    if (this.config.mixLayers) {
      hk.linear('linear', F, H);
      hk.linear('linear_1', F, H);
      hk.linear('linear_2', F, H);
    }
    const lstmIn = this.config.mixLayers ? H : F;
    hk.linear('rnn/linear', lstmIn + H, 4 * H);
    hk.linear('rnn_to_controls', H, this.config.paramInits);
    hk.linear('step_size', H, 1);
  }

  /**
   * θ as `HyperV2.init(key)`: `key1, key = split(key)`; `paramInits` per-parameter MLPs from
   * `split(key1, paramInits)` (vmapped haiku init); the LSTM's zero initial state; `key1, key =
   * split(key)`; the LSTM network's haiku init from key1.
   */
  init(key: PRNGKey): Theta {
    const H = this.config.lstmHiddenSize;
    const [k1, k2] = random.split(key);
    const ff = haikuInitBatch(random.split(k1, this.config.paramInits), (hk) => this.buildFf(hk));
    const [k3] = random.split(k2);
    const rnn = haikuInit(k3, (hk) => this.buildRnn(hk));
    return {
      lstm_init_state: { hidden: tf.zeros([1, H]), cell: tf.zeros([1, H]) },
      rnn_params: rnn,
      ff_mod_stack: ff,
    };
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): HyperV2Optimizer {
    return new HyperV2Optimizer(this, theta as HyperV2Theta, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }

  /**
   * A HyperV2 with `options` and θ read from a reference `params` file (flax msgpack, as
   * pretrained_optimizers / opt_from_checkpoint load it; see checkpoint.ts). The options must be
   * the checkpoint's configuration (VeLO's: `{ lstmHiddenSize: 512, paramInits: 256,
   * useBuggedLossFeatures: false }`); a mismatch names the leaf and both shapes.
   */
  static fromCheckpoint(bytes: Uint8Array, options: HyperV2Options = {}, source?: string): LoadedLearnedOptimizer & { lopt: HyperV2 } {
    const lopt = new HyperV2(options);
    return { lopt, ...loadLearnedOptimizerCheckpoint(lopt, bytes, { source }) };
  }
}

/** HyperV2's θ: the LSTM's initial state, its weights and the per-parameter MLP's (learned_optimization/learned_optimizers/hyper_v2.py). */
export interface HyperV2Theta {
  lstm_init_state: LSTMState;
  rnn_params: Record<string, { w: tf.Tensor; b: tf.Tensor }>;
  ff_mod_stack: { '~': Record<string, tf.Tensor> };
}

/** `BufferLossAccumulators.init(numSteps)`: halflives `logspace(1, log10(numSteps), 10)`. ns: [N] float. */
function lossBufferInit(ns: tf.Tensor): LossBuffer {
  const n = ns.shape[0];
  const stop = tf.expandDims(tf.div(tf.log(ns), tf.log(tf.scalar(10))), 1); // [N, 1]
  // jnp.linspace(1, stop, 10): 1 + i·(stop − 1)/9 for i < 9, then stop itself
  const delta = tf.div(tf.sub(stop, 1), LOSS_BUFFER_SIZE - 1);
  const steps = tf.tensor2d([Array.from({ length: LOSS_BUFFER_SIZE - 1 }, (_, i) => i)]);
  const lin = tf.concat([tf.add(1, tf.mul(steps, delta)), stop], 1); // [N, 10]
  const halflife = tf.pow(tf.scalar(10), lin);
  return {
    means: tf.zeros([n, LOSS_BUFFER_SIZE]),
    iteration: tf.zeros([n], 'int32'),
    runningMin: tf.fill([n, LOSS_BUFFER_SIZE], 999999999999),
    decays: tf.exp(tf.div(-1, halflife)),
  };
}

/** `decays ** k` for an int32 counter k [N] (as a float power). */
function powCount(decays: tf.Tensor, k: tf.Tensor): tf.Tensor {
  return tf.pow(decays, tf.expandDims(tf.cast(k, 'float32'), 1));
}

/**
 * `round(a·b + c)` in float32 with one rounding, as a fused multiply-add: XLA on CPU fuses the
 * loss buffer's `means·decays + loss·(1 − decays)` into an FMA, and the loss features amplify a
 * one-ulp difference in the means to a different feature (they divide by a 1e-8 floor). Dekker's
 * exact product (Veltkamp split by 2^12 + 1) and Knuth's two-sum give the exact `a·b + c` as
 * `s + (t + e)`, rounded once.
 */
export function fusedMultiplyAdd(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor {
  const split = (x: tf.Tensor): [tf.Tensor, tf.Tensor] => {
    const y = tf.mul(x, 4097);
    const hi = tf.sub(y, tf.sub(y, x));
    return [hi, tf.sub(x, hi)];
  };
  const p = tf.mul(a, b);
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  // e = a·b − p exactly
  const e = tf.add(tf.add(tf.add(tf.sub(tf.mul(ah, bh), p), tf.mul(ah, bl)), tf.mul(al, bh)), tf.mul(al, bl));
  // s + t = p + c exactly
  const sum = tf.add(p, c);
  const bv = tf.sub(sum, p);
  const t = tf.add(tf.sub(p, tf.sub(sum, bv)), tf.sub(c, bv));
  return tf.add(sum, tf.add(t, e));
}

/** `BufferLossAccumulators.update` (batched: loss [N]). */
function lossBufferUpdate(s: LossBuffer, loss: tf.Tensor): LossBuffer {
  const it1 = incCounter(s.iteration);
  const corMean = tf.div(s.means, tf.sub(1, powCount(s.decays, it1)));
  const approxMax = tf.where(tf.equal(s.iteration, 0), loss, tf.max(corMean, 1));
  const l = tf.expandDims(tf.minimum(tf.mul(tf.abs(approxMax), 2), loss), 1);
  const means = fusedMultiplyAdd(s.means, s.decays, tf.mul(l, tf.sub(1, s.decays)));
  const cor = tf.div(means, tf.sub(1, powCount(s.decays, it1)));
  return { means, iteration: it1, runningMin: tf.minimum(s.runningMin, cor), decays: tf.clone(s.decays) };
}

/** `BufferLossAccumulators.features`: [N, 9]. */
function lossBufferFeatures(s: LossBuffer): tf.Tensor {
  const [n, k] = s.means.shape as number[];
  const cor = tf.div(s.means, tf.sub(1, powCount(s.decays, s.iteration)));
  const approxMax = tf.slice(cor, [0, 1], [n, k - 1]);
  const corMean = tf.slice(cor, [0, 0], [n, k - 1]);
  const runningMin = tf.slice(s.runningMin, [0, 0], [n, k - 1]);
  const den = tf.maximum(1e-8, tf.sub(approxMax, runningMin));
  const f = tf.clipByValue(tf.sub(tf.div(tf.sub(corMean, runningMin), den), 1), -1, 1);
  const early = tf.broadcastTo(tf.expandDims(tf.lessEqual(s.iteration, 2), 1), f.shape);
  return tf.where(early, tf.mul(f, 0), f);
}

/** `_clip_log_abs(v, scale=10)`. */
function clipLogAbs(v: tf.Tensor): tf.Tensor {
  return tf.mul(tf.clipByValue(tf.log(tf.add(1e-8, tf.abs(tf.mul(v, 10)))), -5, 5), 0.5);
}

/** The optimizer {@link HyperV2.optFn} returns for a θ. */
export class HyperV2Optimizer implements Optimizer {
  readonly name = 'UnnamedOptimizer';
  constructor(
    readonly lopt: HyperV2,
    readonly theta: HyperV2Theta,
    readonly thetaIsVector: boolean,
  ) {
    for (const k of ['lstm_init_state', 'rnn_params', 'ff_mod_stack'] as const) {
      if (!theta || !(k in theta)) throw new Error(`HyperV2 theta: missing '${k}' (expected lstm_init_state, rnn_params, ff_mod_stack)`);
    }
  }

  private initImpl(params: Params, opts: InitOptions, batched: boolean): HyperV2State {
    const c = this.lopt.config;
    if (opts.numSteps === null || opts.numSteps === undefined) throw new Error('HyperV2: numSteps must be given to init (the reference requires it)');
    return tidy(() => {
      const ctx: BatchCtx = { batched: true };
      const p = batched ? params : treeExpand(params);
      const n = numTasks(p);
      const ns = opts.numSteps as number | tf.Tensor;
      const numSteps = tf.add(zerosCounter(ctx, n), typeof ns === 'number' ? tf.scalar(Math.round(ns), 'int32') : tf.cast(ns, 'int32'));
      const lossBuffer = lossBufferInit(c.useBuggedLossFeatures ? tf.fill([n], LOSS_BUFFER_SIZE) : tf.cast(numSteps, 'float32'));
      const L = treeFlatten(p)[0].length;
      const tile = (x: tf.Tensor) => (this.thetaIsVector ? tf.tile(x, [1, L, 1]) : tf.tile(tf.expandDims(x, 0), [n, L, 1]));
      const [km, kr, kf] = [c.initialMomentumDecays.length, c.initialRmsDecays.length, c.initialAdafactorDecays.length];
      const s: HyperV2State = {
        params: treeClone(p),
        state: treeClone(opts.modelState ?? null),
        rmsRolling: vecRollingRms.init(p, kr, ctx),
        momRolling: vecRollingMom.init(p, km, ctx),
        facRolling: vecFactoredRolling.init(p, kf, ctx),
        iteration: zerosCounter(ctx, n),
        numSteps,
        lstmHiddenState: { hidden: tile(this.theta.lstm_init_state.hidden), cell: tile(this.theta.lstm_init_state.cell) },
        lossBuffer,
      };
      return batched ? s : squeezeState(s);
    });
  }

  init(params: Params, opts: InitOptions = {}): HyperV2State {
    if (this.thetaIsVector) throw new Error('HyperV2: thetaIsVector optimizers work on stacked tasks only; use initBatch');
    return this.initImpl(params, opts, false);
  }
  initBatch(params: Params, opts: InitOptions = {}): HyperV2State {
    return this.initImpl(params, opts, true);
  }

  update(state: OptState, grad: Params, opts: UpdateOptions = {}): HyperV2State {
    if (this.thetaIsVector) throw new Error('HyperV2: thetaIsVector optimizers work on stacked tasks only; use updateBatch');
    return tidy(() => {
      const loss = opts.loss === null || opts.loss === undefined ? null : tf.reshape(toFloatTensor(opts.loss), [1]);
      const out = this.step(expandState(state as HyperV2State), treeExpand(grad), loss);
      return { ...squeezeState(out), state: treeClone(opts.modelState ?? null) };
    });
  }

  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): HyperV2State {
    return tidy(() => {
      const s = state as HyperV2State;
      const n = (s.iteration as tf.Tensor).shape[0];
      const loss = opts.loss === null || opts.loss === undefined ? null : tf.broadcastTo(toFloatTensor(opts.loss), [n]);
      return { ...this.step(s, grad, loss), state: treeClone(opts.modelState ?? null) };
    });
  }

  /** `x @ w + b` over [N, rows, in] with shared (w [in, out]) or per-task (w [N, in, out]) weights. */
  private linear(x: tf.Tensor, l: { w: tf.Tensor; b: tf.Tensor }): tf.Tensor {
    const [n, r, i] = x.shape as number[];
    if (this.thetaIsVector) return tf.add(tf.matMul(x, l.w), tf.expandDims(l.b, 1));
    const o = l.w.shape[1] as number;
    return tf.reshape(tf.add(tf.matMul(tf.reshape(x, [n * r, i]), l.w), l.b), [n, r, o]);
  }

  /** `lstm_features_for_tensor` for every leaf: [N, L, F]. m, rms are the previous accumulators. */
  private rnnInputs(ps: tf.Tensor[], ms: tf.Tensor[], rs: tf.Tensor[], fractionTrained: tf.Tensor, lossFeatures: tf.Tensor): tf.Tensor {
    const c = this.lopt.config;
    const n = fractionTrained.shape[0];
    const fractionLeft = tf.tanh(tf.mul(tf.sub(tf.expandDims(fractionTrained, 1), tf.tensor1d(FRACTION_TIMESCALES)), 10)); // [N, 9]
    const rows = ps.map((p, l) => {
      const size = p.size / n;
      // one native pass over the leaf where it runs (per_param_native.ts), else these tf.js ops
      const { meanRms, varM, varRms } =
        tensorStatsNative(p, ms[l], rs[l]) ??
        (() => {
          const p2 = tf.reshape(p, [n, size]);
          const normMult = tf.reshape(tf.rsqrt(tf.maximum(1e-9, tf.mean(tf.square(p2), 1))), [n, 1, 1]);
          const m = tf.mul(tf.reshape(ms[l], [n, size, -1]), normMult);
          const rms = tf.mul(tf.reshape(rs[l], [n, size, -1]), normMult);
          const meanM = tf.mean(m, 1, true);
          return {
            varM: tf.mean(tf.square(tf.sub(m, meanM)), 1),
            meanRms: tf.mean(rms, 1),
            // (sic) the reference centres the RMS on the momentum's mean
            varRms: tf.mean(tf.square(tf.sub(rms, meanM)), 1),
          };
        })();
      const nRank = p.shape.slice(1).filter((d) => d > 1).length;
      const rank = tf.tile(tf.tensor2d([Array.from({ length: 5 }, (_, i) => (i === nRank ? 1 : 0))]), [n, 1]);
      const parts = [fractionLeft, lossFeatures, clipLogAbs(meanRms), rank, clipLogAbs(varM), clipLogAbs(varRms)];
      if (c.withValidationFeatureDim) parts.push(tf.fill([n, 1], c.validationMode ? 1 : 0));
      return tf.concat(parts, 1);
    });
    return tf.stack(rows, 1);
  }

  /** `_rnn_forward`: controls [N, L, paramInits], lrMult [N, L], next LSTM state. */
  private rnnForward(x: tf.Tensor, h: LSTMState): { controls: tf.Tensor; lrMult: tf.Tensor; next: LSTMState } {
    const rp = this.theta.rnn_params;
    const c = this.lopt.config;
    if (c.mixLayers) {
      // (sic) the first mixing layer ('linear') is computed and discarded by the reference.
      const mix = tf.relu(this.linear(x, rp.linear_1));
      const v = tf.max(mix, 1, true); // over the tensors of a task
      x = tf.add(this.linear(x, rp.linear_2), v);
    }
    const gated = this.linear(tf.concat([x, h.hidden], 2), rp['rnn/linear']);
    const [i, g, f, o] = tf.split(gated, 4, 2);
    const fg = tf.sigmoid(tf.add(f, 1));
    const cell = tf.add(tf.mul(fg, h.cell), tf.mul(tf.sigmoid(i), tf.tanh(g)));
    const hidden = tf.mul(tf.sigmoid(o), tf.tanh(cell));
    const controls = this.linear(hidden, rp.rnn_to_controls);
    const lr = this.linear(hidden, rp.step_size);
    const [n, L] = lr.shape as number[];
    return { controls, lrMult: tf.reshape(lr, [n, L]), next: { hidden, cell } };
  }

  /** The per-parameter MLP weights of every tensor: [N, L, D], `100·mean_k(c_k · θ_k)`. */
  private interpolate(controls: tf.Tensor): { flat: tf.Tensor; pieces: { name: string; shape: number[] }[] } {
    const ff = this.theta.ff_mod_stack['~'];
    const names: string[] = [];
    this.lopt.ffInputs().forEach((_, ii) => names.push(`w0__${ii}`));
    names.push('b0');
    this.lopt.ffLayerSizes().forEach((_, wi) => {
      if (wi > 0) names.push(`w${wi}`, `b${wi}`);
    });
    const lead = this.thetaIsVector ? 2 : 1;
    const pieces = names.map((name) => {
      const t = ff[name];
      if (!t) throw new Error(`HyperV2 theta: ff_mod_stack['~'] lacks '${name}'`);
      return { name, shape: t.shape.slice(lead) };
    });
    const P = this.lopt.config.paramInits;
    const [n, L] = controls.shape as number[];
    const stack = tf.concat(names.map((k) => tf.reshape(ff[k], this.thetaIsVector ? [n, P, -1] : [P, -1])), this.thetaIsVector ? 2 : 1);
    const D = stack.shape[stack.rank - 1];
    const mixed = this.thetaIsVector ? tf.matMul(controls, stack) : tf.reshape(tf.matMul(tf.reshape(controls, [n * L, P]), stack), [n, L, D]);
    return { flat: tf.mul(mixed, 100 / P), pieces };
  }

  /**
   * One leaf's per-parameter MLP inputs as the native kernel takes them (per_param_native.ts): the
   * inputs of `_ff_mod` in its order, as the tf.js form in `step` builds them, the full-size ones
   * as formulas of the leaf's arrays (`p`, the clipped gradient `g`, the new momenta `m`, RMS `rms`
   * and diagonal accumulator `diag`), the Adafactor row / column ones at their factored size.
   */
  private nativeLeaf(
    p: tf.Tensor,
    g: tf.Tensor,
    m: tf.Tensor,
    rms: tf.Tensor,
    diag: tf.Tensor,
    rows: tf.Tensor,
    cols: tf.Tensor,
    factors: { rowFactor: tf.Tensor; colFactor: tf.Tensor; d0: number; d1: number } | null,
  ): PerParamNativeLeaf {
    const c = this.lopt.config;
    const [km, kr, kf] = [m.shape[m.rank - 1], rms.shape[rms.rank - 1], rows.shape[rows.rank - 1]];
    const [n, ...shp] = p.shape;
    const S = Math.max(1, shp.reduce((a, b) => a * b, 1));
    const flatC = (t: tf.Tensor) => tf.reshape(t, [n, S, -1]);
    const [gF, pF, mF, rF] = [g, p, m, rms].map(flatC);
    const inputs: PerParamNativeLeaf['inputs'] = [];
    const copy = (a: tf.Tensor, width: number) => inputs.push({ op: 'copy', a, width });
    if (c.withG) copy(gF, 1);
    if (c.withGradClipFeat) inputs.push({ op: 'clip', a: gF, eps: 0.1, width: 1 });
    if (c.withP) copy(pF, 1);
    if (c.withM && c.withMFeat) copy(mF, km);
    if (c.withRms && c.withRmsFeat) copy(rF, kr);
    if (c.withRmsNormG) inputs.push({ op: 'mulRsqrt', a: mF, b: rF, eps: 1e-6, width: bc(km, kr) });
    if (c.withRsqrtRms) inputs.push({ op: 'rsqrt', a: rF, eps: 1e-6, width: kr });
    const vF = factors ? null : flatC(diag);
    // fac_g: g · rowFactor · colFactor, or g · safe_rsqrt(v + 1e-9) (vec_factored_rolling)
    if (c.withFacNormG) inputs.push(factors ? { op: 'mulFactors', a: gF, width: kf } : { op: 'mulSafeRsqrt', a: gF, b: vF!, eps: 1e-9, width: kf });
    if (c.withRmsOnlyNormG) inputs.push({ op: 'mulRsqrt', a: gF, b: rF, eps: 1e-6, width: kr });
    if (c.adafactorAccumulator) {
      if (factors) {
        const { d0, d1 } = factors;
        const factored = (t: tf.Tensor, at: number) => inputs.push({ x: tf.reshape(t, [n, -1, t.shape[t.rank - 1]]), broadcastAt: at, shape: t.shape.slice(1, -1) });
        if (c.withFacRms) {
          factored(rows, d0);
          factored(cols, d1);
        }
        if (c.withFacRsqrt) {
          factored(tf.rsqrt(tf.add(rows, 1e-8)), d0);
          factored(tf.rsqrt(tf.add(cols, 1e-8)), d1);
        }
        if (c.withFacMomMult) inputs.push({ op: 'mulFactors', a: mF, width: bc(km, kf) });
      } else {
        if (c.withFacRms) {
          copy(vF!, kf);
          copy(vF!, kf);
        }
        if (c.withFacRsqrt) inputs.push({ op: 'rsqrt', a: vF!, eps: 1e-8, width: kf }, { op: 'rsqrt', a: vF!, eps: 1e-8, width: kf });
        // (sic) no epsilon: v ** -0.5
        if (c.withFacMomMult) inputs.push({ op: 'mulRsqrt', a: mF, b: vF!, eps: 0, width: bc(km, kf) });
      }
    }
    const usesFactors = factors && inputs.some((x) => (x as { op?: string }).op === 'mulFactors');
    return { leafShape: p.shape, inputs, factors: usesFactors ? { row: factors.rowFactor, col: factors.colFactor, d0: factors.d0, d1: factors.d1 } : undefined };
  }

  /** Batched update (leading task axis on every leaf). Call inside a tidy. */
  private step(s: HyperV2State, grad: Params, lossIn: tf.Tensor | null): HyperV2State {
    const c = this.lopt.config;
    const ctx: BatchCtx = { batched: true };
    const n = (s.iteration as tf.Tensor).shape[0];
    let loss = lossIn;
    if (c.constantLoss) loss = tf.ones([n]);
    if (loss === null) throw new Error('HyperV2: update needs a loss (the reference asserts loss is not None)');
    const nextLossBuffer = lossBufferUpdate(s.lossBuffer, loss);
    const lossFeatures = lossBufferFeatures(nextLossBuffer);
    const grads = treeMap((g: tf.Tensor) => tf.clipByValue(g, -1000, 1000), grad);

    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const gs = treeFlatten<tf.Tensor>(grads)[0];
    const fractionTrained = tf.div(tf.cast(s.iteration, 'float32'), tf.cast(s.numSteps, 'float32'));

    const [km, kr, kf] = [c.initialMomentumDecays, c.initialRmsDecays, c.initialAdafactorDecays].map((d) => tf.tensor1d(d));
    const mom = vecRollingMom.update(s.momRolling, grads, km, ctx);
    const rms = vecRollingRms.update(s.rmsRolling, grads, kr, ctx);
    // the native kernel computes fac_g itself, from the factors (no [N, S, k] array)
    const native = perParamNativeUsable();
    const [fac, facG] = vecFactoredRolling.update(s.facRolling, grads, kf, ctx, 1e-30, !native);
    const base = {
      params: treeClone(s.params),
      state: null,
      rmsRolling: rms,
      momRolling: mom,
      facRolling: fac,
      iteration: incCounter(s.iteration),
      numSteps: tf.clone(s.numSteps),
      lstmHiddenState: { hidden: tf.clone(s.lstmHiddenState.hidden), cell: tf.clone(s.lstmHiddenState.cell) },
      lossBuffer: nextLossBuffer,
    };
    if (ps.length === 0) return base;

    const x = this.rnnInputs(ps, treeFlatten<tf.Tensor>(s.momRolling.m)[0], treeFlatten<tf.Tensor>(s.rmsRolling.rms)[0], fractionTrained, lossFeatures);
    const { controls, lrMult, next } = this.rnnForward(x, s.lstmHiddenState);
    let hiddenState = c.useBuggedNextLstmState ? base.lstmHiddenState : next;
    if (c.rnnStateDecay > 0) hiddenState = { hidden: tf.mul(hiddenState.hidden, 1 - c.rnnStateDecay), cell: tf.mul(hiddenState.cell, 1 - c.rnnStateDecay) };

    const { flat, pieces } = this.interpolate(controls);
    const { ms, rs, fgs, rows, cols, diags } = accumulatorLeaves(mom, rms, facG, fac);
    const weightsOf = (l: number): Record<string, tf.Tensor> => {
      const row = tf.reshape(tf.slice(flat, [0, l, 0], [n, 1, -1]), [n, -1]);
      const out: Record<string, tf.Tensor> = {};
      let off = 0;
      for (const pc of pieces) {
        const size = pc.shape.reduce((a, b) => a * b, 1);
        out[pc.name] = tf.reshape(tf.slice(row, [0, off], [n, size]), [n, ...pc.shape]);
        off += size;
      }
      return out;
    };

    const newPs = ps.map((p, l) => {
      const shp = p.shape.slice(1);
      const S = Math.max(1, shp.reduce((a, b) => a * b, 1));
      const flatC = (t: tf.Tensor) => tf.reshape(t, [n, S, -1]);
      const g = gs[l];
      const m = ms[l];
      const fd = factoredDims(shp);
      const factors = fd ? { ...factoredFactors(rows[l], cols[l], fd[1], fd[0], 1), d0: fd[1], d1: fd[0] } : null;
      const f = c.adafactorAccumulator ? fd : null;
      const w = weightsOf(l);
      const sizes = this.lopt.ffLayerSizes();
      const last = sizes.length - 1;
      const w0 = tf.concat(this.lopt.ffInputs().map((_, ii) => w[`w0__${ii}`]), 1);
      const layers = sizes.map((_, wi) => (wi === 0 ? { w: w0, b: w.b0 } : { w: w[`w${wi}`], b: w[`b${wi}`] }));
      // direction and magnitude, [N, S]: the native kernel, or the readable tf.js form
      let paramScale = tf.sqrt(tf.add(tf.mean(tf.square(tf.reshape(p, [n, S])), 1, true), 1e-9)); // [N, 1]
      if (c.clipParamScaleAmount !== null) paramScale = tf.minimum(paramScale, c.clipParamScaleAmount * Math.sqrt(shp.reduce((a, b) => a * b, 1)));
      const lrMultL = tf.slice(lrMult, [0, l], [n, 1]); // [N, 1]
      const nativeLeaf = () => this.nativeLeaf(p, g, m, rs[l], diags[l], rows[l], cols[l], factors);
      if (native && !c.preconditionOutput) {
        // the whole update in the kernel where it runs: p − d·exp(m·expMult)·(lrMult·paramScale·stepMult)
        const scale = tf.reshape(tf.mul(lrMultL, c.paramScaleMult ? tf.mul(paramScale, c.stepMult) : c.stepMult), [n]);
        const updated = perParamMLPNative(nativeLeaf(), w0, w.b0, layers, [0, 1], true, { p: tf.reshape(p, [n, S]), scale, expMult: c.expMult });
        if (updated) return tf.reshape(updated[0], p.shape);
      }
      const [direction, magnitude] =
        perParamMLPNative(nativeLeaf(), w0, w.b0, layers, [0, 1], true) ??
        (() => {
          const rsq = tf.rsqrt(tf.add(rs[l], 1e-6));
          // The MLP's inputs in `_ff_mod`'s order (input i meets weights w0__i), each [N, S, k] or, for
          // the Adafactor row/column features, the small factored tensor and the axis it is constant along.
          const inps: PerParamInput[] = [];
          const full = (t: tf.Tensor) => inps.push({ x: flatC(t) });
          if (c.withG) full(g);
          if (c.withGradClipFeat) full(tf.clipByValue(g, -0.1, 0.1));
          if (c.withP) full(p);
          if (c.withM && c.withMFeat) full(m);
          if (c.withRms && c.withRmsFeat) full(rs[l]);
          if (c.withRmsNormG) full(tf.mul(m, rsq));
          if (c.withRsqrtRms) full(rsq);
          if (c.withFacNormG) full(fgs ? fgs[l] : facGrad(g, factors, diags[l], 1));
          if (c.withRmsOnlyNormG) full(tf.mul(tf.expandDims(g, -1), rsq));
          if (c.adafactorAccumulator) {
            if (f) {
              const [d1, d0] = f;
              const row = { t: rows[l], at: d0 }; // rows[l] lacks axis d0 of the leaf: constant along it
              const col = { t: cols[l], at: d1 };
              const factored = (x: { t: tf.Tensor; at: number }) => inps.push({ x: tf.reshape(x.t, [n, -1, x.t.shape[x.t.rank - 1]]), broadcastAt: x.at, shape: x.t.shape.slice(1, -1) });
              if (c.withFacRms) [row, col].forEach(factored);
              if (c.withFacRsqrt) [row, col].forEach((x) => factored({ t: tf.rsqrt(tf.add(x.t, 1e-8)), at: x.at }));
              if (c.withFacMomMult) full(tf.mul(tf.mul(m, tf.expandDims(factors!.rowFactor, d0 + 1)), tf.expandDims(factors!.colFactor, d1 + 1)));
            } else {
              const v = flatC(diags[l]);
              if (c.withFacRms) inps.push({ x: v }, { x: v });
              if (c.withFacRsqrt) {
                const rv = tf.rsqrt(tf.add(v, 1e-8));
                inps.push({ x: rv }, { x: rv });
              }
              // (sic) no epsilon: v ** -0.5
              if (c.withFacMomMult) full(tf.mul(flatC(m), tf.pow(v, -0.5)));
            }
          }
          let o = perParamFirstLayer(inps, w0, w.b0, [n, ...shp]); // [N, S, hid]
          for (let wi = 1; wi < last; wi++) o = tf.add(tf.matMul(tf.relu(o), w[`w${wi}`]), tf.expandDims(w[`b${wi}`], 1));
          // Output j of the last layer ([N, S]). Of its three outputs `_ff_mod` uses two (direction,
          // magnitude); each is computed from its own weight column, so no [N, S, 3] array is sliced.
          const h = last === 0 ? o : tf.relu(o);
          const output = (j: number): tf.Tensor => {
            if (last === 0) return tf.reshape(tf.slice(o, [0, 0, j], [n, S, 1]), [n, S]);
            const wj = tf.slice(w[`w${last}`], [0, 0, j], [n, -1, 1]);
            const bj = tf.reshape(tf.slice(w[`b${last}`], [0, j], [n, 1]), [n, 1, 1]);
            return tf.reshape(tf.add(tf.matMul(h, wj), bj), [n, S]);
          };
          return [output(0), output(1)];
        })();
      const magParam = tf.exp(tf.mul(magnitude, c.expMult));
      let step = c.paramScaleMult ? tf.mul(tf.mul(direction, tf.mul(paramScale, magParam)), c.stepMult) : tf.mul(tf.mul(direction, magParam), c.stepMult);
      step = tf.mul(lrMultL, step);
      if (c.preconditionOutput) {
        const kLast = rs[l].shape[rs[l].rank - 1];
        const last = tf.reshape(tf.slice(flatC(rs[l]), [0, 0, kLast - 1], [n, S, 1]), [n, S]);
        step = tf.mul(step, tf.rsqrt(tf.add(last, 1e-6)));
      }
      return tf.sub(p, tf.reshape(step, p.shape));
    });
    return { ...base, params: treeUnflatten(def, newPs), lstmHiddenState: hiddenState };
  }

  getParams(state: OptState): Params {
    return state.params;
  }
  getState(state: OptState): PyTree | null {
    return state.state ?? null;
  }
}

function mapState(s: HyperV2State, f: (t: tf.Tensor) => tf.Tensor, tree: (t: PyTree) => PyTree): HyperV2State {
  return {
    params: tree(s.params),
    state: null,
    rmsRolling: { rms: tree(s.rmsRolling.rms), t: f(s.rmsRolling.t) },
    momRolling: { m: tree(s.momRolling.m), t: f(s.momRolling.t) },
    facRolling: { vCol: tree(s.facRolling.vCol), vRow: tree(s.facRolling.vRow), vDiag: tree(s.facRolling.vDiag) },
    iteration: f(s.iteration),
    numSteps: f(s.numSteps),
    lstmHiddenState: { hidden: f(s.lstmHiddenState.hidden), cell: f(s.lstmHiddenState.cell) },
    lossBuffer: { means: f(s.lossBuffer.means), iteration: f(s.lossBuffer.iteration), runningMin: f(s.lossBuffer.runningMin), decays: f(s.lossBuffer.decays) },
  };
}

function expandState(s: HyperV2State): HyperV2State {
  return mapState(s, (t) => tf.expandDims(t, 0), treeExpand);
}

function squeezeState(s: HyperV2State): HyperV2State {
  return { ...mapState(s, (t) => tf.squeeze(t, [0]), treeSqueeze), state: s.state };
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'HyperV2',
  description: "VeLO's architecture: a per-tensor LSTM that mixes per-parameter MLP weight sets (hypernetwork)",
  schema: HyperV2Schema,
  create: (c) => new HyperV2(c),
  cls: HyperV2,
});
