/**
 * Integer and boolean per-task counters (inner step, trajectory length, is-done) are tensors in
 * the state, as in the reference's layout, but every decision made from them (reset or train,
 * mask, PES attribution) is taken on the host. Their values never depend on tensor math, only on
 * keys and counts, so we keep a host copy beside each tensor we create and never read the device.
 */
import * as tf from '@tensorflow/tfjs';

const mirror = new WeakMap<tf.Tensor, Int32Array>();

/** An int32 (or bool) tensor created from host values, with the host copy remembered. */
export function hostTensor(values: ArrayLike<number>, dtype: 'int32' | 'bool' = 'int32', shape?: number[]): tf.Tensor {
  const arr = Int32Array.from(values as ArrayLike<number>);
  const t = tf.tensor(arr, shape ?? [arr.length], dtype);
  mirror.set(t, arr);
  return t;
}

/** Host values of a counter tensor: the remembered copy, or one read (for tensors made elsewhere, e.g. loaded from a checkpoint). */
export function hostValues(t: tf.Tensor): Int32Array {
  let arr = mirror.get(t);
  if (!arr) {
    arr = Int32Array.from(t.dataSync() as ArrayLike<number>);
    mirror.set(t, arr);
  }
  return arr;
}

/** Concatenate counter tensors along axis 0, keeping the host copy. */
export function concatHost(ts: tf.Tensor[]): tf.Tensor {
  const parts = ts.map(hostValues);
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return hostTensor(out, ts[0].dtype as 'int32' | 'bool');
}

/** Rows [start, end) of a counter tensor, keeping the host copy. */
export function sliceHost(t: tf.Tensor, start: number, end: number): tf.Tensor {
  return hostTensor(hostValues(t).subarray(start, end), t.dtype as 'int32' | 'bool');
}
