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


/**
 * Row `i` of `a` where `rows[i]` is 1, else row `i` of `b` (leaves of shape [N, ...]): the
 * reference's `jnp.where` on a per-task mask, as at a truncated step's resets. Built from row
 * slices and one concat (plain copies) rather than `tf.where` on the mask broadcast to the leaf's
 * shape, whose Tile on wasm cost ~10% of a seed outer step; the values are the same selection.
 * May return `a` or `b` itself when every row comes from one of them.
 */
export function selectRows(rows: ArrayLike<number>, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.shape[0] !== rows.length || b.shape[0] !== rows.length) throw new RangeError(`selectRows: ${rows.length} row flags for leaves of ${a.shape[0]} and ${b.shape[0]} rows`);
  const runs: Array<[tf.Tensor, number, number]> = [];
  for (let i = 0; i < rows.length; i++) {
    const src = rows[i] ? a : b;
    const last = runs[runs.length - 1];
    if (last && last[0] === src) last[2]++;
    else runs.push([src, i, 1]);
  }
  if (runs.length === 1) return runs[0][0];
  return tf.concat(runs.map(([src, start, len]) => tf.slice(src, start, len)), 0);
}

/**
 * Row `i` of `old` where `rows[i]` is 0; where it is 1, the next row of `fresh`, which holds one
 * row per set flag, in order (leaves of shape [count, ...] and [N, ...]). The same result as
 * `selectRows(rows, a, old)` for an `a` whose set rows are `fresh`'s, without computing the rows
 * that are not taken: a truncated step's resets initialise only the tasks that reset.
 * May return `fresh` or `old` itself when every row comes from one of them.
 */
export function replaceRows(rows: ArrayLike<number>, fresh: tf.Tensor, old: tf.Tensor): tf.Tensor {
  let count = 0;
  for (let i = 0; i < rows.length; i++) if (rows[i]) count++;
  if (old.shape[0] !== rows.length || fresh.shape[0] !== count) throw new RangeError(`replaceRows: ${rows.length} row flags (${count} set) for leaves of ${fresh.shape[0]} fresh and ${old.shape[0]} old rows`);
  const runs: Array<[tf.Tensor, number, number]> = [];
  for (let i = 0, f = 0; i < rows.length; i++) {
    const [src, at] = rows[i] ? [fresh, f++] : [old, i];
    const last = runs[runs.length - 1];
    if (last && last[0] === src) last[2]++;
    else runs.push([src, at, 1]);
  }
  if (runs.length === 1) return runs[0][0];
  return tf.concat(runs.map(([src, start, len]) => tf.slice(src, start, len)), 0);
}

/** Leaf `k` along the leading axis of every data leaf. */
export function dataAt(data: PyTree, k: number): PyTree {
  if (data === null || data === undefined) return null;
  return tf.tidy(() => treeMap((l: tf.Tensor) => tf.squeeze(l.slice([k], [1]), [0]), data) as any) as PyTree;
}
