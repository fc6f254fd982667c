/** Row-wise operations on truncated-step states (see truncated_step.ts for the layout). */
import * as tf from '@tensorflow/tfjs';
import { treeMap, treeMapN, type PyTree } from '@lopt/core';
import { concatHost, sliceHost } from './host_ints';
import type { TruncatedUnrollState } from './truncated_step';

/** Number of rows (tasks) in a state. */
export function stateRows(state: TruncatedUnrollState): number {
  return state.innerStep.shape[0];
}


/** Leaf-wise concat along the task axis; counters keep their host copy. */
export function concatStates(states: TruncatedUnrollState[]): TruncatedUnrollState {
  const [first, ...rest] = states;
  return {
    innerOptState: treeMapN((...ls: tf.Tensor[]) => tf.concat(ls, 0), first.innerOptState, ...rest.map((s) => s.innerOptState)),
    innerStep: concatHost(states.map((s) => s.innerStep)),
    truncationState: first.truncationState.length ? { length: concatHost(states.map((s) => s.truncationState.length as tf.Tensor)) } : {},
    taskParam: treeMapN((...ls: tf.Tensor[]) => tf.concat(ls, 0), first.taskParam, ...rest.map((s) => s.taskParam)),
    isDone: concatHost(states.map((s) => s.isDone)),
  };
}

/** Rows [start, end) of a state. */
export function sliceState(state: TruncatedUnrollState, start: number, end: number): TruncatedUnrollState {
  const rows = (l: tf.Tensor) => l.slice([start], [end - start]);
  return {
    innerOptState: treeMap(rows, state.innerOptState),
    innerStep: sliceHost(state.innerStep, start, end),
    truncationState: state.truncationState.length ? { length: sliceHost(state.truncationState.length, start, end) } : {},
    taskParam: treeMap(rows, state.taskParam),
    isDone: sliceHost(state.isDone, start, end),
  };
}

/** An independent copy of a state (tensor handles share data; counters keep their host copy). */
export function cloneState(state: TruncatedUnrollState): TruncatedUnrollState {
  return sliceState(state, 0, stateRows(state));
}


/** Leaf `k` along the leading axis of every data leaf. */
export function dataAt(data: PyTree, k: number): PyTree {
  if (data === null || data === undefined) return null;
  return tf.tidy(() => treeMap((l: tf.Tensor) => tf.squeeze(l.slice([k], [1]), [0]), data) as any) as PyTree;
}
