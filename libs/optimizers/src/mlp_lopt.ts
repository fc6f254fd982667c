/**
 * MLPLOpt ("LOLv2"): the reference's `learned_optimizers/mlp_lopt.py` (`MLPLOpt` and the optimizer
 * its `opt_fn` returns). A per-parameter MLP 19 -> 32 -> 32 -> 2 on [g, p, six momenta] (second-moment
 * normalised per leaf and feature) plus eleven tanh time features;
 * `p ← p − direction · exp(magnitude · expMult) · stepMult`.
 *
 * θ (Haiku names): `{'mlp/~/linear_0': {w: [19,32], b: [32]}, 'mlp/~/linear_1': {w: [32,32], b: [32]},
 * 'mlp/~/linear_2': {w: [32,2], b: [2]}}` — 1,762 values; with thetaIsVector every leaf has a
 * leading task axis [N].
 *
 * Optimizer state (MLPLOptState):
 * ```
 * { params, rollingFeatures: { m: <params tree, leaf.shape + [6]>, t: int32 [6] },
 *   iteration: int32 [], state: modelState | null }
 * batched: m [N, ...leaf, 6], t [N, 6], iteration [N]
 * ```
 *
 * The update is written once, as the reference's math (`mlpLoptUpdateOps` below). It runs as the
 * tf.js kernel `MLPLOptUpdate` (native.ts) where the backend has a registered implementation
 * that takes the inputs and no gradient is recorded — the native C kernel on wasm and cpu, the
 * wasm tf.js variants (mlp_lopt_wasm.ts) on wasm without it — and as these tf.js ops otherwise.
 * `LOPT_NATIVE=auto|on|off` is the one setting.
 */
import * as tf from '@tensorflow/tfjs';
import { haikuInit, nativeUsable, registerPlugin, treeFlatten, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import { z } from 'zod';
import type { HostUpdate, InitOptions, LearnedOptimizer, Optimizer, OptState, Params, Theta } from './base';
import { BatchedOptimizer } from './batched_optimizer';
import { BatchCtx, MomAccumulator, incCounter, linear, numTasks, secondMomentNormalize, tanhEmbedding, tidy, treeClone, vecRollingMom, zerosCounter } from './common';
import { MLPLOPT_UPDATE, packMLPLOptInputs, unpackMLPLOptInputs, type MLPLOptUpdateAttrs, type MLPLOptUpdateInputs } from './mlp_lopt_kernel';
import { mlpLoptHostStep, mlpLoptKernelApplies } from './native';
import type { Linear } from './per_param_mlp';
import { asTfjsOptimizer, type LearnedTfjsOptimizer } from './tfjs_adapter';

/** The momentum decays whose accumulators MLPLOpt feeds its MLP (learned_optimization/learned_optimizers/mlp_lopt.py). */
export const MLPLOPT_DECAYS = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999];

/**
 * One MLPLOpt update of N stacked tasks, as the reference writes it: `_Opt.update` in
 * `learned_optimizers/mlp_lopt.py` (`MLPLOpt.opt_fn`), with a leading task axis N on every leaf
 * (the reference's update vmapped; one task is N = 1) and θ shared or per task (`attrs.perTask`).
 * Inputs and outputs follow the `MLPLOptUpdate` kernel's contract (mlp_lopt_kernel.ts): the new
 * params of every leaf, the new momenta, the new iteration and momentum counters. Differentiable,
 * and the implementation every registered kernel is tested against.
 */
export function mlpLoptUpdateOps(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[] {
  const { ps, gs, ms, t, layers, iteration } = unpackMLPLOptInputs(inputs, attrs);
  const N = iteration.shape[0];
  const K = attrs.decays.length;

  // next_rolling_features = common.vec_rolling_mom(decays).update(rolling_features, grad): m ← β m + (1 − β) g, t + 1
  const decays = tf.tensor1d(attrs.decays);
  const nextM = ms.map((m, i) => tf.add(tf.mul(decays, m), tf.mul(tf.sub(1, decays), tf.expandDims(gs[i], -1))));
  const nextT = incCounter(t);

  // training_step_feature = _tanh_embedding(iteration): tanh(iteration / τ − 1) for 11 time scales τ, [N, 11]
  const trainingStepFeature = tanhEmbedding(iteration);

  // hk.nets.MLP([hidden] * layers + [2]): linear layers, ReLU between them; on rows [N, S, in]
  const mlp = (inp: tf.Tensor): tf.Tensor =>
    layers.reduce((h, l, j) => {
      const out = linear(h, l, attrs.perTask);
      return j < layers.length - 1 ? tf.relu(out) : out;
    }, inp);

  // _update_tensor(p, g, m) for one leaf of every task; a leaf's values are the rows [N, S, ·]
  // (a scalar leaf is one row, as the reference's expand_dims).
  const updateTensor = (p: tf.Tensor, g: tf.Tensor, m: tf.Tensor): tf.Tensor => {
    const S = p.size / N;
    // features: the raw gradient, the raw parameter, all momenta -> [N, S, 2 + K]
    const inpStack = tf.concat([tf.reshape(g, [N, S, 1]), tf.reshape(p, [N, S, 1]), tf.reshape(m, [N, S, K])], 2);
    // _second_moment_normalizer over the leaf's axes (per task and feature)
    const normed = secondMomentNormalize(inpStack, [1]);
    // once normalized, add the features that are constant across the tensor: the training step embedding
    const stacked = tf.tile(tf.reshape(trainingStepFeature, [N, 1, -1]), [1, S, 1]);
    const inp = tf.concat([normed, stacked], 2); // [N, S, 19]
    // apply the per parameter MLP, split its 2 outputs into a direction and a magnitude
    const output = mlp(inp); // [N, S, 2]
    const direction = tf.reshape(tf.slice(output, [0, 0, 0], [N, S, 1]), p.shape);
    const magnitude = tf.reshape(tf.slice(output, [0, 0, 1], [N, S, 1]), p.shape);
    const step = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, attrs.expMult))), attrs.stepMult);
    return tf.sub(p, step);
  };

  const nextParams = ps.map((p, i) => updateTensor(p, gs[i], nextM[i]));
  return [...nextParams, ...nextM, incCounter(iteration), nextT];
}

/**
 * The update as one tf.js op: the backend's registered `MLPLOptUpdate` kernel where it takes these
 * inputs and no gradient tape is recording, else `mlpLoptUpdateOps`.
 */
export function mlpLoptUpdate(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[] {
  if (mlpLoptKernelApplies(inputs, attrs)) return tf.engine().runKernel(MLPLOPT_UPDATE, inputs as any, attrs as any) as unknown as tf.Tensor[];
  return mlpLoptUpdateOps(inputs, attrs);
}

/**
 * State of {@link MLPLOptOptimizer}: params, rolling momentum features and iteration (reference
 * `mlp_lopt.py`, `MLPLOptState`).
 */
export interface MLPLOptState extends OptState {
  params: Params;
  rollingFeatures: MomAccumulator;
  iteration: tf.Tensor;
  state: PyTree | null;
}

/** MLPLOpt's constructor options and defaults (learned_optimization/learned_optimizers/mlp_lopt.py, `MLPLOpt.__init__`). */
export interface MLPLOptOptions {
  expMult?: number;
  stepMult?: number;
  hiddenSize?: number;
  hiddenLayers?: number;
}

/**
 * The MLPLOpt learned optimizer (reference `learned_optimizers/mlp_lopt.py`, `MLPLOpt`): a per-parameter MLP
 * on the gradient, parameter, momenta and time features.
 */
export class MLPLOpt implements LearnedOptimizer {
  readonly expMult: number;
  readonly stepMult: number;
  readonly hiddenSize: number;
  readonly hiddenLayers: number;
  /** The reference's `name` is None for the base lopts. */
  readonly name: string | null = null;

  constructor(opts: MLPLOptOptions = {}) {
    this.expMult = opts.expMult ?? 0.001;
    this.stepMult = opts.stepMult ?? 0.001;
    this.hiddenSize = opts.hiddenSize ?? 32;
    this.hiddenLayers = opts.hiddenLayers ?? 2;
  }

  layerSizes(): number[] {
    return [19, ...new Array(this.hiddenLayers).fill(this.hiddenSize), 2];
  }

  /** `hk.nets.MLP([hidden] * layers + [2])` initialised on 19 input features, haiku-exact. */
  init(key: PRNGKey): Theta {
    const sizes = this.layerSizes();
    return haikuInit(key, (hk) => hk.mlp(sizes[0], sizes.slice(1)));
  }

  optFn(theta: Theta, _isTraining = false, thetaIsVector = false): Optimizer {
    return new MLPLOptOptimizer(this, theta as Record<string, Linear>, thetaIsVector);
  }

  /** This optimizer with θ as a `tf.Optimizer` (for `model.compile` / `minimize`); see tfjs_adapter.ts. */
  asTfjsOptimizer(theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
    return asTfjsOptimizer(this, theta, opts);
  }
}

/** The optimizer that has captured θ. */
export class MLPLOptOptimizer extends BatchedOptimizer<MLPLOptState> {
  constructor(
    readonly lopt: MLPLOpt,
    readonly theta: Record<string, Linear>,
    readonly thetaIsVector: boolean,
  ) {
    super('MLPLOpt');
    const n = lopt.hiddenLayers + 1;
    for (let i = 0; i < n; i++) {
      if (!theta[`mlp/~/linear_${i}`]) throw new Error(`MLPLOpt theta: missing 'mlp/~/linear_${i}' (expected linear_0..linear_${n - 1})`);
    }
  }

  private layers(): Linear[] {
    return Array.from({ length: this.lopt.hiddenLayers + 1 }, (_, i) => this.theta[`mlp/~/linear_${i}`]);
  }

  protected initImpl(params: Params, opts: InitOptions, batched: boolean): MLPLOptState {
    return tidy(() => {
      const ctx: BatchCtx = { batched };
      return {
        params: treeClone(params),
        rollingFeatures: vecRollingMom.init(params, MLPLOPT_DECAYS.length, ctx),
        iteration: zerosCounter(ctx, batched ? numTasks(params) : 0),
        state: treeClone(opts.modelState ?? null),
      };
    });
  }

  /** The `MLPLOptUpdate` kernel's inputs and attributes for a batched state (θ and leaf shapes checked). */
  kernelArgs(s: MLPLOptState, grad: Params): { inputs: MLPLOptUpdateInputs; attrs: MLPLOptUpdateAttrs } {
    const ps = treeFlatten<tf.Tensor>(s.params)[0];
    const gs = treeFlatten<tf.Tensor>(grad)[0];
    const ms = treeFlatten<tf.Tensor>(s.rollingFeatures.m)[0];
    const layers = this.layers();
    const inputs = packMLPLOptInputs({ ps, gs, ms, t: s.rollingFeatures.t, layers, iteration: s.iteration }, this.lopt.layerSizes(), this.thetaIsVector, MLPLOPT_DECAYS.length);
    const attrs: MLPLOptUpdateAttrs = {
      numLeaves: ps.length,
      numLayers: layers.length,
      perTask: this.thetaIsVector,
      expMult: this.lopt.expMult,
      stepMult: this.lopt.stepMult,
      decays: MLPLOPT_DECAYS,
    };
    return { inputs, attrs };
  }

  /**
   * The batched update on host memory: the C kernel that `step` runs, with the counters counted on
   * the host (see `HostUpdate`). Carried: the params' leaves, the momenta's leaves, `iteration`,
   * the momenta's counter `t`. Null where the C kernel does not run (backend, build, θ's shape)
   * or the state holds a model state.
   */
  hostUpdate(s: OptState, grad: Params): HostUpdate | null {
    const st = s as MLPLOptState;
    if ((st.state !== null && st.state !== undefined) || !nativeUsable()) return null;
    if (st.iteration.dtype !== 'int32' || st.rollingFeatures.t.dtype !== 'int32') return null;
    const [ps, def] = treeFlatten<tf.Tensor>(st.params);
    const [, mDef] = treeFlatten<tf.Tensor>(st.rollingFeatures.m);
    const L = ps.length;
    if (L === 0) return null;
    const { inputs, attrs } = this.kernelArgs(st, grad);
    const kernel = mlpLoptHostStep(inputs, attrs);
    if (!kernel) return null;
    const f32 = (xs: unknown[]) => xs as Float32Array[];
    const carriedOf = (o: OptState) => {
      const x = o as MLPLOptState;
      return [...treeFlatten<tf.Tensor>(x.params)[0], ...treeFlatten<tf.Tensor>(x.rollingFeatures.m)[0], x.iteration, x.rollingFeatures.t];
    };
    return {
      carried: carriedOf(st),
      carriedOf,
      fixed: this.layers().flatMap((l) => [l.w, l.b]),
      paramIndex: ps.map((_, i) => i),
      run: (fixed, cur, grads, next) => {
        kernel(f32(cur.slice(0, L)), grads, f32(cur.slice(L, 2 * L)), f32(next.slice(0, L)), f32(next.slice(L, 2 * L)), f32(fixed), cur[2 * L] as Int32Array);
        for (const c of [2 * L, 2 * L + 1]) for (let j = 0; j < cur[c].length; j++) next[c][j] = cur[c][j] + 1;
      },
      rebuild: (c): MLPLOptState => ({
        params: treeUnflatten(def, c.slice(0, L)),
        rollingFeatures: { m: treeUnflatten(mDef, c.slice(L, 2 * L)), t: c[2 * L + 1] },
        iteration: c[2 * L],
        state: null,
      }),
    };
  }

  /** The batched update (every leaf has the task axis N first). Call inside a tidy. */
  protected step(s: MLPLOptState, grad: Params): MLPLOptState {
    const [ps, def] = treeFlatten<tf.Tensor>(s.params);
    const mDef = treeFlatten<tf.Tensor>(s.rollingFeatures.m)[1];
    const L = ps.length;
    if (L === 0) {
      return { params: treeClone(s.params), rollingFeatures: { m: treeClone(s.rollingFeatures.m), t: incCounter(s.rollingFeatures.t) }, iteration: incCounter(s.iteration), state: null };
    }
    const { inputs, attrs } = this.kernelArgs(s, grad);
    const out = mlpLoptUpdate(inputs, attrs);
    return {
      params: treeUnflatten(def, out.slice(0, L)),
      rollingFeatures: { m: treeUnflatten(mDef, out.slice(L, 2 * L)), t: out[2 * L + 1] },
      iteration: out[2 * L],
      state: null,
    };
  }
}

registerPlugin({
  kind: 'learned_optimizer',
  name: 'MLPLOpt',
  description: 'Per-parameter MLP learned optimizer (LOLv2): 19 features, 32x2 hidden, 1,762 meta-parameters',
  schema: z
    .object({
      expMult: z.number().default(0.001),
      stepMult: z.number().default(0.001),
      hiddenSize: z.number().int().positive().default(32),
      hiddenLayers: z.number().int().min(0).default(2),
    })
    .strict(),
  create: (c: MLPLOptOptions) => new MLPLOpt(c),
  cls: MLPLOpt,
});
