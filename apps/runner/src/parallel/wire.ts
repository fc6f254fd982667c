/**
 * Pytrees across worker threads: tensors become `{shape, dtype, data}` with typed-array data
 * (optionally in a SharedArrayBuffer, so one copy serves several threads), the structure is
 * core's JSON-safe TreeDef.
 */
import * as tf from '@tensorflow/tfjs';
import { treeFlatten, treeUnflatten, type PyTree, type TreeDef } from '@lopt/core';

export interface WireTensor {
  __tensor: true;
  shape: number[];
  dtype: tf.DataType;
  data: Float32Array | Int32Array | Uint8Array;
}
export interface WireTree {
  def: TreeDef;
  leaves: unknown[];
}

function copyData(t: tf.Tensor, shared: boolean): WireTensor['data'] {
  const src = t.dataSync() as WireTensor['data'];
  if (!shared) return src.slice() as WireTensor['data'];
  const Ctor = src.constructor as { new (b: SharedArrayBuffer): WireTensor['data']; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(Math.max(1, src.length) * Ctor.BYTES_PER_ELEMENT));
  out.set(src as any);
  return src.length ? out : out.subarray(0, 0);
}

/** One read per tensor leaf; other leaves travel as they are. */
export function toWire(tree: PyTree, shared = false): WireTree {
  const [leaves, def] = treeFlatten<unknown>(tree);
  return {
    def,
    leaves: leaves.map((l) => (l instanceof tf.Tensor ? ({ __tensor: true, shape: l.shape, dtype: l.dtype, data: copyData(l, shared) } as WireTensor) : l)),
  };
}

/** Tensors for the wire leaves (the caller owns them). */
export function fromWire(w: WireTree | null | undefined): PyTree {
  if (!w) return null;
  const leaves = w.leaves.map((l) => {
    const t = l as WireTensor;
    return t && typeof t === 'object' && t.__tensor ? tf.tensor(t.data as any, t.shape, t.dtype) : l;
  });
  return treeUnflatten(w.def, leaves);
}
