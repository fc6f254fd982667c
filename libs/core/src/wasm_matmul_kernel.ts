/**
 * A faster `BatchMatMul` for the wasm backend (registered by `initBackend('wasm')`).
 *
 * tfjs-backend-wasm 4.22 sends a matMul to XNNPACK only when both operands have a batch of one and
 * neither is transposed; anything else runs a plain triple loop in C++. Measured here for
 * [128, 192] · [192, 512]: 1.8 ms as one untransposed matMul, 18.9 ms with `transposeA` (what the
 * gradient of every dense layer asks for, dW = xᵀ·dy), and 35.5 ms for two stacked tasks
 * ([2, 128, 192] · [2, 192, 512]). So a stacked or transposed product is rewritten here into
 * the one form XNNPACK takes: the transposed operand is transposed once (the backend's own
 * Transpose kernel), and each batch entry is one untransposed product by the stock kernel, written
 * into its place in the output. Same values up to float rounding (XNNPACK sums in another order).
 * Broadcasts other than "same batch" or "one side has batch 1", and non-float32 operands, go to
 * the stock kernel unchanged, and so do batches of small products (under
 * {@link SMALL_ENTRY_MACS} multiply-adds each): a product by itself costs ~10 µs here (an output
 * buffer, the stock call, a copy), more than the stock loop takes for all of a small one. ViT
 * attention at a few tokens per image is 1,024 products of [2, 2] · [2, 32] per call: 19 ms split,
 * 0.8 ms in the stock loop.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): void;
}
type KernelFunc = (args: { inputs: Record<string, TensorInfo>; backend: WasmBackendLike; attrs: Record<string, unknown> }) => TensorInfo;

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Products of fewer multiply-adds than this (m·k·n per batch entry) stay in the stock kernel's loop
 * (measured on wasm: 2,048 per entry ran 1.8x faster there, 16,384 2x faster split).
 */
export const SMALL_ENTRY_MACS = 6144;

/** `x` as `[batch, rows, cols]` with its last two axes swapped, by the backend's Transpose kernel. */
function transposed(transpose: KernelFunc, backend: WasmBackendLike, x: TensorInfo, batch: number): TensorInfo {
  const [r, c] = x.shape.slice(-2);
  const x3 = { ...x, shape: [batch, r, c] };
  return transpose({ inputs: { x: x3 }, backend, attrs: { perm: [0, 2, 1] } });
}

/** Entry `i` of a `[batch, rows, cols]` operand as its own `[1, rows, cols]` buffer (the operand itself when batch is 1). */
function entry(backend: WasmBackendLike, x: TensorInfo, i: number, rows: number, cols: number): TensorInfo {
  const whole = { dataId: x.dataId, dtype: x.dtype, shape: [1, rows, cols] };
  if (size(x.shape) === rows * cols) return whole;
  const out = backend.makeOutput([1, rows, cols], x.dtype);
  // views after makeOutput (which may grow the heap and detach earlier views)
  const n = rows * cols;
  backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x).subarray(i * n, (i + 1) * n));
  return out;
}

/** The replacement kernel around the stock one (see the file comment). */
export function fastBatchMatMul(stock: KernelFunc, transpose: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend;
    const [outerA, outerB] = [a.shape.slice(0, -2), b.shape.slice(0, -2)];
    const [batchA, batchB] = [size(outerA), size(outerB)];
    if ((batchA === 1 && batchB === 1 && !transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return stock(args);
    // the output's batch axes: the same on both sides, or those of the side whose batch is not 1
    let batchShape: number[];
    if (batchA === batchB && outerA.join() === outerB.join()) batchShape = outerA;
    else if (batchA === 1 && outerA.length <= outerB.length) batchShape = outerB;
    else if (batchB === 1 && outerB.length <= outerA.length) batchShape = outerA;
    else return stock(args);
    const [ra, ca] = a.shape.slice(-2);
    const n0 = b.shape[b.shape.length - (transposeB ? 2 : 1)];
    if (ra * ca * n0 < SMALL_ENTRY_MACS) return stock(args);
    const temps: TensorInfo[] = [];
    const aT = transposeA ? transposed(transpose, backend, a, batchA) : a;
    const bT = transposeB ? transposed(transpose, backend, b, batchB) : b;
    if (transposeA) temps.push(aT);
    if (transposeB) temps.push(bT);
    const [m, k] = aT.shape.slice(-2);
    const n = bT.shape[bT.shape.length - 1];
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput([...batchShape, m, n], 'float32');
    for (let i = 0; i < batch; i++) {
      const ai = entry(backend, aT, batchA === 1 ? 0 : i, m, k);
      const bi = entry(backend, bT, batchB === 1 ? 0 : i, k, n);
      const oi = stock({ inputs: { a: ai, b: bi }, backend, attrs: { transposeA: false, transposeB: false } });
      backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(oi), i * m * n);
      backend.disposeData(oi.dataId);
      for (const t of [ai, bi]) if (t.dataId !== aT.dataId && t.dataId !== bT.dataId) backend.disposeData(t.dataId);
    }
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

let registered = false;

/** Replace the wasm BatchMatMul kernel (idempotent; call after the backend is ready). */
export function registerFastWasmMatMul(): void {
  if (registered) return;
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!stock || !transpose) return;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: fastBatchMatMul(stock.kernelFunc as unknown as KernelFunc, transpose.kernelFunc as unknown as KernelFunc) as any });
  registered = true;
}
