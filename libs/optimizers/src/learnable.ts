/**
 * Learnable hyper-parameter optimizers (reference `learned_optimizers/base.py`: `LearnableSGD`, `LearnableSGDM`, `LearnableAdam`).
 * θ holds transformed hyper-parameters; `optFn` returns the hand-designed optimizer with them.
 * With `thetaIsVector` every θ leaf is `[N]` (one value per stacked task) and the returned
 * optimizer broadcasts them per task in `updateBatch`. Hyper-parameters are evaluated lazily
 * inside the optimizer's update (`LazyHyper`), so `optFn` allocates no tensors.
 *
 * LearnableSGD  θ {log_lr}                                           -> SGD(exp(log_lr))
 * LearnableSGDM θ {log_lr, one_minus_momentum = ln(1−m)}             -> SGDM(exp(log_lr), 1−exp(·))
 * LearnableAdam θ {log_lr, one_minus_beta1, one_minus_beta2, log_epsilon}
 *                                        -> Adam(exp, 1−exp, 1−exp, exp; epsilonRoot 1e-8)
 */
import * as tf from '@tensorflow/tfjs';
import { parseOptions, registerPlugin, type PRNGKey } from '@lopt/core';
import { z } from 'zod';
import type { LearnedOptimizer, Optimizer, Theta } from './base';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';
import { LazyHyper } from './common';
import { Adam, SGD, SGDM } from './optax_opts';

type T = Record<string, tf.Tensor>;

function need(theta: Theta, keys: string[], who: string): T {
  const t = theta as T;
  for (const k of keys) if (!(t && t[k] instanceof tf.Tensor)) throw new Error(`${who} theta: missing '${k}' (expected ${keys.join(', ')})`);
  return t;
}

const expOf = (x: tf.Tensor) => new LazyHyper(() => tf.exp(x));
const oneMinusExpOf = (x: tf.Tensor) => new LazyHyper(() => tf.sub(1, tf.exp(x)));

// The options' schemas hold their defaults (the reference's `__init__` signatures).
/** LearnableSGD's options (learned_optimization/learned_optimizers/base.py, `LearnableSGD`). */
export const LearnableSGDSchema = z.object({ initialLr: z.number().positive().default(0.01) }).strict();
/** LearnableSGDM's options (`LearnableSGDM`). */
export const LearnableSGDMSchema = z.object({ initialLr: z.number().positive().default(0.01), initialMomentum: z.number().min(0).lt(1).default(0.9) }).strict();
/** LearnableAdam's options (`LearnableAdam`). */
export const LearnableAdamSchema = z
  .object({
    initialLr: z.number().positive().default(1e-3),
    initialBeta1: z.number().min(0).lt(1).default(0.9),
    initialBeta2: z.number().min(0).lt(1).default(0.999),
    initialEpsilon: z.number().positive().default(1e-8),
  })
  .strict();
/** The options `new LearnableSGD(opts)` takes. */
export type LearnableSGDOptions = z.input<typeof LearnableSGDSchema>;
/** The options `new LearnableSGDM(opts)` takes. */
export type LearnableSGDMOptions = z.input<typeof LearnableSGDMSchema>;
/** The options `new LearnableAdam(opts)` takes. */
export type LearnableAdamOptions = z.input<typeof LearnableAdamSchema>;

/**
 * SGD with a learnable learning rate, θ `{log_lr}` (reference `learned_optimizers/base.py`, `LearnableSGD`).
 */
export class LearnableSGD implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly initialLr: number;
  constructor(opts: LearnableSGDOptions = {}) {
    this.initialLr = parseOptions(LearnableSGDSchema, opts, 'LearnableSGD').initialLr;
  }
  init(_key?: PRNGKey): Theta {
    return { log_lr: tf.scalar(Math.log(this.initialLr)) };
  }
  optFn(theta: Theta, _isTraining = false, _thetaIsVector = false): Optimizer {
    const t = need(theta, ['log_lr'], 'LearnableSGD');
    return new SGD(expOf(t.log_lr));
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

/**
 * SGD with momentum, learning rate and momentum learnable, θ `{log_lr, one_minus_momentum}` (reference
 * `learned_optimizers/base.py`, `LearnableSGDM`).
 */
export class LearnableSGDM implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly initialLr: number;
  readonly initialMomentum: number;
  constructor(opts: LearnableSGDMOptions = {}) {
    const c = parseOptions(LearnableSGDMSchema, opts, 'LearnableSGDM');
    this.initialLr = c.initialLr;
    this.initialMomentum = c.initialMomentum;
  }
  init(_key?: PRNGKey): Theta {
    return { log_lr: tf.scalar(Math.log(this.initialLr)), one_minus_momentum: tf.scalar(Math.log(1 - this.initialMomentum)) };
  }
  optFn(theta: Theta, _isTraining = false, _thetaIsVector = false): Optimizer {
    const t = need(theta, ['log_lr', 'one_minus_momentum'], 'LearnableSGDM');
    return new SGDM(expOf(t.log_lr), oneMinusExpOf(t.one_minus_momentum));
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

/**
 * Adam with learnable learning rate, β1, β2 and ε (reference `learned_optimizers/base.py`, `LearnableAdam`).
 */
export class LearnableAdam implements LearnedOptimizer {
  readonly name: string | null = null;
  readonly initialLr: number;
  readonly initialBeta1: number;
  readonly initialBeta2: number;
  readonly initialEpsilon: number;
  constructor(opts: LearnableAdamOptions = {}) {
    const c = parseOptions(LearnableAdamSchema, opts, 'LearnableAdam');
    this.initialLr = c.initialLr;
    this.initialBeta1 = c.initialBeta1;
    this.initialBeta2 = c.initialBeta2;
    this.initialEpsilon = c.initialEpsilon;
  }
  init(_key?: PRNGKey): Theta {
    return {
      log_lr: tf.scalar(Math.log(this.initialLr)),
      one_minus_beta1: tf.scalar(Math.log(1 - this.initialBeta1)),
      one_minus_beta2: tf.scalar(Math.log(1 - this.initialBeta2)),
      log_epsilon: tf.scalar(Math.log(this.initialEpsilon)),
    };
  }
  optFn(theta: Theta, _isTraining = false, _thetaIsVector = false): Optimizer {
    const t = need(theta, ['log_lr', 'one_minus_beta1', 'one_minus_beta2', 'log_epsilon'], 'LearnableAdam');
    return new Adam(expOf(t.log_lr), {
      beta1: oneMinusExpOf(t.one_minus_beta1),
      beta2: oneMinusExpOf(t.one_minus_beta2),
      epsilon: expOf(t.log_epsilon),
      epsilonRoot: 1e-8,
    });
  }

  /** This optimizer with θ as a `tf.Optimizer` (see tfjs_adapter.ts). */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

registerPlugin({ kind: 'learned_optimizer', name: 'LearnableSGD', description: 'SGD with a learnable log learning rate', schema: LearnableSGDSchema, create: (c) => new LearnableSGD(c), cls: LearnableSGD });
registerPlugin({
  kind: 'learned_optimizer',
  name: 'LearnableSGDM',
  description: 'SGD with momentum; learnable log learning rate and log(1 - momentum)',
  schema: LearnableSGDMSchema,
  create: (c) => new LearnableSGDM(c),
  cls: LearnableSGDM,
});
registerPlugin({
  kind: 'learned_optimizer',
  name: 'LearnableAdam',
  description: 'Adam with learnable log lr, log(1 - beta1), log(1 - beta2), log epsilon',
  schema: LearnableAdamSchema,
  create: (c) => new LearnableAdam(c),
  cls: LearnableAdam,
});
