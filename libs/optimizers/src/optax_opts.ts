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
import { registerPlugin, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, Optimizer, OptState, Params, UpdateOptions } from './base';
import { Hyper, numTasks, tidy, treeClone, zerosCounter } from './common';
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

/** optax.sgd(lr): `p ← p − lr·g`. */
export class SGD extends OptaxOptimizer {
  constructor(readonly learningRate: LearningRate = 0.01) {
    super(chain(identity(), scaleByLearningRate(learningRate)), `SGD_lr${fmt(learningRate)}`);
  }
}

export interface SGDMOptions {
  momentum?: Hyper;
  nesterov?: boolean;
}

/** optax.sgd(lr, momentum): `t ← g + μ t`, `p ← p − lr·t`. */
export class SGDM extends OptaxOptimizer {
  readonly momentum: Hyper;
  constructor(readonly learningRate: LearningRate = 0.01, momentum: Hyper | SGDMOptions = 0.9) {
    const o: SGDMOptions = typeof momentum === 'object' && !(momentum instanceof tf.Tensor) && !('fn' in momentum) ? momentum : { momentum: momentum as Hyper };
    const m = o.momentum ?? 0.9;
    super(chain(trace(m, o.nesterov ?? false), scaleByLearningRate(learningRate)), `SGDM_lr${fmt(learningRate)}_m${fmt(m)}`);
    this.momentum = m;
  }
}

export interface AdamOptions {
  beta1?: Hyper;
  beta2?: Hyper;
  epsilon?: Hyper;
  epsilonRoot?: Hyper;
}

/**
 * optax.adam with bias correction; `epsilonRoot` defaults to 1e-8 as in the reference
 * (`optimizers/optax_opts.py`, `Adam`), where optax's own default is 0.
 */
export class Adam extends OptaxOptimizer {
  readonly beta1: Hyper;
  readonly beta2: Hyper;
  readonly epsilon: Hyper;
  readonly epsilonRoot: Hyper;
  constructor(readonly learningRate: LearningRate = 0.01, opts: AdamOptions = {}) {
    const { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, epsilonRoot = 1e-8 } = opts;
    super(
      chain(scaleByAdam(beta1, beta2, epsilon, epsilonRoot), scaleByLearningRate(learningRate)),
      `Adam_lr${fmt(learningRate)}_b1${fmt(beta1)}_b2${fmt(beta2)}_eps${fmt(epsilon)}_epsroot${fmt(epsilonRoot)}`,
    );
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.epsilonRoot = epsilonRoot;
  }
}

export interface RMSPropOptions {
  decay?: Hyper;
  epsilon?: Hyper;
  momentum?: Hyper;
  nesterov?: boolean;
}

/**
 * optax.rmsprop: `nu ← d·nu + (1−d) g²`, `u = −lr · g·rsqrt(nu + eps)`, then `trace(momentum)`
 * (with momentum 0 the trace is the identity, but its state is kept, as in the reference).
 */
export class RMSProp extends OptaxOptimizer {
  constructor(readonly learningRate: LearningRate = 0.01, opts: RMSPropOptions = {}) {
    const { decay = 0.9, epsilon = 1e-8, momentum = 0, nesterov = false } = opts;
    super(
      chain(scaleByRms(decay, epsilon), scaleByLearningRate(learningRate), trace(momentum, nesterov)),
      `RMSProp_lr${fmt(learningRate)}_d${fmt(decay)}_eps${fmt(epsilon)}_m${fmt(momentum)}_nesterov${nesterov ? 'True' : 'False'}`,
    );
  }
}

export interface AdamWOptions extends AdamOptions {
  weightDecay?: Hyper;
}

/** optax.adamw: Adam direction plus `wd·p`, scaled by −lr. `epsilonRoot` defaults to 0 here, as the reference's AdamW. */
export class AdamW extends OptaxOptimizer {
  constructor(readonly learningRate: LearningRate = 0.01, opts: AdamWOptions = {}) {
    const { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, epsilonRoot = 0, weightDecay = 1e-4 } = opts;
    super(
      chain(scaleByAdam(beta1, beta2, epsilon, epsilonRoot), addDecayedWeights(weightDecay), scaleByLearningRate(learningRate)),
      `AdamW_lr${fmt(learningRate)}_wd${fmt(weightDecay)}`,
    );
  }
}

// ------------------------------------------------------------------------------------------------
// Plugins (kind 'optimizer'); field names match the constructor options.

const lr = z.number().positive().default(0.01);

registerPlugin({
  kind: 'optimizer',
  name: 'SGD',
  description: 'Stochastic gradient descent (optax.sgd)',
  schema: z.object({ learningRate: lr }).strict(),
  create: (c: { learningRate: number }) => new SGD(c.learningRate),
  cls: SGD,
});

registerPlugin({
  kind: 'optimizer',
  name: 'SGDM',
  description: 'SGD with momentum (optax.sgd with a trace)',
  schema: z.object({ learningRate: lr, momentum: z.number().min(0).max(1).default(0.9), nesterov: z.boolean().default(false) }).strict(),
  create: (c: { learningRate: number; momentum: number; nesterov: boolean }) => new SGDM(c.learningRate, c),
  cls: SGDM,
});

const adamFields = {
  learningRate: lr,
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.999),
  epsilon: z.number().min(0).default(1e-8),
};

registerPlugin({
  kind: 'optimizer',
  name: 'Adam',
  description: 'Adam with bias correction (optax.adam, epsilonRoot 1e-8)',
  schema: z.object({ ...adamFields, epsilonRoot: z.number().min(0).default(1e-8) }).strict(),
  create: (c: Required<AdamOptions> & { learningRate: number }) => new Adam(c.learningRate, c),
  cls: Adam,
});

registerPlugin({
  kind: 'optimizer',
  name: 'AdamW',
  description: 'Adam with decoupled weight decay (optax.adamw)',
  schema: z
    .object({ ...adamFields, epsilonRoot: z.number().min(0).default(0), weightDecay: z.number().min(0).default(1e-4) })
    .strict(),
  create: (c: Required<AdamWOptions> & { learningRate: number }) => new AdamW(c.learningRate, c),
  cls: AdamW,
});

registerPlugin({
  kind: 'optimizer',
  name: 'RMSProp',
  description: 'RMSProp with optional momentum (optax.rmsprop)',
  schema: z
    .object({
      learningRate: lr,
      decay: z.number().min(0).max(1).default(0.9),
      epsilon: z.number().min(0).default(1e-8),
      momentum: z.number().min(0).max(1).default(0),
      nesterov: z.boolean().default(false),
    })
    .strict(),
  create: (c: Required<RMSPropOptions> & { learningRate: number }) => new RMSProp(c.learningRate, c),
  cls: RMSProp,
});
