/**
 * The inner optimizer of a learned optimizer whose update is written once, for N stacked tasks:
 * `step` (a leading task axis on every state and gradient leaf) is the update, `updateBatch` runs
 * it, and the single-task `update` is its N = 1 case (`asOneTask`). MLPLOpt, AdafacMLPLOpt,
 * AdafacNominal, NNAdam and RNNMLPLOpt's optimizers extend it.
 */
import type { PyTree } from '@lopt/core';
import type { InitOptions, Optimizer, OptState, Params, UpdateOptions } from './base';
import { tidy, treeClone, treeExpand, treeSqueeze } from './common';

/**
 * One task as a stack of one: every tensor of `state` (but the model state, which `step` does not
 * see) and of `grad` gets a leading task axis of 1, `step` runs, and the axis is squeezed off its
 * result again. Call inside a tidy.
 */
export function asOneTask<S extends OptState>(state: S, grad: Params, step: (stacked: S, grad: Params) => S): S {
  return treeSqueeze(step(treeExpand({ ...state, state: null }), treeExpand(grad)));
}

/**
 * An {@link Optimizer} written once for N stacked tasks: subclasses implement `initImpl` and `step` (the
 * batched update); `update` runs `step` on a stack of one ({@link asOneTask}).
 */
export abstract class BatchedOptimizer<S extends OptState> implements Optimizer {
  /** The reference's learned optimizers return unnamed optimizers. */
  readonly name = 'UnnamedOptimizer';
  /** θ has a leading task axis (one θ per stacked task): only the batched forms work. */
  abstract readonly thetaIsVector: boolean;

  /** @param label the learned optimizer's name, for error messages */
  constructor(protected readonly label: string) {}

  /** The state for `params` (one task, or N stacked tasks when `batched`). */
  protected abstract initImpl(params: Params, opts: InitOptions, batched: boolean): S;

  /** The update of N stacked tasks; its result's model state is null (the caller sets it). Call inside a tidy. */
  protected abstract step(s: S, grad: Params, opts: UpdateOptions): S;

  /** The model state the new optimizer state holds: the one the update was given. */
  protected nextModelState(_s: S, opts: UpdateOptions): PyTree | null {
    return opts.modelState ?? null;
  }

  init(params: Params, opts: InitOptions = {}): S {
    return this.initImpl(params, opts, false);
  }
  initBatch(params: Params, opts: InitOptions = {}): S {
    return this.initImpl(params, opts, true);
  }

  /** One task: the N = 1 case of the batched update. */
  update(state: OptState, grad: Params, opts: UpdateOptions = {}): S {
    this.checkOneTask();
    const s = state as S;
    return tidy(() => ({ ...asOneTask(s, grad, (stacked, g) => this.step(stacked, g, opts)), state: treeClone(this.nextModelState(s, opts)) }));
  }

  updateBatch(state: OptState, grad: Params, opts: UpdateOptions = {}): S {
    const s = state as S;
    return tidy(() => ({ ...this.step(s, grad, opts), state: treeClone(this.nextModelState(s, opts)) }));
  }

  getParams(state: OptState): Params {
    return state.params;
  }
  getState(state: OptState): PyTree | null {
    return state.state ?? null;
  }

  /** A single-task update needs one θ (not one per task). */
  protected checkOneTask(): void {
    if (this.thetaIsVector) throw new Error(`${this.label}: thetaIsVector optimizers work on stacked tasks only; use updateBatch`);
  }
}
