/**
 * Example plugin: `MomentumMLPLOpt`, a small learned optimizer.
 *
 * For every parameter p with gradient g it keeps one momentum `m ← β m + (1 − β) g` and feeds
 * two features to a per-parameter MLP `2 -> hiddenSize -> 1` (ReLU), shared by all parameters:
 *
 *   ĝ = g / √(mean(g²) + ε),   m̂ = m / √(mean(m²) + ε)      (means over the leaf, per task)
 *   out = w1 · relu(ĝ w0[0] + m̂ w0[1] + b0) + b1
 *   p ← p − stepMult · out
 *
 * θ is the MLP, haiku-named as `hk.nets.MLP([hiddenSize, 1])` would name it:
 * `{'mlp/~/linear_0': {w: [2, H], b: [H]}, 'mlp/~/linear_1': {w: [H, 1], b: [1]}}`; with
 * `thetaIsVector` every leaf has a leading task axis N (one θ per task: PES/ES perturbations).
 *
 * Optimizer state (plain data, a new object per update):
 * ```
 * { params, momentum: <params tree>, iteration: int32 [], state: modelState | null }
 * batched: every params / momentum leaf [N, ...], iteration [N]
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, registerPlugin, treeFlatten, treeMap, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import {
  incCounter,
  numTasks,
  tidy,
  treeClone,
  zerosCounter,
  type InitOptions,
  type LearnedOptimizer,
  type Optimizer,
  type OptState,
  type Params,
  type Theta,
  type UpdateOptions,
} from '@lopt/optimizers';

export interface MomentumMLPLOptConfig {
  /** Width of the hidden layer. */
  hiddenSize: number;
  /** Scale of the step: `p ← p − stepMult · out`. */
  stepMult: number;
  /** β of the momentum `m ← β m + (1 − β) g`. */
  momentumDecay: number;
}

/** ε of the second-moment normalisation of the features. */
export const NORM_EPS = 1e-5;

const L0 = 'mlp/~/linear_0';
const L1 = 'mlp/~/linear_1';

interface Linear {
  w: tf.Tensor;
  b: tf.Tensor;
}
export type MomentumMLPTheta = Record<typeof L0 | typeof L1, Linear>;

export interface MomentumMLPState extends OptState {
  params: Params;
  momentum: Params;
  iteration: tf.Tensor;
  state: PyTree | null;
}

export class MomentumMLPLOpt implements LearnedOptimizer {
  readonly name = 'MomentumMLPLOpt';
  readonly config: MomentumMLPLOptConfig;

  constructor(config: Partial<MomentumMLPLOptConfig> = {}) {
    this.config = {
      hiddenSize: config.hiddenSize ?? 8,
      stepMult: config.stepMult ?? 0.01,
      momentumDecay: config.momentumDecay ?? 0.9,
    };
  }

  /** `hk.nets.MLP([hiddenSize, 1])` on 2 input features, initialised as haiku would from `key`. */
  init(key: PRNGKey): Theta {
    return haikuInit(key, (hk) => hk.mlp(2, [this.config.hiddenSize, 1]));
  }

  /** The optimizer with θ captured (no tensors are made here; θ stays owned by the caller). */
  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new MomentumMLPOptimizer(this.config, checkTheta(theta, this.config.hiddenSize, thetaIsVector), thetaIsVector);
  }
}

/** Checks θ's names and shapes (a leading task axis on every leaf when `thetaIsVector`). */
function checkTheta(theta: Theta, H: number, thetaIsVector: boolean): MomentumMLPTheta {
  const t = theta as Record<string, Partial<Linear>>;
  const want: Record<string, [number[], number[]]> = { [L0]: [[2, H], [H]], [L1]: [[H, 1], [1]] };
  let n: number | null = null;
  for (const [layer, shapes] of Object.entries(want)) {
    const l = t?.[layer];
    (['w', 'b'] as const).forEach((leaf, i) => {
      const x = l?.[leaf];
      const where = `MomentumMLPLOpt theta '${layer}'.${leaf}`;
      if (!(x instanceof tf.Tensor)) throw new Error(`${where}: missing (expected '${L0}' and '${L1}', each with w and b)`);
      const inner = x.shape.slice(thetaIsVector ? 1 : 0);
      if (x.rank !== shapes[i].length + (thetaIsVector ? 1 : 0) || inner.join() !== shapes[i].join()) {
        throw new Error(`${where}: shape [${x.shape}], expected [${thetaIsVector ? 'N, ' : ''}${shapes[i]}]${thetaIsVector ? ' (thetaIsVector: one θ per task)' : ''}`);
      }
      if (thetaIsVector) {
        if (n !== null && x.shape[0] !== n) throw new Error(`${where}: ${x.shape[0]} tasks on the leading axis, other θ leaves have ${n}`);
        n = x.shape[0];
      }
    });
  }
  return t as MomentumMLPTheta;
}

/** The optimizer `optFn` returns. */
export class MomentumMLPOptimizer implements Optimizer {
  readonly name = 'MomentumMLPOptimizer';

  constructor(
    readonly config: MomentumMLPLOptConfig,
    readonly theta: MomentumMLPTheta,
    readonly thetaIsVector: boolean,
  ) {}

  init(params: Params, opts: InitOptions = {}): MomentumMLPState {
    return tidy(() => ({
      params: treeClone(params),
      momentum: treeMap((p: tf.Tensor) => tf.zerosLike(p), params),
      iteration: zerosCounter({ batched: false }, 0),
      state: treeClone(opts.modelState ?? null),
    }));
  }

  initBatch(params: Params, opts: InitOptions = {}): MomentumMLPState {
    return tidy(() => ({
      params: treeClone(params),
      momentum: treeMap((p: tf.Tensor) => tf.zerosLike(p), params),
      iteration: zerosCounter({ batched: true }, numTasks(params)),
      state: treeClone(opts.modelState ?? null),
    }));
  }

  /** One task: the N = 1 case of `updateBatch` (a per-task θ needs the batched form). */
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): MomentumMLPState {
    if (this.thetaIsVector) throw new Error('MomentumMLPLOpt: with thetaIsVector (one θ per task) use initBatch/updateBatch');
    return tidy(() => {
      const s = state as MomentumMLPState;
      const expand = (t: PyTree) => treeMap((x: tf.Tensor) => tf.expandDims(x, 0), t);
      const squeeze = (t: PyTree) => treeMap((x: tf.Tensor) => tf.squeeze(x, [0]), t);
      const [params, momentum] = this.step(expand(s.params), expand(s.momentum), expand(grad));
      return {
        params: squeeze(params),
        momentum: squeeze(momentum),
        iteration: incCounter(s.iteration),
        state: treeClone(opts.modelState ?? null),
      };
    });
  }

  /** N stacked tasks: every params / grad leaf `[N, ...]`, `iteration` `[N]`. */
  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): MomentumMLPState {
    return tidy(() => {
      const s = state as MomentumMLPState;
      const [params, momentum] = this.step(s.params, s.momentum, grad);
      return { params, momentum, iteration: incCounter(s.iteration), state: treeClone(opts.modelState ?? null) };
    });
  }

  getParams(state: OptState): Params {
    return state.params;
  }
  getState(state: OptState): PyTree | null {
    return state.state ?? null;
  }

  /**
   * θ leaves shaped to broadcast against `[N, S, H]`: `[N or 1, 1, H]` (and `[N or 1, 1]` for the
   * output bias). Call inside a tidy.
   */
  private layer(n: number): { wg: tf.Tensor; wm: tf.Tensor; b0: tf.Tensor; w1: tf.Tensor; b1: tf.Tensor } {
    const H = this.config.hiddenSize;
    const { w: w0, b: b0 } = this.theta[L0];
    const { w: w1, b: b1 } = this.theta[L1];
    const lead = this.thetaIsVector ? w0.shape[0] : 1;
    if (this.thetaIsVector && lead !== n) {
      throw new Error(`MomentumMLPLOpt: θ has ${lead} tasks on its leading axis (thetaIsVector) but the state has ${n}; they must match`);
    }
    const w0r = tf.reshape(w0, [lead, 2, H]);
    return {
      wg: tf.reshape(tf.slice(w0r, [0, 0, 0], [lead, 1, H]), [lead, 1, H]),
      wm: tf.reshape(tf.slice(w0r, [0, 1, 0], [lead, 1, H]), [lead, 1, H]),
      b0: tf.reshape(b0, [lead, 1, H]),
      w1: tf.reshape(w1, [lead, 1, H]),
      b1: tf.reshape(b1, [lead, 1]),
    };
  }

  /** The batched step (leading task axis on every leaf). Call inside a tidy. */
  private step(params: Params, momentum: Params, grad: Params): [Params, Params] {
    const [ps, def] = treeFlatten<tf.Tensor>(params);
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const ms = treeFlatten<tf.Tensor>(momentum)[0];
    if (gs.length !== ps.length || ms.length !== ps.length) {
      throw new Error(`MomentumMLPLOpt: params have ${ps.length} leaves, grads ${gs.length}, momenta ${ms.length}`);
    }
    if (ps.length === 0) return [treeClone(params), treeClone(momentum)];
    const N = ps[0].shape[0];
    const { wg, wm, b0, w1, b1 } = this.layer(N);
    const beta = this.config.momentumDecay;
    const newPs: tf.Tensor[] = [];
    const newMs: tf.Tensor[] = [];
    ps.forEach((p, i) => {
      const g = gs[i];
      if (g.shape.join() !== p.shape.join() || ms[i].shape.join() !== p.shape.join()) {
        throw new Error(`MomentumMLPLOpt: leaf ${i}: params [${p.shape}], grad [${g.shape}], momentum [${ms[i].shape}]; expected equal shapes`);
      }
      const m = tf.add(tf.mul(ms[i], beta), tf.mul(g, 1 - beta));
      const S = p.size / N;
      // [N, S, 1] features, normalised by their second moment over this leaf of each task.
      const norm = (x: tf.Tensor) => {
        const x2 = tf.reshape(x, [N, S, 1]);
        return tf.mul(x2, tf.rsqrt(tf.add(tf.mean(tf.square(x2), 1, true), NORM_EPS)));
      };
      const h = tf.relu(tf.add(tf.add(tf.mul(norm(g), wg), tf.mul(norm(m), wm)), b0)); // [N, S, H]
      const out = tf.add(tf.sum(tf.mul(h, w1), -1), b1); // [N, S]
      newPs.push(tf.sub(p, tf.reshape(tf.mul(out, this.config.stepMult), p.shape)));
      newMs.push(m);
    });
    return [treeUnflatten(def, newPs), treeUnflatten(def, newMs)];
  }
}

export const MomentumMLPLOptSchema = z
  .object({
    hiddenSize: z.number().int().positive().default(8),
    stepMult: z.number().positive().default(0.01),
    momentumDecay: z.number().min(0).lt(1).default(0.9),
  })
  .strict();

registerPlugin({
  kind: 'learned_optimizer',
  name: 'MomentumMLPLOpt',
  description: 'example plugin: per-parameter MLP (2 -> 8 -> 1) on normalised gradient and momentum',
  schema: MomentumMLPLOptSchema,
  create: (config: MomentumMLPLOptConfig) => new MomentumMLPLOpt(config),
  cls: MomentumMLPLOpt,
});
