/**
 * The hyper-parameters a population tunes, and how a mutator perturbs them: the reference leaves
 * this to a gin-configured `mutate_fn` (e.g. `population/examples/simple_cnn/train.py` moves the
 * learning rate by ±0.5 in log space; `examples/synthetic/train.py` by ±0.1). Here each tuned
 * value is a config path with a perturbation: `log` (multiply by exp(±step), or by exp(step·z) for
 * a random move) or `linear` (add ±step, or step·z), clamped to [min, max].
 *
 * Meta-parameters are `{ path: value }`, e.g. `{ 'thetaOptimizer.config.learningRate': 1e-3 }`.
 */
import { z } from 'zod';

/** A member's hyper-parameters: config path to value, e.g. `{'thetaOptimizer.config.learningRate': 1e-3}`. */
export type MetaParams = Record<string, number>;

/**
 * How one tuned hyper-parameter starts and moves: initial value(s), `log` or `linear` perturbation, step
 * size, and bounds.
 */
export const HParamSchema = z
  .object({
    /** Starting value: one for every member, or one per member. Left out: the experiment's own. */
    init: z.union([z.number(), z.array(z.number()).min(1)]).optional(),
    perturb: z.enum(['log', 'linear']).default('log'),
    /** Size of one move: a factor exp(step) for `log`, an addend for `linear`. */
    step: z.number().positive().default(0.5),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
  .refine((h) => h.min === undefined || h.max === undefined || h.min <= h.max, { message: 'min must be <= max' });

/** A parsed {@link HParamSchema}. */
export type HParamSpec = z.infer<typeof HParamSchema>;

/** Perturbations of a set of hyper-parameters. */
export class HParamPerturbation {
  constructor(
    readonly specs: Readonly<Record<string, HParamSpec>>,
    readonly seed = 0,
  ) {}

  private clamp(path: string, v: number): number {
    const { min, max } = this.specs[path];
    return Math.min(max ?? Infinity, Math.max(min ?? -Infinity, v));
  }

  private move(path: string, v: number, amount: number): number {
    const s = this.specs[path];
    if (!s) return v; // a meta-parameter this population does not tune stays as it is
    return this.clamp(path, s.perturb === 'log' ? v * Math.exp(amount * s.step) : v + amount * s.step);
  }

  /**
   * A deterministic move (the explore mutator's `mutate_fn(meta_params, direction, phase_idx)`):
   * one step up for 'pos', one down for 'neg'.
   */
  directed(meta: MetaParams, direction: 'pos' | 'neg'): MetaParams {
    const sign = direction === 'pos' ? 1 : -1;
    return Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, this.move(k, v, sign)]));
  }

  /**
   * A random move (the genetic mutator's `mutate_fn(meta_params)`): step × a standard normal draw
   * per value. `draw` numbers the call; the same (seed, draw) gives the same move, so a resumed
   * controller continues the sequence it would have drawn.
   */
  random(meta: MetaParams, draw: number): MetaParams {
    return Object.fromEntries(Object.keys(meta).sort().map((k, j) => [k, this.move(k, meta[k], standardNormal(this.seed, draw, j))]));
  }
}

/** 32-bit mix (splitmix32's finaliser). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A uniform in (0, 1) from (seed, a, b, c). */
function uniform(seed: number, a: number, b: number, c: number): number {
  const h = mix32(mix32(mix32(mix32(seed >>> 0) ^ (a >>> 0)) ^ (b >>> 0)) ^ (c >>> 0));
  return (h + 0.5) / 4294967296;
}

/** A standard normal from (seed, draw, index) by Box–Muller. */
export function standardNormal(seed: number, draw: number, index: number): number {
  const u1 = uniform(seed, draw, index, 1);
  const u2 = uniform(seed, draw, index, 2);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
