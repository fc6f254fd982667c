/**
 * Hand-designed optimizers (reference `optimizers/optax_opts.py`): an `OptaxOptimizer` applies a
 * chain of optax-style transformations; its state mirrors the reference's
 * `OptaxState{params, state, optax_opt_state, iteration}`:
 *
 * ```
 * { params, state: modelState | null, optaxOptState: <the chain's states>, iteration: int32 [] ([N] batched) }
 * SGD     optaxOptState: [{}, {}]                       (identity, scale_by_learning_rate)
 * SGDM    optaxOptState: [{trace}, {}]
 * Adam    optaxOptState: [{count, mu, nu}, {}]          (count [] int32, mu/nu like params)
 * RMSProp optaxOptState: [{nu}, {}, {trace}]
 * AdamW   optaxOptState: [{count, mu, nu}, {}, {}]
 * ```
 * A learning-rate schedule replaces the last `{}` with `{count, numSteps}` (optax's ScaleByScheduleState).
 * Batched: every params-shaped leaf has the task axis N first; `count`/`iteration` are `[N]`.
 */
import * as tf from '@tensorflow/tfjs';
import { parseOptions, registerPlugin, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, Optimizer, OptState, Params, UpdateOptions } from './base';
import { Hyper, LazyHyper, numTasks, tidy, treeClone, zerosCounter } from './common';
import {
  addDecayedWeights,
  applyUpdates,
  chain,
  GradientTransformation,
  identity,
  LearningRate,
  scaleByAdam,
  scaleByLearningRate,
  scaleByRms,
  trace,
  TxCtx,
} from './transforms';

/**
 * State of an {@link OptaxOptimizer} (reference `optimizers/optax_opts.py`, `OptaxState`): params, model
 * state, the transformation chain's states and iteration.
 */
export interface OptaxState extends OptState {
  params: Params;
  state: PyTree | null;
  optaxOptState: any;
  iteration: tf.Tensor;
}

function fmt(h: LearningRate): string {
  if (typeof h === 'number') return String(h);
  if (typeof h === 'function') return h.label ?? 'schedule';
  return 'tensor';
}

/** Wraps an optax-style transformation into the Optimizer interface (params += updates; iteration += 1). */
export class OptaxOptimizer implements Optimizer {
  constructor(
    readonly tx: GradientTransformation,
    readonly name: string = 'OptaxOptimizer',
  ) {}

  private initImpl(params: Params, opts: InitOptions, batched: boolean): OptaxState {
    return tidy(() => {
      const ctx: TxCtx = { batched, numSteps: opts.numSteps ?? null };
      return {
        params: treeClone(params),
        state: treeClone(opts.modelState ?? null),
        optaxOptState: this.tx.init(params, ctx),
        iteration: zerosCounter(ctx, batched ? numTasks(params) : 0),
      };
    });
  }

  private updateImpl(state: OptState, grad: Params, opts: UpdateOptions, batched: boolean): OptaxState {
    return tidy(() => {
      const s = state as OptaxState;
      const ctx: TxCtx = { batched };
      const [updates, optaxOptState] = this.tx.update(grad, s.optaxOptState, s.params, ctx);
      return {
        params: applyUpdates(s.params, updates),
        state: treeClone(opts.modelState ?? null),
        optaxOptState,
        iteration: tf.add(s.iteration, tf.scalar(1, 'int32')), // stays int32, as the reference's counter
      };
    });
  }

  init(params: Params, opts: InitOptions = {}): OptaxState {
    return this.initImpl(params, opts, false);
  }
  initBatch(params: Params, opts: InitOptions = {}): OptaxState {
    return this.initImpl(params, opts, true);
  }
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): OptaxState {
    return this.updateImpl(state, grad, opts, false);
  }
  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): OptaxState {
    return this.updateImpl(state, grad, opts, true);
  }
  getParams(state: OptState): Params {
    return state.params;
  }
  getState(state: OptState): PyTree | null {
    return state.state ?? null;
  }
}

// ------------------------------------------------------------------------------------------------
// Options and their defaults (the reference's `optimizers/optax_opts.py` signatures). The schemas
// are the only place the defaults are written: constructors parse their options with them, and
// the registry validates configs with them. A hyper-parameter may also be a tensor or a schedule.

const isHyperObject = (v: unknown) => v instanceof tf.Tensor || v instanceof LazyHyper;
const hyper = (n: z.ZodNumber) => z.union([n, z.custom<Exclude<Hyper, number>>(isHyperObject)]);
/** A learning rate may also be a schedule of the step. */
const lrField = z.union([z.number().positive(), z.custom<Exclude<LearningRate, number>>((v) => isHyperObject(v) || typeof v === 'function')]).default(0.01);
const unit = () => z.number().min(0).max(1);
const nonneg = () => z.number().min(0);

/** SGD's options (optax `sgd`). */
export const SGDSchema = z.object({ learningRate: lrField }).strict();
/** SGD with momentum's options and defaults (optax `sgd` with `momentum`, `nesterov`). */
export const SGDMSchema = z.object({ learningRate: lrField, momentum: hyper(unit()).default(0.9), nesterov: z.boolean().default(false) }).strict();
const adamFields = { learningRate: lrField, beta1: hyper(unit()).default(0.9), beta2: hyper(unit()).default(0.999), epsilon: hyper(nonneg()).default(1e-8) };
/** `epsilonRoot` defaults to 1e-8 as in the reference's Adam, where optax's own default is 0. */
export const AdamSchema = z.object({ ...adamFields, epsilonRoot: hyper(nonneg()).default(1e-8) }).strict();
/** AdamW's options and defaults (optax `adamw`). */
export const AdamWSchema = z.object({ ...adamFields, epsilonRoot: hyper(nonneg()).default(0), weightDecay: hyper(nonneg()).default(1e-4) }).strict();
/** RMSProp's options and defaults (optax `rmsprop`). */
export const RMSPropSchema = z
  .object({ learningRate: lrField, decay: hyper(unit()).default(0.9), epsilon: hyper(nonneg()).default(1e-8), momentum: hyper(unit()).default(0), nesterov: z.boolean().default(false) })
  .strict();

/** optax.sgd(lr): `p ← p − lr·g`. */
export class SGD extends OptaxOptimizer {
  readonly learningRate: LearningRate;
  constructor(learningRate?: LearningRate) {
    const c = parseOptions(SGDSchema, { learningRate }, 'SGD');
    super(chain(identity(), scaleByLearningRate(c.learningRate)), `SGD_lr${fmt(c.learningRate)}`);
    this.learningRate = c.learningRate;
  }
}

/** SGDM's options besides the learning rate. */
export type SGDMOptions = Omit<z.input<typeof SGDMSchema>, 'learningRate'>;

/** optax.sgd(lr, momentum): `t ← g + μ t`, `p ← p − lr·t`. */
export class SGDM extends OptaxOptimizer {
  readonly learningRate: LearningRate;
  readonly momentum: Hyper;
  constructor(learningRate?: LearningRate, momentum?: Hyper | SGDMOptions) {
    const o: SGDMOptions = momentum !== undefined && !isHyperObject(momentum) && typeof momentum === 'object' ? (momentum as SGDMOptions) : { momentum: momentum as Hyper | undefined };
    const c = parseOptions(SGDMSchema, { learningRate, ...o }, 'SGDM');
    super(chain(trace(c.momentum, c.nesterov), scaleByLearningRate(c.learningRate)), `SGDM_lr${fmt(c.learningRate)}_m${fmt(c.momentum)}`);
    this.learningRate = c.learningRate;
    this.momentum = c.momentum;
  }
}

/** Adam's options besides the learning rate. */
export type AdamOptions = Omit<z.input<typeof AdamSchema>, 'learningRate'>;

/**
 * optax.adam with bias correction; `epsilonRoot` defaults to 1e-8 as in the reference
 * (`optimizers/optax_opts.py`, `Adam`), where optax's own default is 0.
 */
export class Adam extends OptaxOptimizer {
  readonly beta1: Hyper;
  readonly beta2: Hyper;
  readonly epsilon: Hyper;
  readonly epsilonRoot: Hyper;
  readonly learningRate: LearningRate;
  constructor(learningRate?: LearningRate, opts: AdamOptions = {}) {
    const { learningRate: lr, beta1, beta2, epsilon, epsilonRoot } = parseOptions(AdamSchema, { learningRate, ...opts }, 'Adam');
    const learningRate_ = lr;
    super(
      chain(scaleByAdam(beta1, beta2, epsilon, epsilonRoot), scaleByLearningRate(learningRate_)),
      `Adam_lr${fmt(learningRate_)}_b1${fmt(beta1)}_b2${fmt(beta2)}_eps${fmt(epsilon)}_epsroot${fmt(epsilonRoot)}`,
    );
    this.learningRate = learningRate_;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.epsilonRoot = epsilonRoot;
  }
}

/** RMSProp's options besides the learning rate. */
export type RMSPropOptions = Omit<z.input<typeof RMSPropSchema>, 'learningRate'>;

/**
 * optax.rmsprop: `nu ← d·nu + (1−d) g²`, `u = −lr · g·rsqrt(nu + eps)`, then `trace(momentum)`
 * (with momentum 0 the trace is the identity, but its state is kept, as in the reference).
 */
export class RMSProp extends OptaxOptimizer {
  readonly learningRate: LearningRate;
  constructor(learningRate?: LearningRate, opts: RMSPropOptions = {}) {
    const { learningRate: lr, decay, epsilon, momentum, nesterov } = parseOptions(RMSPropSchema, { learningRate, ...opts }, 'RMSProp');
    super(
      chain(scaleByRms(decay, epsilon), scaleByLearningRate(lr), trace(momentum, nesterov)),
      `RMSProp_lr${fmt(lr)}_d${fmt(decay)}_eps${fmt(epsilon)}_m${fmt(momentum)}_nesterov${nesterov ? 'True' : 'False'}`,
    );
    this.learningRate = lr;
  }
}

/** AdamW's options besides the learning rate. */
export type AdamWOptions = Omit<z.input<typeof AdamWSchema>, 'learningRate'>;

/** optax.adamw: Adam direction plus `wd·p`, scaled by −lr. `epsilonRoot` defaults to 0 here, as the reference's AdamW. */
export class AdamW extends OptaxOptimizer {
  readonly learningRate: LearningRate;
  constructor(learningRate?: LearningRate, opts: AdamWOptions = {}) {
    const { learningRate: lr, beta1, beta2, epsilon, epsilonRoot, weightDecay } = parseOptions(AdamWSchema, { learningRate, ...opts }, 'AdamW');
    super(
      chain(scaleByAdam(beta1, beta2, epsilon, epsilonRoot), addDecayedWeights(weightDecay), scaleByLearningRate(lr)),
      `AdamW_lr${fmt(lr)}_wd${fmt(weightDecay)}`,
    );
    this.learningRate = lr;
  }
}

// ------------------------------------------------------------------------------------------------
// Plugins (kind 'optimizer'); the config fields are the constructor options.

registerPlugin({ kind: 'optimizer', name: 'SGD', description: 'Stochastic gradient descent (optax.sgd)', schema: SGDSchema, create: (c) => new SGD(c.learningRate), cls: SGD });
registerPlugin({ kind: 'optimizer', name: 'SGDM', description: 'SGD with momentum (optax.sgd with a trace)', schema: SGDMSchema, create: ({ learningRate, ...o }) => new SGDM(learningRate, o), cls: SGDM });
registerPlugin({ kind: 'optimizer', name: 'Adam', description: 'Adam with bias correction (optax.adam, epsilonRoot 1e-8)', schema: AdamSchema, create: ({ learningRate, ...o }) => new Adam(learningRate, o), cls: Adam });
registerPlugin({ kind: 'optimizer', name: 'AdamW', description: 'Adam with decoupled weight decay (optax.adamw)', schema: AdamWSchema, create: ({ learningRate, ...o }) => new AdamW(learningRate, o), cls: AdamW });
registerPlugin({ kind: 'optimizer', name: 'RMSProp', description: 'RMSProp with optional momentum (optax.rmsprop)', schema: RMSPropSchema, create: ({ learningRate, ...o }) => new RMSProp(learningRate, o), cls: RMSProp });
