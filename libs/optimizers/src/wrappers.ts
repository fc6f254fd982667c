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

/** Clips every gradient element to ±gradClip, then delegates (state is the inner optimizer's). */
export class GradientClipOptimizer implements Optimizer {
  readonly gradClip: number;
  constructor(
    readonly opt: Optimizer,
    gradClip?: number,
  ) {
    if (!opt || typeof opt.update !== 'function') {
      throw new Error('GradientClipOptimizer: opt must be an Optimizer instance (not a class or config)');
    }
    this.gradClip = parseOptions(GradientClipOptimizerSchema.pick({ gradClip: true }), { gradClip }, 'GradientClipOptimizer').gradClip;
  }
  get name(): string {
    return this.opt.name;
  }
  init(params: Params, opts?: InitOptions): OptState {
    return this.opt.init(params, opts);
  }
  initBatch(params: Params, opts?: InitOptions): OptState {
    return this.opt.initBatch(params, opts);
  }
  update(state: OptState, grad: Params, opts?: UpdateOptions): OptState {
    return tidy(() => this.opt.update(state, clipTree(grad, this.gradClip), opts));
  }
  updateBatch(state: OptState, grad: Params, opts?: UpdateOptions): OptState {
    return tidy(() => this.opt.updateBatch(state, clipTree(grad, this.gradClip), opts));
  }
  getParams(state: OptState): Params {
    return this.opt.getParams(state);
  }
  getState(state: OptState): PyTree | null {
    return this.opt.getState(state);
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
