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

/**
 * A reusable SharedArrayBuffer that wire leaves are packed into (`reset()` before each message
 * set). Reusing one buffer matters: fresh SharedArrayBuffers per outer step (6.5 MB for config A)
 * were not reclaimed promptly and RSS grew by about that much per step.
 */
export class SharedArena {
  private buf: SharedArrayBuffer | null = null;
  private used = 0;
  reset(bytesNeeded: number): void {
    if (!this.buf || this.buf.byteLength < bytesNeeded) this.buf = new SharedArrayBuffer(Math.max(8, Math.ceil(bytesNeeded * 1.25)));
    this.used = 0;
  }
  take<T extends WireTensor['data']>(Ctor: { new (b: SharedArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number }, length: number): T {
    const align = 8;
    this.used = Math.ceil(this.used / align) * align;
    const bytes = length * Ctor.BYTES_PER_ELEMENT;
    if (!this.buf || this.used + bytes > this.buf.byteLength) throw new Error('SharedArena: reset() with enough bytes first');
    const out = new Ctor(this.buf, this.used, length);
    this.used += bytes;
    return out;
  }
}

/** Bytes `toWire(tree, arena)` will take from an arena (with alignment slack). */
export function wireBytes(tree: PyTree): number {
  return treeFlatten<unknown>(tree)[0].reduce<number>((n, l) => n + (l instanceof tf.Tensor ? l.size * 4 + 8 : 0), 0);
}

/** One read per tensor leaf; other leaves travel as they are. */
export function toWire(tree: PyTree, shared: boolean | SharedArena = false): WireTree {
  const [leaves, def] = treeFlatten<unknown>(tree);
  const data = (t: tf.Tensor): WireTensor['data'] => {
    if (!(shared instanceof SharedArena)) return copyData(t, shared);
    const src = t.dataSync() as WireTensor['data'];
    const out = shared.take(src.constructor as any, src.length);
    out.set(src as any);
    return out;
  };
  return {
    def,
    leaves: leaves.map((l) => (l instanceof tf.Tensor ? ({ __tensor: true, shape: l.shape, dtype: l.dtype, data: data(l) } as WireTensor) : l)),
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
