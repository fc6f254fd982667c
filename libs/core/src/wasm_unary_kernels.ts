/**
 * Vectorised elementwise kernels for the wasm backend (registered by `initBackend('wasm')`): the
 * core native addon (`native/core.c`, built by `npm run build:native`) replaces
 * tfjs-backend-wasm 4.22's Tanh, Exp, Log, Softplus, Expm1, Log1p, Sqrt, Rsqrt, Sign, Sin and
 * Cos for float32 tensors.
 *
 * tfjs-backend-wasm runs these as scalar loops over libm calls (kernels/Tanh.cc etc.): 18 ns a
 * value for Tanh, 9 for Exp, 5 for Log, 16 for Softplus, 19 for Expm1, 8 for Sign, 44 for Sin
 * and Cos (1 M values, this machine), while Sigmoid, Mul and Add go to XNNPACK (0.2-1.2 ns). Every tanh network (the
 * `Conv_*_Tanh` tasks, the parametric families' sampled tanh, the LSTMs) and every softmax /
 * log-softmax (Exp) paid for it. The addon's loops evaluate in double precision and round once
 * (0.1-1.8 ns a value): the correctly rounded float result up to a rare last-ulp tie, where the
 * stock libm (musl) loops are off by up to 1 ulp (2 for tanhf) in a few percent of values.
 * Sqrt, Rsqrt (`1 / sqrtf(x)`) and Sign give the stock kernels' values exactly; Softplus and Log1p
 * keep the stock kernels' formulas (thresholds, `logf((float)(x + 1.0))`). The stock Sin and Cos
 * take x mod 2π in double and round it to float (`sin_cos_workaround.cc`: up to ~3e-7 off, and
 * no sine beyond |x| ~1e9); these are within 1 ulp of float64 `Math` (|x| >= 2^19: libm's double
 * sin / cos).
 *
 * Maximum and Minimum (std::max / std::min loops over broadcast indices, ~9 ns a value) run as
 * vectorised selects with the same NaN behaviour, where one operand is a single value or neither
 * is broadcast (the values bit for bit). Pow (C's powf per value, ~14 ns) in the same cases as
 * e^(y·ln|x|) in double, rounded once, with C99's special cases (±0, ±Inf, NaN, negative x).
 *
 * The gradients are unchanged: they are registered per kernel name (tanh's is dy·(1 − y²) from
 * the output, and so on) and run other kernels. Other dtypes, and everything where the addon is not
 * built or `LOPT_NATIVE=off`, run the stock kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative, replaceStockWasmKernel } from './core_native';
import { nativeVariant, nativeVariantArg } from './native';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The unary kernels the core addon replaces on wasm, in the order of its op codes (`native/core.c`); Maximum, Minimum and Pow are replaced too. */
export const WASM_UNARY_OPS = ['Tanh', 'Exp', 'Log', 'Softplus', 'Expm1', 'Log1p', 'Sqrt', 'Rsqrt', 'Sign', 'Sin', 'Cos'] as const;

let registered = false;

/**
 * Replace the wasm kernels of `WASM_UNARY_OPS`, Maximum, Minimum and Pow with the core addon's (idempotent; call after the
 * backend is ready). Returns whether they are replaced: false where the addon is not built, or
 * `LOPT_NATIVE=off` (an error under `LOPT_NATIVE=on`).
 */
export function registerWasmUnaryKernels(): boolean {
  if (registered) return true;
  const addon = coreNative();
  if (!addon) return false;
  WASM_UNARY_OPS.forEach((name, op) => {
    replaceStockWasmKernel(name, (original) => (args) => {
      const x = (args.inputs as { x: TensorInfo }).x;
      if (x.dtype !== 'float32') return (original.kernelFunc as (a: typeof args) => TensorInfo)(args);
      const backend = args.backend as unknown as WasmBackendLike;
      const out = backend.makeOutput(x.shape, 'float32');
      // views after makeOutput, which may grow the heap and detach older ones
      const y = backend.typedArrayFromHeap(out) as Float32Array;
      if (y.length > 0) addon.unary(op, backend.typedArrayFromHeap(x) as Float32Array, y, nativeVariantArg());
      return out;
    });
  });
  for (const name of ['Maximum', 'Minimum', 'Pow'] as const) {
    replaceStockWasmKernel(name, (original) => (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const n = tf.util.sizeFromShape(shape);
      const [na, nb] = [tf.util.sizeFromShape(a.shape), tf.util.sizeFromShape(b.shape)];
      // one operand broadcast from a single value, or none broadcast; others: the stock kernel.
      // Pow's baseline variant is not vectorised by the compiler (23 ns a value, the stock 12-18):
      // the stock kernel there.
      const stockPow = name === 'Pow' && nativeVariant() === 'base';
      if (stockPow || a.dtype !== 'float32' || b.dtype !== 'float32' || n === 0 || (na !== n && na !== 1) || (nb !== n && nb !== 1)) {
        return (original.kernelFunc as (x: typeof args) => TensorInfo)(args);
      }
      const backend = args.backend as unknown as WasmBackendLike;
      const out = backend.makeOutput(shape, 'float32');
      const view = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
      if (name === 'Pow') addon.pow(view(a), view(b), view(out), nativeVariantArg());
      else addon.minmax(name === 'Maximum', view(a), view(b), view(out), nativeVariantArg());
      return out;
    });
  }
  registered = true;
  return true;
}
