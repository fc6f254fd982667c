/**
 * The VeLO prefab (reference `research/general_lopt/prefab.py`, `LearnedOptimizer`): a pretrained
 * HyperV2 wrapped for reliability — gradient accumulation when asked to train for more than
 * `maxTrainingSteps` (`optimizers/gradient_accumulator.py`, `GradientAccumulator`) and optional
 * weight decay (`optimizers/optimizer_wrappers.py`, `WeightDecayWrapper`).
 *
 * The reference's default θ is the `aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620`
 * checkpoint on GCS (config: HyperV2 with lstm_hidden_size 512, param_inits 256, unbugged loss
 * features, `VELO_HYPER_V2_OPTIONS`); it is not bundled: pass its `params` file's bytes as
 * `checkpoint` (or a θ as `theta`).
 *
 * States (the reference's, camelCase):
 * ```
 * GradientAccumulatorState { gradAccum: params, lossAccum: [], innerOptState, iteration: int32 [],
 *                            modelState, params (= the inner state's, for OptState) }
 * WeightDecayWrapper: the inner optimizer's state
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { treeFlatten, treeMap, treeMapN, treeUnflatten, type PyTree } from '@lopt/core';
import type { InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta, UpdateOptions } from './base';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import { tidy, toFloatTensor, treeClone } from './common';
import { HyperV2, VELO_HYPER_V2_OPTIONS } from './hyper_v2';
import { loadLearnedOptimizerCheckpoint } from './checkpoint';
import { GradientWrapper } from './wrappers';

/**
 * State of {@link GradientAccumulator} (reference `optimizers/gradient_accumulator.py`,
 * `GradientAccumulatorState`): summed gradients and loss, the inner optimizer's state, iteration, model state
 * and params.
 */
export interface GradientAccumulatorState extends OptState {
  gradAccum: Params;
  lossAccum: tf.Tensor;
  innerOptState: OptState;
  iteration: tf.Tensor;
  modelState: PyTree | null;
  params: Params;
}

function needLoss(loss: UpdateOptions['loss'], who: string): tf.Tensor {
  if (loss === null || loss === undefined) throw new Error(`${who}: update needs a loss (as the reference's)`);
  return toFloatTensor(loss);
}

/** Select per task (mask [N]) between two trees of the same structure. */
function selectTree(mask: tf.Tensor, a: PyTree, b: PyTree): PyTree {
  const [la, def] = treeFlatten<unknown>(a);
  const lb = treeFlatten<unknown>(b)[0];
  return treeUnflatten(
    def,
    la.map((x, i) => {
      if (!(x instanceof tf.Tensor)) return x;
      const y = lb[i] as tf.Tensor;
      const m = tf.reshape(mask, [mask.shape[0], ...new Array(Math.max(0, x.rank - 1)).fill(1)]);
      return tf.where(tf.broadcastTo(m, x.shape), x, y);
    }),
  );
}

/**
 * Alternates between accumulating gradients (and losses) and, every `numAverage`-th update,
 * applying the inner optimizer to their means. `init`'s numSteps reaches the inner optimizer as
 * `floor(numSteps / numAverage)`.
 */
export class GradientAccumulator implements Optimizer {
  constructor(
    readonly opt: Optimizer,
    readonly numAverage = 1,
  ) {
    if (!Number.isInteger(numAverage) || numAverage < 1) throw new RangeError(`GradientAccumulator: numAverage must be a positive integer, got ${numAverage}`);
  }
  get name(): string {
    return 'GradientAccumulator';
  }

  private initImpl(params: Params, opts: InitOptions, batched: boolean): GradientAccumulatorState {
    return tidy(() => {
      const numSteps = opts.numSteps === null || opts.numSteps === undefined ? null : typeof opts.numSteps === 'number' ? Math.floor(opts.numSteps / this.numAverage) : tf.floorDiv(tf.cast(opts.numSteps, 'int32'), tf.scalar(this.numAverage, 'int32'));
      const inner = (batched ? this.opt.initBatch : this.opt.init).call(this.opt, params, { ...opts, numSteps });
      const n = batched ? (treeFlatten<tf.Tensor>(params)[0][0]?.shape[0] ?? 0) : 0;
      return {
        gradAccum: treeMap((p: tf.Tensor) => tf.zerosLike(p), params),
        lossAccum: batched ? tf.zeros([n]) : tf.scalar(0),
        innerOptState: inner,
        iteration: batched ? tf.zeros([n], 'int32') : tf.scalar(0, 'int32'),
        modelState: treeClone(opts.modelState ?? null),
        params: treeClone(this.opt.getParams(inner)),
      };
    });
  }
  init(params: Params, opts: InitOptions = {}): GradientAccumulatorState {
    return this.initImpl(params, opts, false);
  }
  initBatch(params: Params, opts: InitOptions = {}): GradientAccumulatorState {
    return this.initImpl(params, opts, true);
  }

  private updateImpl(state: OptState, grad: Params, opts: UpdateOptions, batched: boolean): GradientAccumulatorState {
    return tidy(() => {
      const s = state as GradientAccumulatorState;
      const gradAccum = treeMapN((a: tf.Tensor, g: tf.Tensor) => tf.add(a, g), s.gradAccum, grad);
      const lossAccum = tf.add(s.lossAccum, needLoss(opts.loss, 'GradientAccumulator'));
      const iteration = tf.add(s.iteration, tf.scalar(1, 'int32'));
      const should = tf.equal(tf.mod(iteration, tf.scalar(this.numAverage, 'int32')), 0);
      const run = () =>
        (batched ? this.opt.updateBatch : this.opt.update).call(this.opt, s.innerOptState, treeMap((x: tf.Tensor) => tf.div(x, this.numAverage), gradAccum), {
          ...opts,
          loss: tf.div(lossAccum, this.numAverage),
        });
      let inner: OptState;
      let ga: Params;
      let la: tf.Tensor;
      if (!batched) {
        // jax_utils.maybe_do: the inner update only on every numAverage-th step
        if (should.dataSync()[0]) {
          inner = run();
          ga = treeMap((x: tf.Tensor) => tf.zerosLike(x), gradAccum);
          la = tf.zerosLike(lossAccum);
        } else {
          inner = treeClone(s.innerOptState);
          ga = gradAccum;
          la = lossAccum;
        }
      } else {
        inner = selectTree(should, run(), s.innerOptState) as OptState;
        ga = selectTree(should, treeMap((x: tf.Tensor) => tf.zerosLike(x), gradAccum), gradAccum);
        la = tf.where(should, tf.zerosLike(lossAccum), lossAccum);
      }
      return { gradAccum: ga, lossAccum: la, innerOptState: inner, iteration, modelState: treeClone(opts.modelState ?? null), params: treeClone(this.opt.getParams(inner)) };
    });
  }
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): GradientAccumulatorState {
    return this.updateImpl(state, grad, opts, false);
  }
  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): GradientAccumulatorState {
    return this.updateImpl(state, grad, opts, true);
  }
  getParams(state: OptState): Params {
    return this.opt.getParams((state as GradientAccumulatorState).innerOptState);
  }
  getState(state: OptState): PyTree | null {
    return (state as GradientAccumulatorState).modelState ?? null;
  }
}

/**
 * Adds `weightDecay · p` to every gradient and (addToLoss) `Σ_leaves weightDecay · Σ p²` to the
 * loss, then delegates; the state is the inner optimizer's.
 */
export class WeightDecayWrapper extends GradientWrapper {
  constructor(
    opt: Optimizer,
    readonly weightDecay = 0,
    readonly addToLoss = true,
  ) {
    super(opt);
  }
  protected transform(state: OptState, grad: Params, opts: UpdateOptions, batched: boolean): [Params, UpdateOptions] {
    const [ps] = treeFlatten<tf.Tensor>(this.opt.getParams(state));
    let loss = opts.loss;
    if (this.addToLoss) {
      const l2 = ps.map((p) => (batched ? tf.sum(tf.reshape(tf.square(p), [p.shape[0], -1]), 1) : tf.sum(tf.square(p))));
      const total = l2.reduce<tf.Tensor>((acc, x) => tf.add(acc, tf.mul(x, this.weightDecay)), tf.scalar(0));
      loss = tf.add(needLoss(loss, 'WeightDecayWrapper'), total);
    }
    const g = treeMapN((gi: tf.Tensor, p: tf.Tensor) => tf.add(gi, tf.mul(this.weightDecay, p)), grad, this.opt.getParams(state));
    return [g, { ...opts, loss }];
  }
}

/** Options of the VeLO prefab (learned_optimization/research/general_lopt/prefab.py, `optax_lopt`). */
export interface VeLOOptions {
  /** The number of steps the model will be trained for (the learned optimizer conditions on it). */
  numTrainingSteps: number;
  /** e.g. 1e-6 ("has proven to be sufficient", prefab.py); 0 = no WeightDecayWrapper. */
  weightDecay?: number;
  /** Beyond this, gradients are accumulated over ceil(numTrainingSteps / maxTrainingSteps) steps. */
  maxTrainingSteps?: number;
  /** The learned optimizer (default `new HyperV2(VELO_HYPER_V2_OPTIONS)`). */
  lopt?: LearnedOptimizer;
  /** θ for `lopt`, or … */
  theta?: Theta;
  /** … the bytes of a reference `params` file (e.g. the VeLO checkpoint's) to load into `lopt`. */
  checkpoint?: Uint8Array;
}

/** prefab.LearnedOptimizer: `new VeLO({ numTrainingSteps, weightDecay, checkpoint })`. */
export class VeLO implements Optimizer {
  readonly name = 'LearnedOptimizer';
  readonly numTrainingSteps: number;
  readonly opt: Optimizer;
  readonly lopt: LearnedOptimizer;
  readonly theta: Theta;

  constructor({ numTrainingSteps, weightDecay = 0, maxTrainingSteps = 150_000, lopt, theta, checkpoint }: VeLOOptions) {
    if (!Number.isInteger(numTrainingSteps) || numTrainingSteps < 1) throw new RangeError(`VeLO: numTrainingSteps must be a positive integer, got ${numTrainingSteps}`);
    this.lopt = lopt ?? new HyperV2(VELO_HYPER_V2_OPTIONS);
    if (theta === undefined && checkpoint === undefined) {
      throw new Error(
        'VeLO: pass theta or checkpoint (the bytes of a params file); the pretrained VeLO checkpoint ' +
          '(gs://gresearch/learned_optimization/pretrained_lopts/aug12_continue_on_bigger_2xbs_200kstep_bigproblem_v2_5620/params) is not bundled',
      );
    }
    this.theta = theta ?? loadLearnedOptimizerCheckpoint(this.lopt, checkpoint!, { source: 'VeLO checkpoint' }).theta;
    let opt: Optimizer = this.lopt.optFn(this.theta);
    if (numTrainingSteps > maxTrainingSteps) opt = new GradientAccumulator(opt, Math.ceil(numTrainingSteps / maxTrainingSteps));
    if (weightDecay > 0) opt = new WeightDecayWrapper(opt, weightDecay);
    this.opt = opt;
    this.numTrainingSteps = numTrainingSteps;
  }

  private steps(opts: InitOptions): InitOptions {
    if (opts.numSteps !== null && opts.numSteps !== undefined && opts.numSteps !== this.numTrainingSteps) {
      throw new Error(`VeLO: numSteps passed in (${opts.numSteps}) must match the constructor's numTrainingSteps (${this.numTrainingSteps})`);
    }
    return { ...opts, numSteps: this.numTrainingSteps };
  }
  init(params: Params, opts: InitOptions = {}): OptState {
    return this.opt.init(params, this.steps(opts));
  }
  initBatch(params: Params, opts: InitOptions = {}): OptState {
    return this.opt.initBatch(params, this.steps(opts));
  }
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): OptState {
    return this.opt.update(state, grad, opts);
  }
  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): OptState {
    return this.opt.updateBatch(state, grad, opts);
  }
  getParams(state: OptState): Params {
    return this.opt.getParams(state);
  }
  getState(state: OptState): PyTree | null {
    return this.opt.getState(state);
  }

  /**
   * This optimizer as a `tf.Optimizer` (tfjs_adapter.ts): use it through `minimize(f)` or
   * `model.fit`, which hand it the loss it needs. (Its getConfig cannot rebuild it: θ is not a
   * registered learned optimizer's alone.)
   */
  asTfjsOptimizer(): LearnedTfjsOptimizer {
    const self = this as Optimizer;
    const shim: LearnedOptimizer = { name: null, init: () => this.theta, optFn: () => self };
    return asTfjsOptimizer(shim, this.theta);
  }
}
