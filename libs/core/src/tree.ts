/**
 * Pytrees: nested plain objects and arrays whose leaves are tensors (or numbers, booleans,
 * strings, typed arrays). `null` / `undefined` are empty subtrees, like JAX's `None`.
 * Object keys are visited in sorted order, as `jax.tree_util` does for dicts, which fixes the
 * order of flattened leaves (and of per-leaf random keys).
 */
import * as tf from '@tensorflow/tfjs';

/** A tree leaf: a tensor, a host scalar or string, or a typed array (e.g. a PRNG key). */
export type Leaf = tf.Tensor | number | boolean | string | Uint32Array | Int32Array | Float32Array;
/** jax's pytree: leaves inside nested arrays and plain objects (keys flattened in sorted order, as jax sorts dict keys). */
export type PyTree = Leaf | null | undefined | PyTree[] | { [key: string]: PyTree } | object;

/** Structure of a tree with its leaves removed, enough to rebuild it. */
export type TreeDef =
  | { kind: 'leaf' }
  | { kind: 'none'; value: null | undefined }
  | { kind: 'array'; children: TreeDef[] }
  | { kind: 'object'; keys: string[]; children: TreeDef[] };

/** True for `{...}` objects (prototype Object or null): the dict nodes of a tree; class instances are leaves. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** True for anything that is not null/undefined, an array or a plain object. */
export function isLeaf(x: unknown): boolean {
  return x !== null && x !== undefined && !Array.isArray(x) && !isPlainObject(x);
}

/** An object's keys in the order trees flatten them (sorted, as `jax.tree_util` orders dict keys). */
export function sortedKeys(obj: object): string[] {
  return Object.keys(obj).sort();
}

/** Leaves in flatten order. */
export function treeLeaves<T = Leaf>(tree: PyTree): T[] {
  const out: T[] = [];
  const visit = (t: unknown) => {
    if (t === null || t === undefined) return;
    if (Array.isArray(t)) t.forEach(visit);
    else if (isPlainObject(t)) for (const k of sortedKeys(t)) visit(t[k]);
    else out.push(t as T);
  };
  visit(tree);
  return out;
}

/** `jax.tree_util.tree_flatten`: the leaves in flatten order and the structure to rebuild the tree with. */
export function treeFlatten<T = Leaf>(tree: PyTree): [T[], TreeDef] {
  const leaves: T[] = [];
  const build = (t: unknown): TreeDef => {
    if (t === null || t === undefined) return { kind: 'none', value: t as null | undefined };
    if (Array.isArray(t)) return { kind: 'array', children: t.map(build) };
    if (isPlainObject(t)) {
      const keys = sortedKeys(t);
      return { kind: 'object', keys, children: keys.map((k) => build(t[k])) };
    }
    leaves.push(t as T);
    return { kind: 'leaf' };
  };
  const def = build(tree);
  return [leaves, def];
}

/** `jax.tree_util.tree_unflatten`: rebuilds a tree from `treeFlatten`'s structure and (new) leaves. */
export function treeUnflatten<T extends PyTree = PyTree>(def: TreeDef, leaves: unknown[]): T {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    switch (d.kind) {
      case 'leaf':
        if (i >= leaves.length) throw new Error(`treeUnflatten: too few leaves (${leaves.length})`);
        return leaves[i++];
      case 'none':
        return d.value;
      case 'array':
        return d.children.map(build);
      case 'object': {
        const o: Record<string, unknown> = {};
        d.keys.forEach((k, j) => (o[k] = build(d.children[j])));
        return o;
      }
    }
  };
  const out = build(def);
  if (i !== leaves.length) throw new Error(`treeUnflatten: ${leaves.length} leaves given, structure has ${i}`);
  return out as T;
}

/** Leaves with their '/'-joined paths (array indices and object keys), in flatten order. */
export function treeLeavesWithPath<T = Leaf>(tree: PyTree): Array<[string, T]> {
  const out: Array<[string, T]> = [];
  const visit = (t: unknown, path: string[]) => {
    if (t === null || t === undefined) return;
    if (Array.isArray(t)) t.forEach((c, i) => visit(c, [...path, String(i)]));
    else if (isPlainObject(t)) for (const k of sortedKeys(t)) visit(t[k], [...path, k]);
    else out.push([path.join('/'), t as T]);
  };
  visit(tree, []);
  return out;
}

/** True when both trees have the same nodes and keys (leaves are not compared). */
export function treeStructureEqual(a: PyTree, b: PyTree): boolean {
  return JSON.stringify(treeFlatten(a)[1]) === JSON.stringify(treeFlatten(b)[1]);
}

/** `tree_map(fn, tree)`: keeps the structure (key order of the input is preserved). */
export function treeMap<R = Leaf, T = Leaf>(fn: (leaf: T, path: string) => R, tree: PyTree): any {
  const visit = (t: unknown, path: string[]): unknown => {
    if (t === null || t === undefined) return t;
    if (Array.isArray(t)) return t.map((c, i) => visit(c, [...path, String(i)]));
    if (isPlainObject(t)) {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(t)) o[k] = visit(t[k], [...path, k]);
      return o;
    }
    return fn(t as T, path.join('/'));
  };
  return visit(tree, []);
}

/** `tree_map(fn, *trees)`: every tree must have the structure of the first. */
export function treeMapN<R = Leaf>(fn: (...leaves: any[]) => R, ...trees: PyTree[]): any {
  if (trees.length === 0) throw new Error('treeMapN needs at least one tree');
  const visit = (ts: unknown[], path: string): unknown => {
    const t0 = ts[0];
    if (t0 === null || t0 === undefined) return t0;
    if (Array.isArray(t0)) {
      ts.forEach((t, j) => {
        if (!Array.isArray(t) || t.length !== t0.length) throw new Error(`treeMapN: tree ${j} differs at '${path}' (array of ${t0.length} expected)`);
      });
      return t0.map((_, i) => visit(ts.map((t) => (t as unknown[])[i]), path ? `${path}/${i}` : String(i)));
    }
    if (isPlainObject(t0)) {
      const keys = Object.keys(t0);
      ts.forEach((t, j) => {
        if (!isPlainObject(t) || Object.keys(t).length !== keys.length || !keys.every((k) => k in t)) {
          throw new Error(`treeMapN: tree ${j} differs at '${path}' (keys ${sortedKeys(t0).join(',')} expected)`);
        }
      });
      const o: Record<string, unknown> = {};
      for (const k of keys) o[k] = visit(ts.map((t) => (t as Record<string, unknown>)[k]), path ? `${path}/${k}` : k);
      return o;
    }
    return fn(...ts);
  };
  return visit(trees, '');
}

function shapeOf(leaf: unknown): number[] | string {
  if (leaf instanceof tf.Tensor) return leaf.shape;
  if (ArrayBuffer.isView(leaf)) return [(leaf as Uint32Array).length];
  if (typeof leaf === 'number' || typeof leaf === 'boolean') return [];
  return typeof leaf;
}

/** The same nesting with every leaf replaced by its shape, for printing a state. */
export function treeShapes(tree: PyTree): any {
  return treeMap((leaf: unknown) => shapeOf(leaf), tree);
}

/** Stack trees with equal structure along a new leading axis. */
export function treeStack(trees: PyTree[], axis = 0): any {
  if (trees.length === 0) throw new Error('treeStack needs at least one tree');
  return treeMapN((...leaves: unknown[]) => tf.stack(leaves.map(toTensor), axis), ...trees);
}

/** Split every leaf along `axis` into a list of trees (the inverse of `treeStack`). */
export function treeUnstack(tree: PyTree, axis = 0): any[] {
  const [leaves, def] = treeFlatten<tf.Tensor>(tree);
  if (leaves.length === 0) return [];
  const n = leaves[0].shape[axis];
  const parts = leaves.map((l) => tf.unstack(l, axis));
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(treeUnflatten(def, parts.map((p) => p[i])));
  return out;
}

/** Dispose every tensor leaf. */
export function treeDispose(tree: PyTree): void {
  for (const leaf of treeLeaves<unknown>(tree)) if (leaf instanceof tf.Tensor && !leaf.isDisposed) leaf.dispose();
}

/** A leaf as a tensor: tensors as is, numbers and booleans as scalars; anything else throws. */
export function toTensor(x: unknown): tf.Tensor {
  if (x instanceof tf.Tensor) return x;
  if (typeof x === 'number') return tf.scalar(x);
  if (typeof x === 'boolean') return tf.scalar(x, 'bool');
  throw new TypeError(`cannot make a tensor from ${typeof x}`);
}

/** Leafwise a + b of two trees of the same structure (new tensors). */
export function treeAdd(a: PyTree, b: PyTree): any {
  return treeMapN((x: tf.Tensor, y: tf.Tensor) => tf.add(x, y), a, b);
}

/** Leafwise a − b of two trees of the same structure (new tensors). */
export function treeSub(a: PyTree, b: PyTree): any {
  return treeMapN((x: tf.Tensor, y: tf.Tensor) => tf.sub(x, y), a, b);
}

/** Every leaf times s (new tensors). */
export function treeScale(a: PyTree, s: number | tf.Tensor): any {
  return treeMap((x: tf.Tensor) => tf.mul(x, s), a);
}

/** A tree of the same structure with zero tensors of each leaf's shape and dtype. */
export function treeZerosLike(a: PyTree): any {
  return treeMap((x: tf.Tensor) => tf.zerosLike(x), a);
}

/** Keep every tensor leaf alive across `tf.tidy` (returns the same tree). */
export function treeKeep<T extends PyTree>(tree: T): T {
  for (const leaf of treeLeaves<unknown>(tree)) if (leaf instanceof tf.Tensor) tf.keep(leaf);
  return tree;
}

/** Number of scalar elements in all tensor leaves. */
export function treeSize(tree: PyTree): number {
  return treeLeaves<unknown>(tree).reduce<number>((n, l) => n + (l instanceof tf.Tensor ? l.size : 1), 0);
}

/** Dispose the tensors of `old` that `next` does not hold (JAX-style buffer donation). */
export function disposeReplaced(old: PyTree, next: PyTree): void {
  const keep = new Set(treeLeaves<unknown>(next).filter((l) => l instanceof tf.Tensor));
  for (const leaf of treeLeaves<unknown>(old)) {
    if (leaf instanceof tf.Tensor && !keep.has(leaf) && !leaf.isDisposed) leaf.dispose();
  }
}
