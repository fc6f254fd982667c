/**
 * Optimizer wrappers (reference `optimizers/base.py`).
 */
import { parseOptions, registry, registerPlugin, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { InitOptions, Optimizer, OptState, Params, UpdateOptions } from './base';
import { clipTree, tidy } from './common';

/** The plugin config: the inner optimizer by name, and the clip (default as the reference's 3.0). */
export const GradientClipOptimizerSchema = z
  .object({ opt: z.string().default('Adam'), optConfig: z.record(z.any()).default({}), gradClip: z.number().positive().default(3.0) })
  .strict();

/**
 * An optimizer that changes the gradient (and update options) and hands them to an inner optimizer,
 * whose state it keeps unchanged: `init`, `getParams` and `getState` are the inner optimizer's.
 */
export abstract class GradientWrapper implements Optimizer {
  constructor(readonly opt: Optimizer) {}
  get name(): string {
    return this.opt.name;
  }
  /** The gradient and options the inner optimizer gets (`batched`: a leading task axis). */
  protected abstract transform(state: OptState, grad: Params, opts: UpdateOptions, batched: boolean): [Params, UpdateOptions];
  init(params: Params, opts?: InitOptions): OptState {
    return this.opt.init(params, opts);
  }
  initBatch(params: Params, opts?: InitOptions): OptState {
    return this.opt.initBatch(params, opts);
  }
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): OptState {
    return tidy(() => this.opt.update(state, ...this.transform(state, grad, opts, false)));
  }
  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): OptState {
    return tidy(() => this.opt.updateBatch(state, ...this.transform(state, grad, opts, true)));
  }
  getParams(state: OptState): Params {
    return this.opt.getParams(state);
  }
  getState(state: OptState): PyTree | null {
    return this.opt.getState(state);
  }
}

/** Clips every gradient element to ±gradClip, then delegates (state is the inner optimizer's). */
export class GradientClipOptimizer extends GradientWrapper {
  readonly gradClip: number;
  constructor(opt: Optimizer, gradClip?: number) {
    if (!opt || typeof opt.update !== 'function') {
      throw new Error('GradientClipOptimizer: opt must be an Optimizer instance (not a class or config)');
    }
    super(opt);
    this.gradClip = parseOptions(GradientClipOptimizerSchema.pick({ gradClip: true }), { gradClip }, 'GradientClipOptimizer').gradClip;
  }
  protected transform(_state: OptState, grad: Params, opts: UpdateOptions): [Params, UpdateOptions] {
    return [clipTree(grad, this.gradClip), opts];
  }
}

registerPlugin({
  kind: 'optimizer',
  name: 'GradientClipOptimizer',
  description: 'Clips gradients elementwise to ±gradClip, then applies an inner optimizer',
  schema: GradientClipOptimizerSchema,
  create: (c) => new GradientClipOptimizer(registry.create<Optimizer>('optimizer', c.opt, c.optConfig), c.gradClip),
  cls: GradientClipOptimizer,
});
