/**
 * Sum and Mean over a middle block of axes on the wasm backend (registered by `initBackend('wasm')`
 * where the core native addon is built): tfjs-backend-wasm 4.22 first transposes the reduced axes
 * last (a Transpose kernel, ~5-7 ns a value) and then sums each output's run; the bias gradient of
 * every conv layer (a Sum over batch, height and width) and a spatial mean paid that on every step.
 * The addon's `reduceMiddle` sums x viewed as [outer, R, inner] over R with the same float
 * additions in the same order, so the values are the stock kernels' bit for bit. Reductions it does
 * not cover (the reduced axes not one contiguous block, or already the last ones, non-float32
 * Sum, empty tensors) run the stock kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative, replaceStockWasmKernel } from './core_native';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * x's shape as [outer, R, inner] for a reduction over `axes`, when those are one contiguous block
 * followed by at least one kept axis of size > 1; else null (the stock kernel's case).
 */
export function middleBlock(shape: number[], axes: number[]): { outer: number; R: number; inner: number } | null {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (last - first + 1 !== sorted.length) return null;
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const inner = prod(shape.slice(last + 1));
  if (inner <= 1) return null;
  return { outer: prod(shape.slice(0, first)), R: prod(shape.slice(first, last + 1)), inner };
}

let registered = false;

/** Replace the wasm Sum and Mean kernels for middle-block reductions (idempotent; false without the addon). */
export function registerWasmReduceKernels(): boolean {
  if (registered) return true;
  const addon = coreNative();
  if (!addon) return false;
  for (const name of ['Sum', 'Mean'] as const) {
    replaceStockWasmKernel(name, (stock) => (args) => {
      const x = (args.inputs as { x: TensorInfo }).x;
      const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const block = x.dtype === 'float32' ? middleBlock(x.shape, axes) : null;
      if (!block || block.R === 0 || block.outer === 0) return (stock.kernelFunc as (a: typeof args) => TensorInfo)(args);
      const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      const backend = args.backend as unknown as WasmBackendLike;
      const out = backend.makeOutput(outShape, 'float32');
      // views after makeOutput, which may grow the heap and detach older ones
      const y = backend.typedArrayFromHeap(out) as Float32Array;
      addon.reduceMiddle(backend.typedArrayFromHeap(x) as Float32Array, y, block.outer, block.R, block.inner, name === 'Mean');
      return out;
    });
  }
  registered = true;
  return true;
}
