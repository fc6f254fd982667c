/**
 * NNAdam (reference `learned_optimizers/nn_adam.py`, `NNAdam`): Adam whose four hyper-parameters
 * (lr, β1, β2, ε) are per tensor and moved every step by an LSTM that reads 19 statistics of each
 * tensor. The step is Adam's with a modified ε so that a large ε turns the second moment off
 * without the learning rate having to grow: `step = lr·(1+ε) / (ε + √(rms + 1e-10)) · m`
 * (no bias correction).
 *
 * Hyper-parameters live in transformed spaces (the reference's `_scaled_lr`, `_scaled_epsilon`,
 * `_scaled_one_minus_log`): `lr = clip(exp(10x), 1e-8, 1e3)`, `ε = clip(exp(10x), 1e-11, 1e4)`,
 * `β = 1 − exp(clip(10x, −10, 0))`; their forwards are `0.1·log(lr)`, `0.1·log(ε)`, `0.1·log(1−β)`.
 *
 * θ (the reference's dict and haiku names, so the golden keystr paths map one to one):
 * ```
 * { lstm_init_state: {hidden: [1,H], cell: [1,H]},                       zeros
 *   rnn_params: {'rnn/linear': {w: [19+H, 4H], b: [4H]}},                 hk.LSTM(H, name='rnn')
 *   rnn_to_controls_params: {rnn_to_controls: {w: [H,4], b: [4]}},        zeros (Constant(0) w)
 *   per_layer_lr, per_layer_beta1, per_layer_beta2, per_layer_epsilon: [] the initial values, forward-transformed }
 * ```
 * (H = lstmHiddenSize, 32 by default; with thetaIsVector every leaf has a leading [N]).
 *
 * State (NNAdamState), L = the number of params leaves (in jax's sorted leaf order):
 * ```
 * { params, state, iteration: int32 [],
 *   rollingFeatures: {m: like params, rms: like params, t: int32 []},
 *   perLayerLr, perLayerBeta1, perLayerBeta2, perLayerEpsilon: one [] per params leaf (transformed space),
 *   lstmHiddenState: {hidden: [L,H], cell: [L,H]} }          batched: a leading [N] on every entry
 * ```
 *
 * Quirks kept from the reference (each tested): the output layer starts at zero, so with θ from
 * `init` the hyper-parameters never move until meta-training changes it; gradients are clipped to
 * ±1000 first; the accumulators use this step's β1/β2 but the LSTM reads the *previous* params and
 * the previous (transformed) hyper-parameters with the *new* m and rms; the feature `mean_sign` is
 * the sign of mean(rms); features are ordered by name (Python's sorted dict order); the decay
 * towards θ's initial values only runs when decayStrength > 0; hyper-parameters are clipped by
 * running inverse then forward (so β written back is `0.1·log(1 − (1 − exp(·)))`, rounding and all);
 * init requires numSteps although nothing uses it.
 *
 * Summaries: `updateWithMetrics` returns the reference's (`mean||lr_pre/<leaf>`, …,
 * `mean||nn_adam_step/<leaf>_avg_step_size`) beside the state; `update` computes none.
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, initializers, parseOptions, random, registerPlugin, treeFlatten, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta, UpdateOptions } from './base';
import { asOneTask, BatchedOptimizer } from './batched_optimizer';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import { incCounter, linear, lstmStep, numTasks, tidy, treeClone, treeSqueeze } from './common';

/** Number of per-tensor features the LSTM reads (the reference's `rnn_input_features`). */
export const NN_ADAM_NUM_FEATURES = 19;

/** NN-Adam's rolling first and second moments (learned_optimization/learned_optimizers/nn_adam.py). */
export interface NNAdamRolling {
  m: Params;
  rms: Params;
  t: tf.Tensor;
}

/** An LSTM's hidden and cell state. */
export interface NNAdamLSTMState {
  hidden: tf.Tensor;
  cell: tf.Tensor;
}

/**
 * State of {@link NNAdamOptimizer}: params, model state, iteration, rolling moments, the per-tensor
 * hyper-parameters and the LSTM state (reference `nn_adam.py`, `NNAdamState`).
 */
export interface NNAdamState extends OptState {
  params: Params;
  state: PyTree | null;
  iteration: tf.Tensor;
  rollingFeatures: NNAdamRolling;
  perLayerLr: PyTree;
  perLayerBeta1: PyTree;
  perLayerBeta2: PyTree;
  perLayerEpsilon: PyTree;
  lstmHiddenState: NNAdamLSTMState;
}

/** NN-Adam's θ: the LSTM's initial state and weights (learned_optimization/learned_optimizers/nn_adam.py). */
export interface NNAdamTheta {
  lstm_init_state: NNAdamLSTMState;
  rnn_params: { 'rnn/linear': { w: tf.Tensor; b: tf.Tensor } };
  rnn_to_controls_params: { rnn_to_controls: { w: tf.Tensor; b: tf.Tensor } };
  per_layer_lr: tf.Tensor;
  per_layer_beta1: tf.Tensor;
  per_layer_beta2: tf.Tensor;
  per_layer_epsilon: tf.Tensor;
}

/** NNAdam's options and their defaults (the reference's `NNAdam.__init__`). */
export const NNAdamSchema = z
  .object({
    outputScale: z.number().default(0.01),
    initialLearningRate: z.number().positive().default(1e-4),
    initialBeta1: z.number().min(0).lt(1).default(0.9),
    initialBeta2: z.number().min(0).lt(1).default(0.999),
    initialEpsilon: z.number().positive().default(1e-8),
    decayStrength: z.number().default(0.0),
    lstmHiddenSize: z.number().int().positive().default(32),
  })
  .strict();
/** The options `new NNAdam(opts)` takes (see `NNAdamSchema`). */
export type NNAdamOptions = z.input<typeof NNAdamSchema>;

/** A hyper-parameter transform: `forward` to the learned space, `inverse` (clipped) back. */
export interface NNAdamTransform {
  forward(x: tf.Tensor): tf.Tensor;
  inverse(x: tf.Tensor): tf.Tensor;
}

const logTimesTenth = (x: tf.Tensor) => tf.mul(tf.log(x), 0.1);

/** The reference's `_scaled_lr`, `_scaled_epsilon` and `_scaled_one_minus_log`. */
export const nnAdamTransforms: Record<'scaledLr' | 'scaledEpsilon' | 'scaledOneMinusLog', NNAdamTransform> = {
  scaledLr: { forward: logTimesTenth, inverse: (x) => tf.clipByValue(tf.exp(tf.mul(x, 10)), 1e-8, 1e3) },
  scaledEpsilon: { forward: logTimesTenth, inverse: (x) => tf.clipByValue(tf.exp(tf.mul(x, 10)), 1e-11, 1e4) },
  scaledOneMinusLog: {
    forward: (x) => logTimesTenth(tf.sub(1, x)),
    inverse: (x) => tf.sub(1, tf.exp(tf.clipByValue(tf.mul(x, 10), -10, 0))),
  },
};

/** `forward(inverse(x))`: the clip the reference applies to every new hyper-parameter. */
export function nnAdamInverseForward(t: NNAdamTransform, x: tf.Tensor): tf.Tensor {
  return t.forward(t.inverse(x));
}

/** `clip(log(1e-8 + |x|), −5, 5) · 0.5` (the reference's `_clip_log_abs`). */
function clipLogAbs(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.clipByValue(tf.log(tf.add(tf.abs(x), 1e-8)), -5, 5), 0.5);
}

/**
 * The NNAdam learned optimizer (reference `learned_optimizers/nn_adam.py`, `NNAdam`): Adam whose per-tensor
 * hyper-parameters an LSTM moves every step.
 */
export class NNAdam implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly outputScale: number;
  readonly initialLearningRate: number;
  readonly initialBeta1: number;
  readonly initialBeta2: number;
  readonly initialEpsilon: number;
  readonly decayStrength: number;
  readonly lstmHiddenSize: number;
  /** The reference's `rnn_input_features` (a getter, so that it is not mistaken for an option). */
  get rnnInputFeatures(): number {
    return NN_ADAM_NUM_FEATURES;
  }

  constructor(opts: NNAdamOptions = {}) {
    const c = parseOptions(NNAdamSchema, opts, 'NNAdam');
    this.outputScale = c.outputScale;
    this.initialLearningRate = c.initialLearningRate;
    this.initialBeta1 = c.initialBeta1;
    this.initialBeta2 = c.initialBeta2;
    this.initialEpsilon = c.initialEpsilon;
    this.decayStrength = c.decayStrength;
    this.lstmHiddenSize = c.lstmHiddenSize;
  }

  /**
   * θ: `key1, key2, key3 = split(key, 3)`; the LSTM's initial state (zeros, key1 unused), the
   * LSTM's `rnn/linear` made by haiku from key2 (TruncatedNormal(1/√(19+H)) w, zero b), the
   * controls layer from key3 (all zeros: no draw), and the forward-transformed initial values.
   */
  init(key: PRNGKey): Theta {
    const H = this.lstmHiddenSize;
    const [, key2, key3] = random.split(key, 3);
    const rnn = haikuInit(key2, (hk) => hk.linear('rnn/linear', this.rnnInputFeatures + H, 4 * H));
    const controls = haikuInit(key3, (hk) => hk.linear('rnn_to_controls', H, 4, { wInit: initializers.constant(0) }));
    return tf.tidy(() => {
      const T = nnAdamTransforms;
      return {
        lstm_init_state: { hidden: tf.zeros([1, H]), cell: tf.zeros([1, H]) },
        rnn_params: rnn,
        rnn_to_controls_params: controls,
        per_layer_lr: T.scaledLr.forward(tf.scalar(this.initialLearningRate)),
        per_layer_beta1: T.scaledOneMinusLog.forward(tf.scalar(this.initialBeta1)),
        per_layer_beta2: T.scaledOneMinusLog.forward(tf.scalar(this.initialBeta2)),
        per_layer_epsilon: T.scaledEpsilon.forward(tf.scalar(this.initialEpsilon)),
      } as unknown as tf.TensorContainer;
    }) as unknown as Theta;
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new NNAdamOptimizer(this, theta as unknown as NNAdamTheta, thetaIsVector);
  }

  /** This learned optimizer as a `tf.Optimizer` (tfjs_adapter.ts); NNAdam requires numSteps (the reference does, though nothing reads it): pass the training length. */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

const HPARAMS = ['perLayerLr', 'perLayerBeta1', 'perLayerBeta2', 'perLayerEpsilon'] as const;
const THETA_HPARAMS = ['per_layer_lr', 'per_layer_beta1', 'per_layer_beta2', 'per_layer_epsilon'] as const;

/** The optimizer {@link NNAdam.optFn} returns for a θ. */
export class NNAdamOptimizer extends BatchedOptimizer<NNAdamState> {
  constructor(
    readonly lopt: NNAdam,
    readonly theta: NNAdamTheta,
    readonly thetaIsVector: boolean,
  ) {
    super('NNAdam');
    const keys = ['lstm_init_state', 'rnn_params', 'rnn_to_controls_params', ...THETA_HPARAMS] as const;
    for (const k of keys) {
      if (!theta || !(k in theta)) throw new Error(`NNAdam theta: missing '${k}' (expected ${keys.join(', ')})`);
    }
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): NNAdamState {
    if (opts.numSteps === null || opts.numSteps === undefined) throw new Error('NNAdam: numSteps must be given to init (the reference requires it)');
    if (this.thetaIsVector && !batched) throw new Error('NNAdam: thetaIsVector optimizers work on stacked tasks only; use initBatch');
    return tidy(() => {
      const th = this.theta;
      const [leaves, def] = treeFlatten<tf.Tensor>(params);
      const L = leaves.length;
      const N = batched ? numTasks(params) : 0;
      const lead = batched ? [N] : [];
      // a per-leaf hyper-parameter: θ's scalar (or θ's [N] with thetaIsVector), one per task
      const perLeaf = (v: tf.Tensor) => treeUnflatten(def, leaves.map(() => (this.thetaIsVector || !batched ? tf.clone(v) : tf.broadcastTo(v, lead))));
      // `tile(lstm_init_state, [L, 1])`: [1,H] -> [L,H]; batched [N,L,H] (θ [N,1,H] with thetaIsVector)
      const tile = (h: tf.Tensor) => {
        const H = h.shape[h.rank - 1];
        if (this.thetaIsVector) return tf.tile(h, [1, L, 1]);
        const t = tf.tile(h, [L, 1]);
        return batched ? tf.broadcastTo(t, [N, L, H]) : t;
      };
      const zeros = () => treeUnflatten(def, leaves.map((p) => tf.zerosLike(p)));
      const state: NNAdamState = {
        params: treeClone(params),
        state: treeClone(opts.modelState ?? null),
        iteration: tf.zeros(lead, 'int32'),
        rollingFeatures: { m: zeros(), rms: zeros(), t: tf.zeros(lead, 'int32') },
        perLayerLr: perLeaf(th.per_layer_lr),
        perLayerBeta1: perLeaf(th.per_layer_beta1),
        perLayerBeta2: perLeaf(th.per_layer_beta2),
        perLayerEpsilon: perLeaf(th.per_layer_epsilon),
        lstmHiddenState: { hidden: tile(th.lstm_init_state.hidden), cell: tile(th.lstm_init_state.cell) },
      };
      return state;
    });
  }

  /**
   * `update` and the reference's in-update summaries, each a scalar tensor keyed `mean||<name>`:
   * per params leaf i (jax's leaf order) `{beta1,beta2,epsilon,lr}_pre/i` (the transformed values
   * before the update), `…_post/i` (the values used: inverse-transformed), `…_step/i` (the LSTM's
   * change, before decay and clipping) and `nn_adam_step/i_avg_step_size` (mean |step|).
   */
  updateWithMetrics(state: OptState, grad: Params, opts: UpdateOptions = {}): { state: NNAdamState; metrics: Record<string, tf.Tensor> } {
    this.checkOneTask();
    return tidy(() => {
      const metrics: Record<string, tf.Tensor> = {};
      const next = asOneTask(state as NNAdamState, grad, (stacked, g) => this.step(stacked, g, opts, metrics));
      return { state: { ...next, state: treeClone(opts.modelState ?? null) }, metrics: treeSqueeze(metrics) };
    });
  }

  /**
   * The 19 features of one tensor per task, by name (the reference's `lstm_features_for_tensor`):
   * `p`, `g`, `m`, `rms` are [N, S] (S = the leaf's size), the hyper-parameters [N] (transformed).
   */
  private features(
    rank: number,
    p: tf.Tensor,
    g: tf.Tensor,
    m: tf.Tensor,
    rms: tf.Tensor,
    hp: { lr: tf.Tensor; beta1: tf.Tensor; beta2: tf.Tensor; epsilon: tf.Tensor },
  ): tf.Tensor {
    const N = p.shape[0];
    const mean = (x: tf.Tensor) => tf.mean(x, 1);
    const varOf = (x: tf.Tensor, mu: tf.Tensor) => tf.mean(tf.square(tf.sub(x, tf.expandDims(mu, 1))), 1);
    const f: Record<string, tf.Tensor> = {};
    const meanM = mean(m);
    f.mean_m_mag = clipLogAbs(meanM);
    f.mean_m_sign = tf.sign(meanM);
    f.var_m = clipLogAbs(varOf(m, meanM));
    const meanRms = mean(rms);
    f.mean_rms = clipLogAbs(meanRms);
    f.mean_sign = tf.sign(meanRms); // sic: the sign of mean(rms)
    f.var_rms = clipLogAbs(varOf(rms, meanRms));
    const meanP = mean(p);
    f.mean_p_mag = clipLogAbs(meanP);
    f.mean_p_sign = tf.sign(meanP);
    f.var_p = clipLogAbs(varOf(p, meanP));
    const meanG = mean(g);
    f.mean_g_mag = clipLogAbs(meanG);
    f.mean_g_sign = tf.sign(meanG);
    f.var_g = clipLogAbs(varOf(g, meanG));
    f.mean_gabs_mag = clipLogAbs(mean(tf.abs(g)));
    f.is_scalar = tf.fill([N], rank === 0 ? 1 : -1);
    f.is_bias = tf.fill([N], rank === 1 ? 1 : -1);
    const scaled = (x: tf.Tensor) => tf.mul(tf.clipByValue(x, -5, 5), 0.2);
    f.lr = scaled(hp.lr);
    f.beta1 = scaled(hp.beta1);
    f.beta2 = scaled(hp.beta2);
    f.epsilon = scaled(hp.epsilon);
    const names = Object.keys(f).sort(); // the reference sorts the dict by key
    return tf.stack(
      names.map((k) => f[k]),
      1,
    ); // [N, 19]
  }

  /** Batched update (leading task axis on every leaf). Call inside a tidy. */
  protected step(s: NNAdamState, grad: Params, _opts: UpdateOptions = {}, metrics?: Record<string, tf.Tensor>): NNAdamState {
    const T = nnAdamTransforms;
    const l = this.lopt;
    const th = this.theta;
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const L = ps.length;
    if (L === 0) {
      const c = treeClone(s);
      return { ...c, iteration: incCounter(s.iteration), rollingFeatures: { ...c.rollingFeatures, t: incCounter(s.rollingFeatures.t) } };
    }
    const N = ps[0].shape[0];
    const gs = treeFlatten<tf.Tensor>(grad)[0].map((g) => tf.clipByValue(g, -1000, 1000));
    const ms = treeFlatten<tf.Tensor>(s.rollingFeatures.m)[0];
    const vs = treeFlatten<tf.Tensor>(s.rollingFeatures.rms)[0];
    const hp = HPARAMS.map((k) => treeFlatten<tf.Tensor>(s[k])[0]); // [lr, beta1, beta2, epsilon], each [N] per leaf

    const bc = (h: tf.Tensor, rank: number) => tf.reshape(h, [N, ...new Array(rank - 1).fill(1)]);
    const newP: tf.Tensor[] = [];
    const newM: tf.Tensor[] = [];
    const newV: tf.Tensor[] = [];
    const feats: tf.Tensor[] = [];
    ps.forEach((p, i) => {
      const g = gs[i];
      const b1 = bc(T.scaledOneMinusLog.inverse(hp[1][i]), p.rank);
      const b2 = bc(T.scaledOneMinusLog.inverse(hp[2][i]), p.rank);
      const eps = bc(T.scaledEpsilon.inverse(hp[3][i]), p.rank);
      const lr = bc(T.scaledLr.inverse(hp[0][i]), p.rank);
      const m = tf.add(tf.mul(b1, ms[i]), tf.mul(tf.sub(1, b1), g));
      const v = tf.add(tf.mul(b2, vs[i]), tf.mul(tf.sub(1, b2), tf.mul(g, g)));
      // (lr·(1+ε))·1.0 / (ε + √(rms + 1e-10)) · m
      const step = tf.mul(tf.div(tf.mul(lr, tf.add(1, eps)), tf.add(eps, tf.sqrt(tf.add(v, 1e-10)))), m);
      newP.push(tf.sub(p, step));
      if (metrics) metrics[`mean||nn_adam_step/${i}_avg_step_size`] = tf.mean(tf.reshape(tf.abs(step), [N, -1]), 1);
      newM.push(m);
      newV.push(v);
      const S = p.size / N;
      const flat = (x: tf.Tensor) => tf.reshape(x, [N, S]);
      feats.push(this.features(p.rank - 1, flat(p), flat(g), flat(m), flat(v), { lr: hp[0][i], beta1: hp[1][i], beta2: hp[2][i], epsilon: hp[3][i] }));
    });

    // hk.LSTM over the L tensors' features [N, L, 19]
    const { hidden, cell } = lstmStep(tf.stack(feats, 1), s.lstmHiddenState, th.rnn_params['rnn/linear'], this.thetaIsVector);

    const ctl = th.rnn_to_controls_params.rnn_to_controls;
    const deltas = tf.mul(linear(hidden, ctl, this.thetaIsVector), l.outputScale); // [N, L, 4]
    const delta = (i: number, k: number) => tf.reshape(tf.slice(deltas, [0, i, k], [N, 1, 1]), [N]); // leaf i, hparam k (lr, β1, β2, ε)
    const transforms = [T.scaledLr, T.scaledOneMinusLog, T.scaledOneMinusLog, T.scaledEpsilon];
    if (metrics) {
      const names = ['lr', 'beta1', 'beta2', 'epsilon'];
      ps.forEach((_, i) =>
        names.forEach((n, k) => {
          metrics[`mean||${n}_pre/${i}`] = tf.clone(hp[k][i]);
          metrics[`mean||${n}_post/${i}`] = transforms[k].inverse(hp[k][i]);
          metrics[`mean||${n}_step/${i}`] = delta(i, k);
        }),
      );
    }
    const next = HPARAMS.map((_, k) =>
      treeUnflatten(
        def,
        hp[k].map((old, i) => {
          let v = tf.add(old, delta(i, k));
          if (l.decayStrength > 0) v = tf.sub(v, tf.mul(tf.sub(v, th[THETA_HPARAMS[k]]), l.decayStrength));
          return nnAdamInverseForward(transforms[k], v);
        }),
      ),
    );

    return {
      params: treeUnflatten(def, newP),
      state: null,
      iteration: incCounter(s.iteration),
      rollingFeatures: { m: treeUnflatten(def, newM), rms: treeUnflatten(def, newV), t: incCounter(s.rollingFeatures.t) },
      perLayerLr: next[0],
      perLayerBeta1: next[1],
      perLayerBeta2: next[2],
      perLayerEpsilon: next[3],
      lstmHiddenState: { hidden, cell },
    };
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'NNAdam',
  description: 'Adam with per-tensor lr, beta1, beta2 and epsilon steered every step by an LSTM on tensor statistics',
  schema: NNAdamSchema,
  create: (c) => new NNAdam(c),
  cls: NNAdam,
});
