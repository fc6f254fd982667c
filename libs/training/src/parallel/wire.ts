/**
 * Pytrees across worker threads: core's host trees (`toHostTree`: structure, paths, tensor data as
 * typed arrays; the same form the tree files and the distributed protocol encode), with the
 * tensor data optionally in shared memory, so one copy serves several threads.
 */
import * as tf from '@tensorflow/tfjs';
import { fromHostTree, toHostTree, treeFlatten, type HostAllocator, type HostTree, type PyTree } from '@lopt/core';

/** A pytree on its way to or from a worker thread. */
export type WireTree = HostTree;

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
  take<T extends Float32Array | Int32Array | Uint8Array>(Ctor: { new (b: SharedArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number }, length: number): T {
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

/** A fresh SharedArrayBuffer per leaf. */
const sharedAlloc: HostAllocator = (Ctor: any, length: number) => {
  const out = new Ctor(new SharedArrayBuffer(Math.max(1, length) * Ctor.BYTES_PER_ELEMENT));
  return length ? out : out.subarray(0, 0);
};

/** One read per tensor leaf, into fresh arrays, fresh shared memory, or an arena; other leaves travel as they are. */
export function toWire(tree: PyTree, shared: boolean | SharedArena = false): WireTree {
  if (shared instanceof SharedArena) return toHostTree(tree, (Ctor: any, length: number) => shared.take(Ctor, length));
  return toHostTree(tree, shared ? sharedAlloc : undefined);
}

/** Tensors for the wire leaves (the caller owns them). */
export function fromWire(w: WireTree | null | undefined): PyTree {
  return w ? fromHostTree(w) : null;
}
