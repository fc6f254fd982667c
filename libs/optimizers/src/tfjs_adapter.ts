/**
 * A learned optimizer as a TensorFlow.js optimizer: `asTfjsOptimizer(lopt, theta)` returns a
 * `tf.Optimizer` whose steps are exactly `lopt.optFn(theta).update` on the same gradients, so it
 * plugs into `model.compile({optimizer, loss})` / `model.fit` and `optimizer.minimize(f)`.
 *
 * The variables of one `applyGradients` call are one params tree keyed by variable name (object
 * keys flatten in sorted order, so the order is stable whatever order the gradients come in).
 * `minimize` (and so `model.fit`) passes the loss to the update (HyperV2 and VeLO need it).
 * Optimizer state is kept per set of variable names (a model's trainable weights are one set);
 * at each step the state's `params` are the variables' current values, so weights changed from
 * outside (e.g. `model.setWeights`) are respected. Gradients missing from a call are zeros.
 */
import * as tf from '@tensorflow/tfjs';
import { registry, treeFlatten, treeLeaves, treeLeavesWithPath, treeUnflatten, type PyTree } from '@lopt/core';
import type { LearnedOptimizer, Optimizer, OptState, Theta } from './base';

interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

interface VarSetState {
  names: string[];
  state: OptState;
}

const SET_SEP = '|';
const LEAF_SEP = '#';

function keepTree(tree: PyTree): void {
  for (const x of treeLeaves<unknown>(tree)) if (x instanceof tf.Tensor) tf.keep(x);
}
function disposeReplaced(old: PyTree, next: PyTree): void {
  const keep = new Set(treeLeaves<unknown>(next).filter((x) => x instanceof tf.Tensor));
  for (const x of treeLeaves<unknown>(old)) if (x instanceof tf.Tensor && !keep.has(x) && !x.isDisposed) x.dispose();
}
function lookupVariable(name: string): tf.Variable {
  const v = tf.engine().registeredVariables[name];
  if (!v) throw new Error(`LearnedTfjsOptimizer: no registered variable named '${name}'`);
  return v;
}
/** Own numeric / string / boolean fields of a learned optimizer (its constructor options). */
function loptConfig(lopt: LearnedOptimizer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(lopt)) {
    if (k === 'name') continue;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** A learned optimizer as a `tf.Optimizer`, so a tfjs-layers model trains with it (`asTfjsOptimizer`). */
export class LearnedTfjsOptimizer extends tf.Optimizer {
  static className = 'LearnedTfjsOptimizer';
  /** The optimizer that has captured θ (`lopt.optFn(theta)`). */
  readonly opt: Optimizer;
  private readonly sets = new Map<string, VarSetState>();
  /** The loss of the `minimize` call in progress (learned optimizers that read it, e.g. HyperV2, get it). */
  private pendingLoss: tf.Scalar | null = null;

  /** The training length the optimizer state is made with (`init(params, {numSteps})`), when given. */
  readonly numSteps: number | undefined;

  constructor(
    readonly lopt: LearnedOptimizer,
    readonly theta: Theta,
    { numSteps }: { numSteps?: number } = {},
  ) {
    super();
    this.opt = lopt.optFn(theta, false, false);
    this.numSteps = numSteps;
  }

  private initState(params: Record<string, tf.Tensor>): OptState {
    return this.opt.init(params, this.numSteps === undefined ? {} : { numSteps: this.numSteps });
  }

  /**
   * tf.Optimizer.minimize (also what `model.fit` calls), keeping the loss value for the update:
   * HyperV2 / VeLO condition on it. A direct `applyGradients` call passes no loss.
   */
  override minimize(f: () => tf.Scalar, returnCost = false, varList?: tf.Variable[]): tf.Scalar | null {
    const { value, grads } = this.computeGradients(f, varList);
    this.pendingLoss = value;
    try {
      this.applyGradients(grads);
    } finally {
      this.pendingLoss = null;
      tf.dispose(grads);
    }
    if (returnCost) return value;
    value.dispose();
    return null;
  }

  /** The optimizer state of a set of variables (null before its first step). */
  stateFor(names: string[]): OptState | null {
    return this.sets.get([...names].sort().join(SET_SEP))?.state ?? null;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list: NamedTensor[] = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] }));
    if (list.length === 0) return;
    const names = list.map((g) => g.name).sort();
    const key = names.join(SET_SEP);
    const vars = new Map(names.map((n) => [n, lookupVariable(n)]));
    const grads = new Map(list.map((g) => [g.name, g.tensor]));
    const prev = this.sets.get(key);
    const next = tf.tidy(() => {
      const params: Record<string, tf.Tensor> = {};
      const grad: Record<string, tf.Tensor> = {};
      for (const n of names) {
        const v = vars.get(n)!;
        params[n] = tf.clone(v);
        const g = grads.get(n);
        grad[n] = g == null ? tf.zerosLike(v) : g;
      }
      const state = prev ? { ...prev.state, params } : this.initState(params);
      return this.opt.update(state, grad, this.pendingLoss ? { loss: this.pendingLoss } : {}) as unknown as tf.TensorContainer;
    }) as unknown as OptState;
    keepTree(next);
    if (prev) disposeReplaced(prev.state, next);
    const newParams = this.opt.getParams(next) as Record<string, tf.Tensor>;
    for (const n of names) {
      const v = vars.get(n)!;
      if (!v.trainable) continue;
      // The update may return views (reshapes) of larger buffers (MLPLOpt's single-task update
      // is its batched update reshaped). The wasm backend keeps the buffer's own shape, and its
      // fused kernels check that one: a Dense layer's bias that shares a [1, units] buffer fails
      // `_FusedMatMul only supports rank-1 bias`. tf.clone gives the variable a buffer of its own
      // shape on wasm (a bit-exact copy) and shares the data on cpu/webgl.
      const value = tf.clone(newParams[n]);
      v.assign(value);
      value.dispose();
    }
    this.sets.set(key, { names, state: next });
    this.incrementIterations();
  }

  /** `iter` first (as tfjs optimizers), then copies of every non-params state leaf, named `<var names>#<path>` (the caller owns them). */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [key, { state }] of this.sets) {
      for (const [p, leaf] of treeLeavesWithPath<unknown>({ ...state, params: null })) {
        const t = leaf instanceof tf.Tensor ? tf.keep(tf.clone(leaf)) : typeof leaf === 'number' ? tf.scalar(leaf) : null;
        if (t) out.push({ name: `${key}${LEAF_SEP}${p}`, tensor: t });
      }
    }
    return out;
  }

  /** Restores what `getWeights` wrote; the variables named there must exist. */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    const bySet = new Map<string, Map<string, tf.Tensor>>();
    for (const w of rest) {
      const i = w.name.lastIndexOf(LEAF_SEP);
      if (i < 0) throw new Error(`LearnedTfjsOptimizer.setWeights: weight '${w.name}' is not '<variables>${LEAF_SEP}<path>'`);
      const key = w.name.slice(0, i);
      if (!bySet.has(key)) bySet.set(key, new Map());
      bySet.get(key)!.set(w.name.slice(i + 1), w.tensor);
    }
    for (const [key, leaves] of bySet) {
      const names = key.split(SET_SEP);
      const params: Record<string, tf.Tensor> = {};
      for (const n of names) params[n] = tf.clone(lookupVariable(n));
      const init = this.initState(params);
      const { params: p0, ...rest0 } = init;
      const [tmplLeaves, def] = treeFlatten<unknown>({ ...rest0, params: null });
      const paths = treeLeavesWithPath<unknown>({ ...rest0, params: null }).map(([p]) => p);
      const newLeaves = tmplLeaves.map((tl, j) => {
        const given = leaves.get(paths[j]);
        if (!given) throw new Error(`LearnedTfjsOptimizer.setWeights: missing '${key}${LEAF_SEP}${paths[j]}'`);
        if (tl instanceof tf.Tensor) {
          if (JSON.stringify(tl.shape) !== JSON.stringify(given.shape)) {
            throw new Error(`LearnedTfjsOptimizer.setWeights: '${paths[j]}' has shape [${given.shape}], expected [${tl.shape}]`);
          }
          tl.dispose();
          return tf.keep(tf.cast(given, tl.dtype));
        }
        return typeof tl === 'number' ? given.dataSync()[0] : tl;
      });
      const state = { ...(treeUnflatten(def, newLeaves) as object), params: p0 } as OptState;
      keepTree(state);
      const prev = this.sets.get(key);
      if (prev) disposeReplaced(prev.state, state);
      this.sets.set(key, { names, state });
    }
  }

  getConfig(): tf.serialization.ConfigDict {
    const theta: Record<string, { shape: number[]; values: number[] }> = {};
    for (const [p, t] of treeLeavesWithPath<tf.Tensor>(this.theta)) theta[p] = { shape: t.shape.slice(), values: Array.from(t.dataSync()) };
    return {
      learnedOptimizer: (this.lopt as object).constructor.name,
      learnedOptimizerConfig: loptConfig(this.lopt) as tf.serialization.ConfigDict,
      theta: theta as unknown as tf.serialization.ConfigDict,
      ...(this.numSteps === undefined ? {} : { numSteps: this.numSteps }),
    };
  }

  /** Rebuilds from `getConfig()`: the learned optimizer by its registered name, θ from the values. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    _cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const name = String(config.learnedOptimizer);
    if (!registry.has('learned_optimizer', name)) {
      const names = registry.list('learned_optimizer').map((e) => e.name);
      throw new Error(`LearnedTfjsOptimizer.fromConfig: unknown learned optimizer '${name}' (allowed: ${names.join(', ')})`);
    }
    const lopt = registry.create<LearnedOptimizer>('learned_optimizer', name, config.learnedOptimizerConfig ?? {});
    const saved = config.theta as unknown as Record<string, { shape: number[]; values: number[] }>;
    // Paths are '/'-joined and MLPLOpt's keys contain '/': rebuild on the structure of lopt.init.
    const template = lopt.init(new Uint32Array([0, 0]));
    const [tl, def] = treeFlatten<tf.Tensor>(template);
    const paths = treeLeavesWithPath<tf.Tensor>(template).map(([p]) => p);
    tl.forEach((t) => t instanceof tf.Tensor && t.dispose());
    const leaves = paths.map((p) => {
      if (!saved[p]) throw new Error(`LearnedTfjsOptimizer.fromConfig: theta is missing '${p}'`);
      return tf.tensor(saved[p].values, saved[p].shape);
    });
    const numSteps = config.numSteps === undefined ? undefined : Number(config.numSteps);
    return new LearnedTfjsOptimizer(lopt, treeUnflatten(def, leaves), { numSteps }) as unknown as T;
  }

  /** Frees the optimizer state (not θ, which belongs to the caller). */
  override dispose(): void {
    for (const { state } of this.sets.values()) {
      for (const x of treeLeaves<unknown>(state)) if (x instanceof tf.Tensor && !x.isDisposed) x.dispose();
    }
    this.sets.clear();
    super.dispose();
  }
}
tf.serialization.registerClass(LearnedTfjsOptimizer);

/**
 * `learnedOptimizer.asTfjsOptimizer(theta)`: a `tf.Optimizer` stepping with `lopt.optFn(theta)`.
 * `numSteps`: the training length, for learned optimizers whose state needs it (NNAdam requires it).
 */
export function asTfjsOptimizer(lopt: LearnedOptimizer, theta: Theta, opts: { numSteps?: number } = {}): LearnedTfjsOptimizer {
  return new LearnedTfjsOptimizer(lopt, theta, opts);
}
