/**
 * Flax msgpack checkpoints (`flax.serialization`, which the reference's `checkpoints.py`,
 * `save_checkpoint` / `load_state` use): read and write the reference library's `params_<n>` files
 * without Python. (In libs/core so that libs/optimizers' checkpoint loader and apps/runner share it;
 * apps/runner/src/flax_msgpack.ts re-exports it.)
 *
 * Format (flax `msgpack_serialize(to_state_dict(x))`): a msgpack map of the state dict, nested
 * maps with string keys; every array leaf is a msgpack extension of type 1 (`ndarray`; type 3 for
 * numpy scalars) whose payload is itself msgpack: `[shape (array of ints), dtype name (str),
 * raw C-order little-endian bytes (bin)]`. A `ParameterCheckpoint` is the dataclass
 * `{params, gen_id, step}`; MLPLOpt's θ is the Haiku dict
 * `{'mlp/~/linear_0': {w, b}, 'mlp/~/linear_1': {w, b}, 'mlp/~/linear_2': {w, b}}`.
 *
 * Import turns arrays into tensors (float64 → float32, int64 → int32, as tfjs has no 64-bit
 * types); export writes float32 / int32 arrays. Map keys keep their insertion order, as flax's
 * `to_state_dict` does (dataclass field order `params, gen_id, step`; Haiku creates `w` before
 * `b`), so importing a flax file and exporting it again gives the same bytes.
 */
import * as tf from '@tensorflow/tfjs';
import { decode, encode, ExtensionCodec } from '@msgpack/msgpack';
import { type PyTree, treeLeavesWithPath } from './tree';

/** msgpack extension code flax uses for a numpy ndarray (flax/serialization.py, `_MsgpackExtType.ndarray`). */
export const EXT_NDARRAY = 1;
/** msgpack extension code flax uses for a Python complex number. */
export const EXT_COMPLEX = 2;
/** msgpack extension code flax uses for a numpy scalar. */
export const EXT_NPSCALAR = 3;

/** Bytes that are not a flax msgpack file, or hold a dtype or layout we cannot read. */
export class FlaxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlaxFormatError';
  }
}

/** An ndarray as flax stores it: shape, numpy dtype name, raw little-endian C-order bytes. */
export class NdArray {
  constructor(
    readonly shape: number[],
    readonly dtype: string,
    readonly bytes: Uint8Array,
    /** true for extension type 3 (a numpy scalar, `ar[()]` on load). */
    readonly scalar = false,
  ) {}
}

const ITEMSIZE: Record<string, number> = {
  float16: 2, bfloat16: 2, float32: 4, float64: 8,
  int8: 1, int16: 2, int32: 4, int64: 8, uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1,
};

function ndarrayPayload(a: NdArray): Uint8Array {
  // msgpack.packb((shape, dtype.name, arr.tobytes('C')), use_bin_type=True)
  return encode([a.shape, a.dtype, a.bytes]);
}

function ndarrayFromPayload(data: Uint8Array, scalar: boolean): NdArray {
  let v: unknown;
  try {
    v = decode(data);
  } catch (e) {
    throw new FlaxFormatError(`ndarray extension payload is not msgpack (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.length !== 3) throw new FlaxFormatError('ndarray extension payload must be [shape, dtype, bytes]');
  const [shape, dt, buf] = v as [unknown, unknown, unknown];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new FlaxFormatError(`ndarray shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const dtype = typeof dt === 'string' ? dt : dt instanceof Uint8Array ? new TextDecoder().decode(dt) : null;
  if (dtype === null) throw new FlaxFormatError('ndarray dtype name must be a string');
  if (!(buf instanceof Uint8Array)) throw new FlaxFormatError('ndarray data must be bytes');
  const size = ITEMSIZE[dtype];
  if (size === undefined) throw new FlaxFormatError(`unsupported ndarray dtype '${dtype}' (supported: ${Object.keys(ITEMSIZE).join(', ')})`);
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  if (buf.length !== n * size) {
    throw new FlaxFormatError(`ndarray of shape [${shape}] and dtype ${dtype} needs ${n * size} bytes, got ${buf.length}`);
  }
  return new NdArray(shape as number[], dtype, buf.slice(), scalar);
}

/** The extension codec: NdArray <-> ext type 1 (and type 3 on read). */
export const flaxExtensionCodec = (() => {
  const codec = new ExtensionCodec();
  codec.register({
    type: EXT_NDARRAY,
    encode: (x: unknown) => (x instanceof NdArray && !x.scalar ? ndarrayPayload(x) : null),
    decode: (data: Uint8Array) => ndarrayFromPayload(data, false),
  });
  codec.register({
    type: EXT_NPSCALAR,
    encode: (x: unknown) => (x instanceof NdArray && x.scalar ? ndarrayPayload(x) : null),
    decode: (data: Uint8Array) => ndarrayFromPayload(data, true),
  });
  codec.register({
    type: EXT_COMPLEX,
    encode: () => null,
    decode: () => {
      throw new FlaxFormatError('complex numbers are not supported');
    },
  });
  return codec;
})();

/** True when the bytes look like a msgpack map (every flax state dict is one). */
export function looksLikeFlaxMsgpack(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  const b = bytes[0];
  return (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf;
}

/** `flax.serialization.msgpack_restore`: the state dict with NdArray leaves. */
export function msgpackRestore(bytes: Uint8Array): unknown {
  try {
    return decode(bytes, { extensionCodec: flaxExtensionCodec });
  } catch (e) {
    if (e instanceof FlaxFormatError) throw e;
    throw new FlaxFormatError(`not a flax msgpack file: ${(e as Error).message}`);
  }
}

/** `flax.serialization.msgpack_serialize`: plain maps / lists / numbers / strings / NdArray leaves. */
export function msgpackSerialize(stateDict: unknown): Uint8Array {
  return encode(stateDict, { extensionCodec: flaxExtensionCodec });
}

// ---- NdArray <-> tensor ----

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** A decoded flax ndarray (dtype, shape, little-endian bytes) as a tensor; float16/float64 become float32. */
export function ndarrayToTensor(a: NdArray, where = 'array'): tf.Tensor {
  const buf = a.bytes.buffer.slice(a.bytes.byteOffset, a.bytes.byteOffset + a.bytes.byteLength);
  const dv = new DataView(buf);
  const n = a.shape.reduce((x, y) => x * y, 1);
  let values: Float32Array | Int32Array | Uint8Array;
  let dtype: 'float32' | 'int32' | 'bool';
  switch (a.dtype) {
    case 'float32':
      values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = dv.getFloat32(4 * i, true);
      dtype = 'float32';
      break;
    case 'float64':
      values = Float32Array.from({ length: n }, (_, i) => dv.getFloat64(8 * i, true));
      dtype = 'float32';
      break;
    case 'float16':
      values = Float32Array.from({ length: n }, (_, i) => halfToFloat(dv.getUint16(2 * i, true)));
      dtype = 'float32';
      break;
    case 'bfloat16': {
      values = new Float32Array(n);
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(2 * i, true) << 16, true);
        values[i] = tmp.getFloat32(0, true);
      }
      dtype = 'float32';
      break;
    }
    case 'int8': case 'int16': case 'int32': case 'uint8': case 'uint16': case 'uint32': case 'int64': case 'uint64': {
      values = new Int32Array(n);
      const size = ITEMSIZE[a.dtype];
      for (let i = 0; i < n; i++) {
        let v: number;
        if (a.dtype === 'int64' || a.dtype === 'uint64') {
          const big = a.dtype === 'int64' ? dv.getBigInt64(8 * i, true) : dv.getBigUint64(8 * i, true);
          if (big > 2147483647n || big < -2147483648n) throw new FlaxFormatError(`${where}: ${a.dtype} value ${big} does not fit in int32`);
          v = Number(big);
        } else {
          v =
            size === 1 ? (a.dtype === 'int8' ? dv.getInt8(i) : dv.getUint8(i))
            : size === 2 ? (a.dtype === 'int16' ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true))
            : a.dtype === 'int32' ? dv.getInt32(4 * i, true) : dv.getUint32(4 * i, true);
          if (v > 2147483647) throw new FlaxFormatError(`${where}: ${a.dtype} value ${v} does not fit in int32`);
        }
        values[i] = v;
      }
      dtype = 'int32';
      break;
    }
    case 'bool':
      values = new Uint8Array(buf);
      dtype = 'bool';
      break;
    default:
      throw new FlaxFormatError(`${where}: unsupported dtype '${a.dtype}'`);
  }
  return tf.tensor(values, a.shape, dtype);
}

/** A tensor as flax's ndarray record (float32 or int32 bytes), for `encode`. */
export function tensorToNdArray(t: tf.Tensor): NdArray {
  const vals = t.dataSync();
  let bytes: Uint8Array;
  let dtype: string;
  if (t.dtype === 'float32') {
    const f = Float32Array.from(vals as Float32Array);
    bytes = littleEndian(f.buffer, 4);
    dtype = 'float32';
  } else if (t.dtype === 'int32') {
    bytes = littleEndian(Int32Array.from(vals as Int32Array).buffer, 4);
    dtype = 'int32';
  } else if (t.dtype === 'bool') {
    bytes = Uint8Array.from(vals as Uint8Array);
    dtype = 'bool';
  } else {
    throw new FlaxFormatError(`cannot export a ${t.dtype} tensor`);
  }
  return new NdArray(t.shape.slice(), dtype, bytes);
}

const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function littleEndian(buf: ArrayBufferLike, size: number): Uint8Array {
  const b = new Uint8Array(buf);
  if (LITTLE) return b;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += size) for (let j = 0; j < size; j++) out[i + j] = b[i + size - 1 - j];
  return out;
}

// ---- parameter checkpoints ----

/** A θ read from or written to a flax msgpack checkpoint, with the outer step it was saved at. */
export interface FlaxParams {
  theta: PyTree;
  step: number | null;
  genId: string | null;
  /** 'parameter_checkpoint' for `{params, gen_id, step}`, 'state_dict' for a bare params dict. */
  layout: 'parameter_checkpoint' | 'state_dict';
}

function isMap(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof NdArray) && !(x instanceof Uint8Array);
}

function scalarOf(x: unknown): number | null {
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return Number(x);
  if (x instanceof NdArray && x.shape.length === 0) {
    const t = ndarrayToTensor(x);
    const v = t.dataSync()[0];
    t.dispose();
    return v;
  }
  return null;
}

/** State dict (NdArray leaves) -> pytree of tensors. Lists become arrays, maps objects. */
function stateDictToTree(x: unknown, path: string): PyTree {
  if (x instanceof NdArray) return ndarrayToTensor(x, path || 'array');
  if (Array.isArray(x)) return x.map((c, i) => stateDictToTree(c, `${path}/${i}`));
  if (isMap(x)) {
    if ('__msgpack_chunked_array__' in x) throw new FlaxFormatError(`${path}: chunked (>1 GiB) arrays are not supported`);
    const out: Record<string, PyTree> = {};
    for (const [k, v] of Object.entries(x)) out[k] = stateDictToTree(v, path ? `${path}/${k}` : k);
    return out;
  }
  if (x === null) return null;
  if (typeof x === 'number') return tf.scalar(x);
  throw new FlaxFormatError(`${path || '<root>'}: unexpected ${typeof x} in a params state dict`);
}

/**
 * Reads a flax `params_<n>` file (a `ParameterCheckpoint` `{params, gen_id, step}`, or a bare
 * params state dict) into a tensor pytree. Structure checks against a learned optimizer are the
 * caller's (`checkThetaStructure`).
 */
export function importFlaxParams(bytes: Uint8Array, source = '<bytes>'): FlaxParams {
  if (!looksLikeFlaxMsgpack(bytes)) throw new FlaxFormatError(`${source}: not a flax msgpack file (does not start with a msgpack map)`);
  let sd: unknown;
  try {
    sd = msgpackRestore(bytes);
  } catch (e) {
    throw new FlaxFormatError(`${source}: ${(e as Error).message}`);
  }
  if (!isMap(sd)) throw new FlaxFormatError(`${source}: the top level must be a map`);
  if ('gradient_learner_state' in sd) {
    throw new FlaxFormatError(`${source}: this is an OptCheckpoint (checkpoint_<n>); pass the params_<n> file instead`);
  }
  const isCkpt = 'params' in sd && ('step' in sd || 'gen_id' in sd);
  const raw = isCkpt ? sd.params : sd;
  if (!isMap(raw)) throw new FlaxFormatError(`${source}: 'params' must be a map of arrays`);
  let theta: PyTree;
  try {
    theta = stateDictToTree(raw, '');
  } catch (e) {
    throw new FlaxFormatError(`${source}: ${(e as Error).message}`);
  }
  const genRaw = isCkpt ? sd.gen_id : null;
  const genId = typeof genRaw === 'string' ? genRaw : genRaw instanceof Uint8Array ? new TextDecoder().decode(genRaw) : null;
  return { theta, step: isCkpt ? scalarOf(sd.step) : null, genId, layout: isCkpt ? 'parameter_checkpoint' : 'state_dict' };
}

function treeToStateDict(x: unknown, path: string): unknown {
  if (x instanceof tf.Tensor) return tensorToNdArray(x);
  if (Array.isArray(x)) {
    // flax writes lists/tuples as {'0': ..., '1': ...}
    const o: Record<string, unknown> = {};
    x.forEach((c, i) => (o[String(i)] = treeToStateDict(c, `${path}/${i}`)));
    return o;
  }
  if (isMap(x)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = treeToStateDict(v, path ? `${path}/${k}` : k);
    return out;
  }
  if (x === null || x === undefined) return {};
  if (typeof x === 'number') return tensorToNdArray(tf.scalar(x));
  throw new FlaxFormatError(`${path || '<root>'}: cannot export a ${typeof x} leaf`);
}

/** Writes θ as the reference's `ParameterCheckpoint(params=θ, gen_id, step)` flax msgpack bytes. */
export function exportFlaxParams(theta: PyTree, opts: { step?: number; genId?: string } = {}): Uint8Array {
  return msgpackSerialize({ params: treeToStateDict(theta, ''), gen_id: opts.genId ?? '', step: opts.step ?? 0 });
}

/**
 * Checks that `theta` has the structure and shapes of `template` (e.g. `lopt.init(key)`); throws
 * a FlaxFormatError naming the missing / unexpected / mis-shaped entries and the expected layout.
 */
export function checkThetaStructure(theta: PyTree, template: PyTree, what = 'theta'): void {
  const got = new Map(treeLeavesWithPath<unknown>(theta).map(([p, v]) => [p, v instanceof tf.Tensor ? v.shape : null]));
  const want = new Map(treeLeavesWithPath<unknown>(template).map(([p, v]) => [p, v instanceof tf.Tensor ? v.shape : null]));
  const problems: string[] = [];
  for (const [p, s] of want) {
    if (!got.has(p)) problems.push(`missing '${p}'`);
    else if (JSON.stringify(got.get(p)) !== JSON.stringify(s)) problems.push(`'${p}' has shape [${got.get(p)}], expected [${s}]`);
  }
  for (const p of got.keys()) if (!want.has(p)) problems.push(`unexpected '${p}'`);
  if (problems.length) {
    const layout = [...want].map(([p, s]) => `${p} [${s}]`).join(', ');
    throw new FlaxFormatError(`${what} does not match: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? '; …' : ''}. Expected: ${layout}`);
  }
}
