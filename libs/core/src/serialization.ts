/**
 * The one serialization of pytrees: checkpoints, saved θ, and the messages of worker threads and
 * of the distributed protocol. A tree is first copied to the host (`toHostTree`: structure, paths,
 * tensor data as typed arrays), which threads exchange as it is, and which `encodeHostTree` turns
 * into one self-describing byte string (files and network messages).
 *
 * Layout (all integers little-endian):
 * ```
 *  0  8 bytes  magic 'LOPTTREE'
 *  8  uint32   format version (1)
 * 12  uint32   byte length L of the JSON index
 * 16  L bytes  JSON index (UTF-8)
 *     padding  zero bytes up to a multiple of 8
 *     D bytes  data: each array leaf's raw bytes, every leaf starting on an 8-byte boundary
 *     uint32   CRC-32 (IEEE, as zlib) of every byte before it (header, index, padding, data)
 * ```
 * The index is `{ treedef, dataLength, leaves }`: `treedef` is `treeFlatten`'s TreeDef (so `null`
 * and `undefined` subtrees survive), and each leaf is either an array leaf
 * `{path, kind: 'tensor'|'typed', dtype, shape, offset, byteLength}` (tensors float32/int32/bool,
 * typed arrays Float32Array/Int32Array/Uint32Array, e.g. PRNG keys) or a JSON value
 * `{path, kind: 'value', value}` (numbers, strings, booleans; NaN/±Infinity are encoded as strings
 * under `kind: 'number'`).
 */
import * as tf from '@tensorflow/tfjs';
import { PyTree, TreeDef, treeFlatten, treeUnflatten, treeLeavesWithPath } from './tree';

/** The first 8 bytes of a `.tree` file. */
export const TREE_MAGIC = 'LOPTTREE';
/** The `.tree` format version this code writes and reads. */
export const TREE_FORMAT_VERSION = 1;
const HEADER_BYTES = 16;
const ALIGN = 8;

/** A `.tree` file or buffer that is truncated, corrupt (checksum) or of another version; names the file. */
export class SerializationError extends Error {
  constructor(
    message: string,
    readonly file: string = '<bytes>',
  ) {
    super(`${file}: ${message}`);
    this.name = 'SerializationError';
  }
}

type TensorDtype = 'float32' | 'int32' | 'bool';
type TypedName = 'Float32Array' | 'Int32Array' | 'Uint32Array';

type LeafEntry =
  | { path: string; kind: 'tensor'; dtype: TensorDtype; shape: number[]; offset: number; byteLength: number }
  | { path: string; kind: 'typed'; dtype: TypedName; length: number; offset: number; byteLength: number }
  | { path: string; kind: 'value'; value: number | string | boolean }
  | { path: string; kind: 'number'; value: 'NaN' | 'Infinity' | '-Infinity' };

interface TreeIndex {
  treedef: TreeDef;
  dataLength: number;
  leaves: LeafEntry[];
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, zlib's): zlib.crc32 where Node has it (>= 20.15, handed in by
// serialization_node.ts, so this module needs no Node built-in and bundles for a browser), else a
// table-driven loop.

let nativeCrc32: ((d: Uint8Array) => number) | undefined;
/** Node's zlib.crc32, set by serialization_node.ts where it exists (internal; not a package export). */
export function setNativeCrc32(fn: ((d: Uint8Array) => number) | undefined): void {
  nativeCrc32 = fn;
}

let CRC_TABLE: Uint32Array | undefined;
function crcTable(): Uint32Array {
  if (CRC_TABLE) return CRC_TABLE;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return (CRC_TABLE = t);
}

/** CRC-32 of `data` (zlib's polynomial; crc32("123456789") = 0xCBF43926). */
export function crc32(data: Uint8Array): number {
  if (nativeCrc32) return nativeCrc32(data) >>> 0;
  const t = crcTable();
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Hand-written variant, exported for tests against zlib's. */
export function crc32Js(data: Uint8Array): number {
  const t = crcTable();
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new SerializationError('big-endian hosts are not supported');
}

const pad = (n: number) => (n + ALIGN - 1) & ~(ALIGN - 1);

// ---------------------------------------------------------------------------------------------

/** A tensor leaf copied to the host: what crosses between threads and processes, and into files. */
export interface HostTensor {
  kind: 'tensor';
  dtype: TensorDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/**
 * A pytree with every tensor leaf copied to the host: plain data (structured-clone-able, so it
 * crosses to worker threads as it is), encodable to bytes (`encodeHostTree`, the `.tree` file
 * format, also what the distributed protocol sends), and turned back into tensors by
 * `fromHostTree`. `paths` are the leaves' `treeLeavesWithPath` paths.
 */
export interface HostTree {
  treedef: TreeDef;
  paths: string[];
  leaves: unknown[];
}

type TypedArray = Float32Array | Int32Array | Uint8Array;
/** Where `toHostTree` puts tensor data (default: fresh arrays); e.g. a shared-memory arena. */
export type HostAllocator = <A extends TypedArray>(ctor: { new (length: number): A; BYTES_PER_ELEMENT: number; name: string }, length: number) => A;

/** True for a tensor held in host memory (`toHostTree`'s leaves). */
export function isHostTensor(x: unknown): x is HostTensor {
  return typeof x === 'object' && x !== null && (x as HostTensor).kind === 'tensor' && ArrayBuffer.isView((x as HostTensor).data);
}

/** Host copies of a tree's tensor leaves (one read per tensor); other leaves are kept as they are. */
export function toHostTree(tree: PyTree, alloc?: HostAllocator): HostTree {
  const [leaves, treedef] = treeFlatten<unknown>(tree);
  const paths = treeLeavesWithPath<unknown>(tree).map(([p]) => p);
  return {
    treedef,
    paths,
    leaves: leaves.map((leaf, i) => {
      if (!(leaf instanceof tf.Tensor)) return leaf;
      if (leaf.isDisposed) throw new SerializationError(`leaf '${paths[i]}' is a disposed tensor`);
      const dtype = leaf.dtype;
      if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
        throw new SerializationError(`leaf '${paths[i]}' has dtype ${dtype}; allowed: float32, int32, bool`);
      }
      const src = leaf.dataSync() as TypedArray;
      const Ctor = dtype === 'float32' ? Float32Array : dtype === 'int32' ? Int32Array : Uint8Array;
      const data = alloc ? alloc(Ctor as any, src.length) : new Ctor(src.length);
      if (dtype === 'bool') for (let j = 0; j < src.length; j++) data[j] = src[j] ? 1 : 0;
      else data.set(src as any);
      return { kind: 'tensor', dtype, shape: leaf.shape.slice(), data } as HostTensor;
    }),
  };
}

/** Tensors for a host tree's tensor leaves (the caller owns them). */
export function fromHostTree<T extends PyTree = PyTree>(h: HostTree): T {
  return treeUnflatten<T>(
    h.treedef,
    h.leaves.map((l) => (isHostTensor(l) ? tf.tensor(l.data as any, l.shape, l.dtype) : l)),
  );
}

/** The bytes of a host tree in the `.tree` format (see the top of this file). */
export function encodeHostTree(h: HostTree): Uint8Array {
  assertLittleEndian();
  const entries: LeafEntry[] = [];
  const chunks: Array<{ offset: number; bytes: Uint8Array }> = [];
  let offset = 0;
  const addChunk = (bytes: Uint8Array) => {
    const at = offset;
    chunks.push({ offset: at, bytes });
    offset = pad(offset + bytes.byteLength);
    return at;
  };
  h.leaves.forEach((leaf, i) => {
    const p = h.paths[i];
    if (isHostTensor(leaf)) {
      const d = leaf.data;
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      const off = addChunk(bytes);
      entries.push({ path: p, kind: 'tensor', dtype: leaf.dtype, shape: leaf.shape.slice(), offset: off, byteLength: bytes.byteLength });
    } else if (leaf instanceof Float32Array || leaf instanceof Int32Array || leaf instanceof Uint32Array) {
      const bytes = new Uint8Array(leaf.buffer, leaf.byteOffset, leaf.byteLength);
      const off = addChunk(bytes);
      const dtype = leaf.constructor.name as TypedName;
      entries.push({ path: p, kind: 'typed', dtype, length: leaf.length, offset: off, byteLength: bytes.byteLength });
    } else if (typeof leaf === 'number') {
      if (Number.isFinite(leaf)) entries.push({ path: p, kind: 'value', value: leaf });
      else entries.push({ path: p, kind: 'number', value: String(leaf) as 'NaN' | 'Infinity' | '-Infinity' });
    } else if (typeof leaf === 'string' || typeof leaf === 'boolean') {
      entries.push({ path: p, kind: 'value', value: leaf });
    } else {
      const what = leaf === null ? 'null' : typeof leaf === 'object' ? (leaf as object).constructor?.name ?? 'object' : typeof leaf;
      throw new SerializationError(
        `leaf '${p}' has unsupported type ${what}; allowed: tf.Tensor, Float32Array, Int32Array, Uint32Array, number, string, boolean (null/undefined as empty subtrees)`,
      );
    }
  });
  const dataLength = offset;
  const index: TreeIndex = { treedef: h.treedef, dataLength, leaves: entries };
  const indexBytes = new TextEncoder().encode(JSON.stringify(index));
  const dataStart = pad(HEADER_BYTES + indexBytes.byteLength);
  const total = dataStart + dataLength + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  for (let i = 0; i < TREE_MAGIC.length; i++) out[i] = TREE_MAGIC.charCodeAt(i);
  view.setUint32(8, TREE_FORMAT_VERSION, true);
  view.setUint32(12, indexBytes.byteLength, true);
  out.set(indexBytes, HEADER_BYTES);
  for (const c of chunks) out.set(c.bytes, dataStart + c.offset);
  view.setUint32(total - 4, crc32(out.subarray(0, total - 4)), true);
  return out;
}

/** Serializes a pytree (tensor, typed-array, number, string, boolean, null leaves) to bytes. */
export function serializeTree(tree: PyTree): Uint8Array {
  return encodeHostTree(toHostTree(tree));
}

/** Parses bytes written by `serializeTree` / `encodeHostTree` into a host tree (no tensors made). */
export function decodeHostTree(bytes: Uint8Array, source = '<bytes>'): HostTree {
  assertLittleEndian();
  const fail = (msg: string): never => {
    throw new SerializationError(msg, source);
  };
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.byteLength < HEADER_BYTES) {
    if (bytes.byteLength >= 8 && String.fromCharCode(...bytes.subarray(0, 8)) !== TREE_MAGIC) fail(`not a lopt tree file (bad magic bytes)`);
    fail(`truncated: ${bytes.byteLength} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  }
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (magic !== TREE_MAGIC) fail(`not a lopt tree file (magic bytes ${JSON.stringify(magic)}, expected '${TREE_MAGIC}')`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== TREE_FORMAT_VERSION) fail(`unsupported format version ${version} (this build reads version ${TREE_FORMAT_VERSION})`);
  const indexLength = view.getUint32(12, true);
  if (HEADER_BYTES + indexLength + 4 > bytes.byteLength) {
    fail(`truncated: the index needs ${indexLength} bytes but the file has ${bytes.byteLength} bytes in all`);
  }
  let index: TreeIndex;
  try {
    index = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + indexLength)));
  } catch (e) {
    // A broken index is corruption; check the checksum first when the length allows, for a better message.
    return fail(`corrupt index (${(e as Error).message})`);
  }
  if (!index || typeof index !== 'object' || !Array.isArray(index.leaves) || typeof index.dataLength !== 'number' || !index.treedef) {
    fail('corrupt index (missing treedef, dataLength or leaves)');
  }
  const dataStart = pad(HEADER_BYTES + indexLength);
  const expected = dataStart + index.dataLength + 4;
  if (bytes.byteLength < expected) fail(`truncated: expected ${expected} bytes, found ${bytes.byteLength}`);
  if (bytes.byteLength > expected) fail(`${bytes.byteLength - expected} unexpected trailing bytes (expected ${expected} bytes)`);
  const stored = view.getUint32(expected - 4, true);
  const actual = crc32(bytes.subarray(0, expected - 4));
  if (stored !== actual) {
    fail(`checksum mismatch (stored CRC-32 ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')}): the file is corrupt`);
  }
  const slice = (e: { offset: number; byteLength: number; path: string }): ArrayBuffer => {
    if (e.offset < 0 || e.offset + e.byteLength > index.dataLength) fail(`leaf '${e.path}' points outside the data section`);
    const start = bytes.byteOffset + dataStart + e.offset;
    return bytes.buffer.slice(start, start + e.byteLength) as ArrayBuffer;
  };
  const leaves = index.leaves.map((e): unknown => {
    switch (e.kind) {
      case 'tensor': {
        if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`leaf '${e.path}' has a bad shape ${JSON.stringify(e.shape)}`);
        const buf = slice(e);
        const size = e.shape.reduce((a, b) => a * b, 1);
        const per = e.dtype === 'bool' ? 1 : 4;
        if (size * per !== e.byteLength) fail(`leaf '${e.path}': shape [${e.shape}] does not match ${e.byteLength} bytes`);
        const shape = e.shape;
        if (e.dtype === 'float32') return { kind: 'tensor', dtype: 'float32', shape, data: new Float32Array(buf) } as HostTensor;
        if (e.dtype === 'int32') return { kind: 'tensor', dtype: 'int32', shape, data: new Int32Array(buf) } as HostTensor;
        if (e.dtype === 'bool') return { kind: 'tensor', dtype: 'bool', shape, data: new Uint8Array(buf) } as HostTensor;
        return fail(`leaf '${e.path}' has unknown dtype ${(e as { dtype: string }).dtype}`);
      }
      case 'typed': {
        const buf = slice(e);
        if (e.dtype === 'Float32Array') return new Float32Array(buf);
        if (e.dtype === 'Int32Array') return new Int32Array(buf);
        if (e.dtype === 'Uint32Array') return new Uint32Array(buf);
        return fail(`leaf '${e.path}' has unknown array type ${(e as { dtype: string }).dtype}`);
      }
      case 'value':
        return e.value;
      case 'number':
        return Number(e.value);
      default:
        return fail(`leaf '${(e as LeafEntry).path}' has unknown kind '${(e as { kind: string }).kind}'`);
    }
  });
  try {
    treeUnflatten(index.treedef, leaves.map(() => 0)); // the treedef must fit the leaves
  } catch (e) {
    return fail(`corrupt index (${(e as Error).message})`);
  }
  return { treedef: index.treedef, paths: index.leaves.map((e) => String(e.path)), leaves };
}

/** Parses bytes written by `serializeTree`. `source` names the file in errors. */
export function deserializeTree<T extends PyTree = PyTree>(bytes: Uint8Array, source = '<bytes>'): T {
  return fromHostTree<T>(decodeHostTree(bytes, source));
}
