/**
 * RNNMLPLOpt (reference `learned_optimizers/rnn_mlp_lopt.py`, `RNNMLPLOpt`; Metz et al. 2020,
 * arXiv:2009.11243): a hierarchical learned optimizer. A per-tensor LSTM reads 18 summary features
 * of every tensor (plus what the per-parameter MLP and the LSTM itself sent back last step) and
 * conditions a per-parameter MLP that makes the step:
 * `p ← p − direction · exp(magnitude · magnitudeRate) · stepMultiplier`.
 *
 * θ (the reference's dict and haiku names; with the defaults):
 * ```
 * { initial_from_lstm: [18], initial_from_mlp: [16],
 *   lstm_init_state: { hidden: [1, 64], cell: [1, 64] },          (zeros)
 *   rnn_params: { 'rnn/linear': { w: [116, 256], b: [256] } },     (hk.LSTM(64, name='rnn'))
 *   rnn_to_ff_params: { rnn_to_ff: { w: [64, 17], b: [17] } },
 *   rnn_to_in_params: { rnn_to_in: { w: [64, 18], b: [18] } },
 *   ffmod_params: { 'mlp/~/linear_0': { w: [54, 32], b }, 'mlp/~/linear_1': { w: [32, 32], b },
 *                   'mlp/~/linear_2': { w: [32, 18], b: [18] } } }
 * ```
 * with thetaIsVector every leaf has a leading task axis [N].
 *
 * Optimizer state (the reference's `RNNMLPLOptState`, camelCase):
 * ```
 * { params, momRolling: { m: leaf + [K], t: int32 [K] }, rmsRolling: { rms: leaf + [K], t: int32 [K] },
 *   iteration: int32 [], state: modelState | null,
 *   lstmHiddenState: { hidden: [L, H], cell: [L, H] }   (L = number of params leaves, in tree order),
 *   fromMlp: <params tree, [fromMlpSize] per leaf>, fromLstm: [fromLstmSize],
 *   trainLossAccum: { mean: [], var: [], updates: int32 [] }, validLossAccum: (same),
 *   dynamicClip: { iteration: float32 [], value: float32 [] } }
 * batched: a leading [N] on every entry
 * ```
 *
 * Quirks of the reference, kept: `iteration` counts validation updates too (and the time feature
 * is the iteration *before* the update); a validation update (`isValid`) only moves the validation
 * loss normaliser and the iteration, and keeps the old model state; the validation-loss feature is
 * the validation normaliser's corrected mean normalised by the *training* loss statistics (and is
 * 0·1e8 = 0 before any validation update); `init` builds the train accumulator with the validation
 * normaliser and vice versa (harmless: both start at zeros); the gradient is clipped by the dynamic
 * clipper before the moments and every feature see it; the reference's 'dynamic_grad_clip' summary
 * has no counterpart here (lopt-ts optimizers emit no summaries); `init` sizes the per-parameter MLP
 * for 37 features whatever `decays` holds (right for 5 decays), so with another number of decays
 * the reference's update fails, and so does this one (with an error saying so).
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, initializers, parseOptions, random, registerPlugin, treeFlatten, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta, UpdateOptions } from './base';
import { BatchCtx, incCounter, linear, lstmStep, MomAccumulator, numTasks, RMSAccumulator, secondMomentNormalize, tidy, treeClone, vecRollingMom, vecRollingRms, zerosCounter } from './common';
import { BatchedOptimizer } from './batched_optimizer';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import type { Linear } from './per_param_mlp';

/** `_LossNormalizerState`. */
export interface LossNormalizerState {
  mean: tf.Tensor;
  var: tf.Tensor;
  updates: tf.Tensor;
}

/** `_DynamicGradientClipperState` (both float32). */
export interface DynamicClipState {
  iteration: tf.Tensor;
  value: tf.Tensor;
}

/**
 * State of {@link RNNMLPLOptOptimizer}: params, accumulators, iteration, model state, the LSTM state, what
 * the MLP and LSTM fed back, the train/valid loss normalisers and the dynamic clip (reference
 * `rnn_mlp_lopt.py`, `RNNMLPLOptState`).
 */
export interface RNNMLPLOptState extends OptState {
  params: Params;
  momRolling: MomAccumulator;
  rmsRolling: RMSAccumulator;
  iteration: tf.Tensor;
  state: PyTree | null;
  lstmHiddenState: { hidden: tf.Tensor; cell: tf.Tensor };
  fromMlp: PyTree;
  fromLstm: tf.Tensor;
  trainLossAccum: LossNormalizerState;
  validLossAccum: LossNormalizerState;
  dynamicClip: DynamicClipState;
}

/** RNNMLPLOpt's options and their defaults (the reference's `RNNMLPLOpt.__init__`). */
export const RNNMLPLOptSchema = z
  .object({
    stepMultiplier: z.number().default(0.001),
    magnitudeRate: z.number().default(0.001),
    hiddenSize: z.number().int().positive().default(32),
    hiddenLayer: z.number().int().min(0).default(2),
    fromMlpSize: z.number().int().positive().default(16),
    fromLstmSize: z.number().int().positive().default(18),
    lstmToFf: z.number().int().positive().default(17),
    lstmHiddenSize: z.number().int().positive().default(64),
    decays: z.array(z.number()).nonempty().default([0.5, 0.9, 0.99, 0.999, 0.9999]),
  })
  .strict();
/** The options `new RNNMLPLOpt(opts)` takes (see `RNNMLPLOptSchema`). */
export type RNNMLPLOptOptions = z.input<typeof RNNMLPLOptSchema>;

/** Number of per-tensor features `lstm_features_for_tensor` makes besides from_mlp / from_lstm. */
const TENSOR_FEATURES = 18;
/**
 * Number of per-parameter features `mlp_features_for_tensor` makes besides the LSTM's, as the
 * reference's `init` hard-codes it: 3 + 4·5 + 11 + 3, right for 5 decays only.
 */
const FEED_FORWARD_FEATURES = 37;
/** The number of decays FEED_FORWARD_FEATURES assumes. */
const NUM_DECAYS_ASSUMED = 5;
/** `_sin_embedding`'s time scales. */
const SIN_TIMESCALES = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000];
const TRAIN_LOSS_DECAY = 0.9;
const VALID_LOSS_DECAY = 0.95;
const CLIP_ALPHA = 0.99;
const CLIP_MULT = 10;

interface RNNMLPTheta {
  initial_from_lstm: tf.Tensor;
  initial_from_mlp: tf.Tensor;
  lstm_init_state: { hidden: tf.Tensor; cell: tf.Tensor };
  rnn_params: { 'rnn/linear': Linear };
  rnn_to_ff_params: { rnn_to_ff: Linear };
  rnn_to_in_params: { rnn_to_in: Linear };
  ffmod_params: Record<string, Linear>;
}

/**
 * The RNNMLPLOpt hierarchical learned optimizer (reference `learned_optimizers/rnn_mlp_lopt.py`,
 * `RNNMLPLOpt`): a per-tensor LSTM conditioning a per-parameter MLP.
 */
export class RNNMLPLOpt implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly stepMultiplier: number;
  readonly magnitudeRate: number;
  readonly hiddenSize: number;
  readonly hiddenLayer: number;
  readonly fromMlpSize: number;
  readonly fromLstmSize: number;
  readonly lstmToFf: number;
  readonly lstmHiddenSize: number;
  readonly decays: number[];

  constructor(opts: RNNMLPLOptOptions = {}) {
    const c = parseOptions(RNNMLPLOptSchema, opts, 'RNNMLPLOpt');
    this.stepMultiplier = c.stepMultiplier;
    this.magnitudeRate = c.magnitudeRate;
    this.hiddenSize = c.hiddenSize;
    this.hiddenLayer = c.hiddenLayer;
    this.fromMlpSize = c.fromMlpSize;
    this.fromLstmSize = c.fromLstmSize;
    this.lstmToFf = c.lstmToFf;
    this.lstmHiddenSize = c.lstmHiddenSize;
    this.decays = c.decays;
  }

  /** Width of the LSTM's input (52 by default). */
  rnnInputSize(): number {
    return TENSOR_FEATURES + this.fromLstmSize + this.fromMlpSize;
  }

  /** Width of the per-parameter MLP's input as `init` makes it (54 by default; assumes 5 decays, see below). */
  mlpInputSize(): number {
    return FEED_FORWARD_FEATURES + this.lstmToFf;
  }

  /**
   * `RNNMLPLOpt.init`: `split(key, 6)`; the two initial messages are VarianceScaling() draws
   * (fan_in = their length, truncated normal) from keys 1 and 2, the LSTM (key 3) and the two
   * projections (keys 4, 5) are haiku Linears, the per-parameter MLP is `hk.nets.MLP` (key 6).
   */
  init(key: PRNGKey): Theta {
    const [k1, k2, k3, k4, k5, k6] = random.split(key, 6);
    const H = this.lstmHiddenSize;
    const vector = (k: PRNGKey, n: number) => haikuInit(k, (hk) => hk.getParameter('~', 'x', [n], initializers.varianceScaling()))['~'].x;
    const rnn = haikuInit(k3, (hk) => hk.linear('rnn/linear', this.rnnInputSize() + H, 4 * H));
    const toFf = haikuInit(k4, (hk) => hk.linear('rnn_to_ff', H, this.lstmToFf));
    const toIn = haikuInit(k5, (hk) => hk.linear('rnn_to_in', H, this.fromLstmSize));
    const mlp = haikuInit(k6, (hk) => hk.mlp(this.mlpInputSize(), [...new Array(this.hiddenLayer).fill(this.hiddenSize), 2 + this.fromMlpSize]));
    return {
      initial_from_lstm: vector(k1, this.fromLstmSize),
      initial_from_mlp: vector(k2, this.fromMlpSize),
      lstm_init_state: { hidden: tf.zeros([1, H]), cell: tf.zeros([1, H]) },
      rnn_params: rnn,
      rnn_to_ff_params: toFf,
      rnn_to_in_params: toIn,
      ffmod_params: mlp,
    };
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new RNNMLPLOptOptimizer(this, theta as unknown as RNNMLPTheta, thetaIsVector);
  }

  /** This learned optimizer as a `tf.Optimizer` (tfjs_adapter.ts); its update needs the loss: use it through `minimize` / `model.fit` (a bare `applyGradients` has none). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

// ------------------------------------------------------------------------------------------------
// Pieces of the update, on N stacked tasks (every tensor has the task axis first).

/** `_LossNormalizer.next_state`: EMA of the loss and of its squared deviation from the new mean. */
function lossNext(s: LossNormalizerState, loss: tf.Tensor, decay: number): LossNormalizerState {
  const mean = tf.add(tf.mul(s.mean, decay), tf.mul(loss, 1 - decay));
  const v = tf.add(tf.mul(s.var, decay), tf.mul(tf.square(tf.sub(mean, loss)), 1 - decay));
  return { mean, var: v, updates: incCounter(s.updates) };
}

/** `1 / (1 − decay^updates + 1e-8)`: the bias correction of both normaliser moments. */
function lossCorrection(s: LossNormalizerState, decay: number): tf.Tensor {
  const p = tf.pow(tf.scalar(decay), tf.cast(s.updates, 'float32'));
  return tf.div(1, tf.add(tf.sub(1, p), 1e-8));
}

/** `_LossNormalizer.weight_loss`: clip((loss − mean) / √(var + 1e-8), −5, 5), bias-corrected moments. */
function lossWeight(s: LossNormalizerState, loss: tf.Tensor, decay: number): tf.Tensor {
  const c = lossCorrection(s, decay);
  const l = tf.mul(tf.sub(loss, tf.mul(s.mean, c)), tf.rsqrt(tf.add(tf.mul(s.var, c), 1e-8)));
  return tf.clipByValue(l, -5, 5);
}

/** `_clip_log_abs`: clip(log(1e-8 + |x|), −5, 5). */
function clipLogAbs(x: tf.Tensor): tf.Tensor {
  return tf.clipByValue(tf.log(tf.add(tf.abs(x), 1e-8)), -5, 5);
}

/** `x` `[N, ...]` as `[N, rest]`. */
function rows(x: tf.Tensor, N: number): tf.Tensor {
  return tf.reshape(x, [N, -1]);
}

/** `‖x‖₂` of each task's values (jnp.linalg.norm with no axis: Frobenius / flattened): `[N]`. */
function normRows(x2: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(x2), 1));
}

/** `_sin_embedding`: sin(iteration / (τ·π)) for the 11 time scales: `[N]` -> `[N, 11]`. */
function sinEmbedding(iteration: tf.Tensor): tf.Tensor {
  const denom = tf.mul(tf.tensor1d(SIN_TIMESCALES), Math.PI);
  return tf.sin(tf.div(tf.expandDims(tf.cast(iteration, 'float32'), 1), denom));
}

/** The optimizer {@link RNNMLPLOpt.optFn} returns for a θ. */
export class RNNMLPLOptOptimizer extends BatchedOptimizer<RNNMLPLOptState> {
  constructor(
    readonly lopt: RNNMLPLOpt,
    readonly theta: RNNMLPTheta,
    readonly thetaIsVector: boolean,
  ) {
    super('RNNMLPLOpt');
    const keys = ['initial_from_lstm', 'initial_from_mlp', 'lstm_init_state', 'rnn_params', 'rnn_to_ff_params', 'rnn_to_in_params', 'ffmod_params'] as const;
    for (const k of keys) {
      if (!theta || !(k in theta)) throw new Error(`RNNMLPLOpt theta: missing '${k}' (expected ${keys.join(', ')})`);
    }
    for (let i = 0; i <= lopt.hiddenLayer; i++) {
      if (!theta.ffmod_params[`mlp/~/linear_${i}`]) throw new Error(`RNNMLPLOpt theta: missing ffmod_params 'mlp/~/linear_${i}'`);
    }
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): RNNMLPLOptState {
    return tidy(() => {
      const ctx: BatchCtx = { batched };
      const l = this.lopt;
      const th = this.theta;
      const [leaves, def] = treeFlatten<tf.Tensor>(params);
      const L = leaves.length;
      const N = batched ? numTasks(params) : 0;
      const lead = batched ? [N] : [];
      // θ leaves as [N, ...] in the batched form (shared: broadcast; per task: as they are)
      const forTasks = (t: tf.Tensor, shape: number[]) => (batched ? tf.broadcastTo(t, [N, ...shape]) : tf.clone(t));
      const tile = (t: tf.Tensor) => {
        // lstm_init_state [1, H] (per task [N, 1, H]) tiled to one row per params leaf
        const H = t.shape[t.rank - 1];
        return batched ? tf.broadcastTo(this.thetaIsVector ? t : tf.reshape(t, [1, 1, H]), [N, L, H]) : tf.tile(t, [L, 1]);
      };
      const zeros = () => tf.zeros(lead);
      const lossAccum = (): LossNormalizerState => ({ mean: zeros(), var: zeros(), updates: zerosCounter(ctx, N) });
      return {
        params: treeClone(params),
        momRolling: vecRollingMom.init(params, l.decays.length, ctx),
        rmsRolling: vecRollingRms.init(params, l.decays.length, ctx),
        iteration: zerosCounter(ctx, N),
        state: treeClone(opts.modelState ?? null),
        lstmHiddenState: { hidden: tile(th.lstm_init_state.hidden), cell: tile(th.lstm_init_state.cell) },
        fromMlp: treeUnflatten(def, leaves.map(() => forTasks(th.initial_from_mlp, [l.fromMlpSize]))),
        fromLstm: forTasks(th.initial_from_lstm, [l.fromLstmSize]),
        trainLossAccum: lossAccum(),
        validLossAccum: lossAccum(),
        dynamicClip: { iteration: tf.fill(lead, 1), value: tf.fill(lead, Math.fround(1) * (1 - CLIP_ALPHA)) },
      };
    });
  }

  /** A validation update (`isValid`) keeps the old model state. */
  protected override nextModelState(s: RNNMLPLOptState, opts: UpdateOptions): PyTree | null {
    return opts.isValid ? (s.state ?? null) : (opts.modelState ?? null);
  }

  /**
   * `_Opt.update` on N stacked tasks (the reference's update vmapped), `opts.loss` a number, `[]` or
   * `[N]`. Returns the state without the model state (the caller sets it). Call inside a tidy.
   */
  protected step(s: RNNMLPLOptState, grad: Params, opts: UpdateOptions): RNNMLPLOptState {
    if (opts.loss === null || opts.loss === undefined) throw new Error('RNNMLPLOpt: this optimizer must be called with a loss (update(..., { loss }))');
    const K = this.lopt.decays.length;
    if (K !== NUM_DECAYS_ASSUMED) {
      // The reference's init sizes the MLP for 5 decays; its update (both paths run) then fails on the shape mismatch.
      throw new Error(`RNNMLPLOpt: decays has ${K} values, but the reference's per-parameter MLP is sized for ${NUM_DECAYS_ASSUMED} (37 features); use 5 decays`);
    }
    const loss = tf.broadcastTo(tf.cast(typeof opts.loss === 'number' ? tf.scalar(opts.loss) : opts.loss, 'float32'), [(s.iteration.shape as number[])[0]]);
    if (opts.isValid) return this.validStep(s, loss);
    const l = this.lopt;
    const th = this.theta;
    const perTask = this.thetaIsVector;
    const ctx: BatchCtx = { batched: true };
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const L = ps.length;
    if (L === 0) throw new Error('RNNMLPLOpt: the params tree has no leaves');
    const N = ps[0].shape[0];

    // update_is_training: the training-loss normaliser moves first, then the loss features
    const nextTrain = lossNext(s.trainLossAccum, loss, TRAIN_LOSS_DECAY);
    const trainLossFeat = lossWeight(nextTrain, loss, TRAIN_LOSS_DECAY);
    const validLoss = tf.mul(s.validLossAccum.mean, lossCorrection(s.validLossAccum, VALID_LOSS_DECAY)); // corrected_mean
    const validLossFeat = lossWeight(nextTrain, validLoss, TRAIN_LOSS_DECAY); // normalised by the *training* statistics

    // _DynamicGradientClipper.next_state_and_normalize: clip to ±(bias-corrected EMA of the RMS grad)·10
    const clipT = s.dynamicClip.iteration;
    const snd = s.dynamicClip.value;
    const clipAmount = tf.mul(tf.div(snd, tf.sub(1, tf.pow(tf.scalar(CLIP_ALPHA), clipT))), CLIP_MULT);
    const gs = treeFlatten<tf.Tensor>(grad)[0].map((g) => {
      // jnp.clip(g, −c, c) with a per-task c, broadcast explicitly: tf.js's Minimum / Maximum
      // gradients do not reduce a broadcast operand (and c depends on θ through earlier updates)
      const c = tf.broadcastTo(tf.reshape(clipAmount, [N, ...new Array(g.rank - 1).fill(1)]), g.shape);
      return tf.minimum(tf.maximum(g, tf.neg(c)), c);
    });
    // _avg_square_mean: sum over leaves (in order) of mean(g²), / L
    let sqSum: tf.Tensor = tf.mean(tf.square(rows(gs[0], N)), 1);
    for (let i = 1; i < L; i++) sqSum = tf.add(sqSum, tf.mean(tf.square(rows(gs[i], N)), 1));
    const newSnd = tf.sqrt(tf.add(tf.div(sqSum, L), 1e-8));
    const nextClip: DynamicClipState = { iteration: tf.add(clipT, 1), value: tf.add(tf.mul(snd, CLIP_ALPHA), tf.mul(newSnd, 1 - CLIP_ALPHA)) };
    const clipped = treeUnflatten(def, gs);

    const decays = tf.tensor1d(l.decays);
    const mom = vecRollingMom.update(s.momRolling, clipped, decays, ctx);
    const rms = vecRollingRms.update(s.rmsRolling, clipped, decays, ctx);
    const ms = treeFlatten<tf.Tensor>(mom.m)[0];
    const rs = treeFlatten<tf.Tensor>(rms.rms)[0];
    const fromMlps = treeFlatten<tf.Tensor>(s.fromMlp)[0];

    // lstm_features_for_tensor, per leaf: [N, 52], the features in sorted-name order
    const meanVar = (x2: tf.Tensor): [tf.Tensor, tf.Tensor] => {
      const mean = tf.mean(x2, 1);
      return [mean, tf.mean(tf.square(tf.sub(x2, tf.expandDims(mean, 1))), 1)];
    };
    const lstmInputs = ps.map((p, i) => {
      const shape = p.shape.slice(1);
      const [meanMs, varMs] = meanVar(rows(ms[i], N));
      const [meanRms, varRms] = meanVar(rows(rs[i], N));
      const v2 = rows(p, N);
      const [meanV, varV] = meanVar(v2);
      const shapeStack = [...shape, ...new Array(Math.max(0, 4 - shape.length)).fill(1)];
      const shapeFeat = tf.sub(tf.log(tf.tensor1d(shapeStack.slice(0, 4))), 1);
      const col = (t: tf.Tensor) => tf.reshape(t, [N, 1]);
      const scalars = [
        col(clipLogAbs(normRows(rows(gs[i], N)))), // g_norm
        tf.fill([N, 1], shape.length === 0 ? 1 : -1), // is_scalar
        col(clipLogAbs(meanMs)), // mean_ms_mag
        col(tf.sign(meanMs)), // mean_ms_sign
        col(clipLogAbs(meanRms)), // mean_rms
        col(tf.sign(meanRms)), // mean_sign
        col(clipLogAbs(meanV)), // mean_v_mag
        col(tf.sign(meanV)), // mean_v_sign
        col(clipLogAbs(normRows(v2))), // norm_weight
        tf.broadcastTo(tf.reshape(shapeFeat, [1, 4]), [N, 4]), // shape_0..3
        col(trainLossFeat), // train_loss_feat
        col(validLossFeat), // valid_loss_feat
        col(clipLogAbs(varMs)), // var_ms
        col(clipLogAbs(varRms)), // var_rms
        col(clipLogAbs(varV)), // var_v
      ];
      return tf.concat([s.fromLstm, fromMlps[i], ...scalars], 1);
    });
    const rnnInputs = tf.stack(lstmInputs, 1); // [N, L, 52]

    // hk.LSTM(lstmHiddenSize) over the L tensors: lstm_out [N, L, H]
    const { hidden, cell } = lstmStep(rnnInputs, s.lstmHiddenState, th.rnn_params['rnn/linear'], perTask);

    // DeepSets-style message to the next step: mean over tensors of a projection
    const newFromLstm = tf.mean(linear(hidden, th.rnn_to_in_params.rnn_to_in, perTask), 1); // [N, 18]
    const ffAll = linear(hidden, th.rnn_to_ff_params.rnn_to_ff, perTask); // [N, L, 17]
    const ffInputs = ps.map((_, i) => tf.reshape(tf.slice(ffAll, [0, i, 0], [N, 1, l.lstmToFf]), [N, l.lstmToFf]));

    // mlp_features_for_tensor, per leaf: [N, S, 54]
    const step = sinEmbedding(s.iteration); // [N, 11]
    const logNumTensors = tf.sub(tf.log(tf.scalar(L)), 1); // log(float(num_tensors)) − 1, in float32
    const constCol = (x: tf.Tensor, S: number) => tf.broadcastTo(tf.reshape(x, [1, 1, 1]), [N, S, 1]);
    const sizes = ps.map((p) => p.size / N);
    const feats = ps.map((p, i) => {
      const S = sizes[i];
      const m = tf.reshape(ms[i], [N, S, K]);
      const r = tf.reshape(rs[i], [N, S, K]);
      const rsqrt = tf.rsqrt(tf.add(r, 1e-6));
      const flatV = tf.reshape(p, [N, S, 1]);
      // sorted names: flat_g, flat_v, log_abs_v, m, rms, rms_scaled_g, rsqrt; normalised over the tensor
      const inp = secondMomentNormalize(
        tf.concat([tf.reshape(gs[i], [N, S, 1]), flatV, tf.log(tf.add(tf.abs(flatV), 1e-8)), m, r, tf.mul(m, rsqrt), rsqrt], 2),
        [1],
      );
      const perRow = (t: tf.Tensor) => tf.broadcastTo(tf.expandDims(t, 1), [N, S, t.shape[1] as number]); // [N, F] -> [N, S, F]
      const logNorm = tf.reshape(tf.log(tf.add(normRows(rows(p, N)), 1e-8)), [N, 1]);
      return tf.concat(
        [
          inp,
          perRow(step),
          constCol(logNumTensors, S),
          perRow(logNorm),
          constCol(tf.log(tf.scalar(S)), S), // log(float(n_weights))
          perRow(ffInputs[i]),
        ],
        2,
      );
    });

    // the per-parameter MLP on every parameter of every leaf at once
    let h = L === 1 ? feats[0] : tf.concat(feats, 1); // [N, P, 54]
    for (let j = 0; j <= l.hiddenLayer; j++) {
      h = linear(h, th.ffmod_params[`mlp/~/linear_${j}`], perTask);
      if (j < l.hiddenLayer) h = tf.relu(h);
    }
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const outs = sizes.map((S, i) => (L === 1 ? h : tf.slice(h, [0, offsets[i], 0], [N, S, 2 + l.fromMlpSize]))); // L x [N, S, 2 + fromMlpSize]
    const newParams: tf.Tensor[] = [];
    const newFromMlp: tf.Tensor[] = [];
    outs.forEach((o, i) => {
      const S = sizes[i];
      const direction = tf.slice(o, [0, 0, 0], [N, S, 1]);
      const magnitude = tf.slice(o, [0, 0, 1], [N, S, 1]);
      const stepV = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, l.magnitudeRate))), l.stepMultiplier);
      newParams.push(tf.sub(ps[i], tf.reshape(stepV, ps[i].shape)));
      newFromMlp.push(tf.mean(tf.slice(o, [0, 0, 2], [N, S, l.fromMlpSize]), 1));
    });

    return {
      params: treeUnflatten(def, newParams),
      momRolling: mom,
      rmsRolling: rms,
      iteration: incCounter(s.iteration),
      state: null,
      lstmHiddenState: { hidden, cell },
      fromMlp: treeUnflatten(def, newFromMlp),
      fromLstm: newFromLstm,
      trainLossAccum: nextTrain,
      validLossAccum: treeClone(s.validLossAccum),
      dynamicClip: nextClip,
    };
  }

  /** `update_is_valid`: only the validation-loss normaliser and the iteration move. */
  private validStep(s: RNNMLPLOptState, loss: tf.Tensor): RNNMLPLOptState {
    const { state: _model, ...rest } = s;
    return { ...treeClone(rest), state: null, iteration: incCounter(s.iteration), validLossAccum: lossNext(s.validLossAccum, loss, VALID_LOSS_DECAY) } as RNNMLPLOptState;
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'RNNMLPLOpt',
  description: 'Hierarchical learned optimizer: a per-tensor LSTM (64) conditioning a per-parameter MLP (32x2), with loss and gradient-norm features',
  schema: RNNMLPLOptSchema,
  create: (c) => new RNNMLPLOpt(c),
  cls: RNNMLPLOpt,
});
