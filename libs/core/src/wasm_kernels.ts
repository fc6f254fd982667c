/**
 * Faster Slice / Unpack / SplitV (and axis-0 GatherV2) for the wasm backend (registered by `initBackend('wasm')`).
 *
 * tfjs-backend-wasm 4.22 implements these three in JavaScript, and its `slice` first copies the
 * *whole* input out of the wasm heap (`backend.readSync`) before copying the requested part, so
 * `tf.unstack(x)` / `tf.split(x, n)` of an `[n, ...]` tensor copy it n times (quadratic in n):
 * unstacking a [16, 2410, 8] tensor took 8.5 ms instead of ~0.1 ms. These versions copy straight
 * between heap views (contiguous runs with one `set` each). Same values; other dtypes (string)
 * fall back to the stock kernels.
 *
 * Identity: the stock wasm kernel copies its input into a new heap buffer, and the engine clones
 * (Identity) every tensor a gradient saves for backprop, so on wasm each saved activation existed
 * twice; with large activations (MLP-Mixer's token mixing at batch 64+: 50-100 MB a tensor) that
 * exhausted the 4 GiB wasm heap and aborted the module. This version shares the input's buffer
 * (a reference count, as wasm's Reshape and the cpu backend's Identity do; tensors are immutable).
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
  /** the backend's buffers, with the shape each was made with */
  dataIdMap?: { get(dataId: object): { shape: number[] } | undefined };
}

const sliceUtil = (tf as any).slice_util;

/** Copy the box [begin, begin + size) of x into a new tensor, run by contiguous run. */
function fastSlice(backend: WasmBackendLike, x: TensorInfo, begin: number[], size: number[], outShape: number[] = size): TensorInfo {
  // The buffer gets the caller's shape: kernels that check a buffer's rank (wasm's fused matMul
  // wants a rank-1 bias) then accept unstacked rows.
  const out = backend.makeOutput(outShape, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  // Views after makeOutput (which may grow the heap and detach earlier views).
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const rank = x.shape.length;
  const strides = new Array(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * x.shape[i + 1];
  // Merge trailing dims that are taken whole into one contiguous run.
  let inner = rank - 1;
  let run = size[rank - 1] ?? 1;
  while (inner > 0 && size[inner] === x.shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner];
  }
  // `inner` is the first axis of the run; iterate over the axes before it.
  const outer = size.slice(0, inner);
  const count = outer.reduce((a, b) => a * b, 1);
  const idx = new Array(inner).fill(0);
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d] * strides[d];
  for (let c = 0, o = 0; c < count; c++, o += run) {
    let off = base;
    for (let d = 0; d < inner; d++) off += idx[d] * strides[d];
    dst.set(src.subarray(off, off + run), o);
    for (let d = inner - 1; d >= 0; d--) {
      if (++idx[d] < outer[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

let registered = false;

/** Replace the wasm Slice, Unpack, SplitV, GatherV2 and Identity kernels (idempotent; call after the backend is ready). */
export function registerFastWasmSliceKernels(): void {
  if (registered) return;
  const stock = {
    Slice: tf.getKernel('Slice', 'wasm'),
    Unpack: tf.getKernel('Unpack', 'wasm'),
    SplitV: tf.getKernel('SplitV', 'wasm'),
    Identity: tf.getKernel('Identity', 'wasm'),
  };
  if (!stock.Slice || !stock.Unpack || !stock.SplitV || !sliceUtil) return;
  const replace = (name: string, kernelFunc: (args: any) => any) => {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  if (stock.Identity) {
    replace('Identity', (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      // Share only a buffer recorded with the clone's rank: some wasm kernels check the rank of
      // the buffer, not the tensor (_FusedMatMul's bias must be a rank-1 buffer), and a buffer
      // made by a reshape keeps the shape it was made with.
      const buffer = (args.backend as WasmBackendLike).dataIdMap?.get(x.dataId);
      if (x.dtype === 'string' || !buffer || buffer.shape.length !== x.shape.length) return (stock.Identity!.kernelFunc as any)(args);
      (args.backend as WasmBackendLike).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
    });
  }
  replace('Slice', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return (stock.Slice!.kernelFunc as any)(args);
    const [b, s] = sliceUtil.parseSliceParams(x, args.attrs.begin, args.attrs.size);
    return fastSlice(args.backend, x, b, s);
  });
  replace('Unpack', (args) => {
    const value = args.inputs.value as TensorInfo;
    if (value.dtype === 'string') return (stock.Unpack!.kernelFunc as any)(args);
    let axis = args.attrs.axis as number;
    if (axis < 0) axis += value.shape.length;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array(value.shape.length).fill(0);
    const size = value.shape.slice();
    size[axis] = 1;
    const outs: TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]; i++) {
      begin[axis] = i;
      outs.push(fastSlice(args.backend, value, begin, size, outShape));
    }
    return outs;
  });
  replace('SplitV', (args) => {
    const x = args.inputs.x as TensorInfo;
    if (x.dtype === 'string') return (stock.SplitV!.kernelFunc as any)(args);
    const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
    const splitSizes = tf.backend_util.prepareSplitSize(x as any, args.attrs.numOrSizeSplits, axis);
    const begin = new Array(x.shape.length).fill(0);
    const size = x.shape.slice();
    return splitSizes.map((s: number) => {
      const sz = [...size];
      sz[axis] = s;
      const o = fastSlice(args.backend, x, begin, sz);
      begin[axis] += s;
      return o;
    });
  });
  const stockGather = tf.getKernel('GatherV2', 'wasm');
  if (stockGather) {
    // Row gathers (axis 0, no batch dims; e.g. a data stream's batches) as one heap copy per row;
    // the stock C++ kernel copies element by element (~40 M elements/s).
    replace('GatherV2', (args) => {
      const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
      const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
      if (axis !== 0 || (args.attrs.batchDims ?? 0) !== 0 || x.dtype === 'string' || x.shape.length === 0) return (stockGather.kernelFunc as any)(args);
      const backend = args.backend as WasmBackendLike;
      const rows = x.shape[0];
      const row = x.shape.slice(1).reduce((a, b) => a * b, 1);
      const count = indices.shape.reduce((a, b) => a * b, 1);
      const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
      if (count === 0 || row === 0) return out;
      const idx = backend.typedArrayFromHeap(indices);
      const dst = backend.typedArrayFromHeap(out);
      const src = backend.typedArrayFromHeap(x);
      const checked = (i: number) => {
        const j = idx[i];
        if (!(j >= 0 && j < rows)) throw new Error(`GatherV2: the index value ${j} is not in [0, ${rows - 1}]`);
        return j;
      };
      if (row < 16) {
        // short rows (labels): element by element; a view per row would cost more than the copy
        for (let i = 0; i < count; i++) for (let k = 0, a = checked(i) * row, b = i * row; k < row; k++) dst[b + k] = src[a + k];
      } else {
        // both are views of the one wasm heap: copyWithin on a whole-heap view moves each row
        // without making a subarray per row (about twice as fast for 64-float image rows)
        const Heap = dst.constructor as Float32ArrayConstructor;
        const heap = new Heap(dst.buffer);
        const s0 = src.byteOffset / dst.BYTES_PER_ELEMENT;
        const d0 = dst.byteOffset / dst.BYTES_PER_ELEMENT;
        for (let i = 0; i < count; i++) {
          const a = s0 + checked(i) * row;
          heap.copyWithin(d0 + i * row, a, a + row);
        }
      }
      return out;
    });
  }
  registered = true;
}
