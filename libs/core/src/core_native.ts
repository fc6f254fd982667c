/**
 * @lopt/core's own native addon (`native/core.c`, `lopt_core.node`, built by `npm run build:native`):
 * the wasm elementwise kernels (wasm_unary_kernels.ts), middle-axis Sum and Mean
 * (wasm_reduce_kernels.ts), the patch copies of the conv backprop kernels (wasm_conv_kernels.ts) and
 * the random bits and radix sort of a data split's shuffle (`permutation` in @lopt/tasks), and the
 * random bits and erfinv of random.ts's normal draws. Loaded through native.ts (settings `LOPT_NATIVE`,
 * `LOPT_NATIVE_ISA`); where it is not built or `LOPT_NATIVE=off`, `coreNative()` is null and
 * those kernels run their tf.js / JavaScript versions.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, nativeAddonPath, type NativeAddon } from './native';

/** The core native addon: elementwise float32 kernels and conv patch copies on host arrays. */
export interface CoreAddon extends NativeAddon {
  /** `y[i] = op(x[i])` for the op of index `op` in `WASM_UNARY_OPS`; x and y of one length, not overlapping. */
  unary(op: number, x: Float32Array, y: Float32Array, variant?: string): void;
  /**
   * im2col of a 2-D convolution (NHWC), transposed: `colsT[(i, j, c), (b, y, x)] = x[b, y·sh + i − top,
   * x·sw + j − left, c]`, 0 outside. `g` = [B, H, W, C, Ho, Wo, kh, kw, sh, sw, top, left].
   */
  im2colT(g: Int32Array, x: Float32Array, colsT: Float32Array): void;
  /** tfjs-backend-wasm's Maximum (isMax) / Minimum: `y[i] = a[i] < b[i] ? b[i] : a[i]` / `b[i] < a[i] ? b[i] : a[i]`, a or b of one value or of y's length. */
  minmax(isMax: boolean, a: Float32Array, b: Float32Array, y: Float32Array, variant?: string): void;
  /** tfjs-backend-wasm's Pow (C's powf, special cases included): `y[i] = a[i]^b[i]`, a or b of one value or of y's length. */
  pow(a: Float32Array, b: Float32Array, y: Float32Array, variant?: string): void;
  /** `out[o, i] = Σ_r x[o, r, i]` (mean: divided by R) for x viewed as [outer, R, inner], summed in float from r = 0 up. */
  reduceMiddle(x: Float32Array, out: Float32Array, outer: number, R: number, inner: number, mean: boolean): void;
  /** col2im: `dx = 0`, then `dx[b, y·sh + i − top, x·sw + j − left, :] += cols[(b, y, x), (i, j, :)]` (outside: dropped). */
  col2im(g: Int32Array, cols: Float32Array, dx: Float32Array): void;
  /** `jax.random.bits(key, out.length)` (uint32) into `out`, for key `[k0, k1]` in the given threefry mode (random.ts `randomBits`). */
  randomBits(k0: number, k1: number, partitionable: boolean, out: Uint32Array): void;
  /** The indices sorted by `bits` ascending, ties in index order, into `order` (tasks' `stableOrderByBits`). */
  stableOrder(bits: Uint32Array, order: Int32Array): void;
  /** `out[i] = min(hi, max(lo, √2 · erfinv(u[i])))` in float32, as random.ts `normalArray` / `truncatedNormalArray` compute it (±Infinity: no bound). */
  normalFromUniform(u: Float32Array, out: Float32Array, lo: number, hi: number): void;
}

// '' in a browser bundle (no __dirname): the addon is then reported as not built.
const ADDON_PATH = nativeAddonPath(typeof __dirname === 'string' ? __dirname : undefined, 'lopt_core.node');

/** The core addon, or null where it is not built or `LOPT_NATIVE=off`. */
export function coreNative(): CoreAddon | null {
  return loadNativeAddon<CoreAddon>(ADDON_PATH, 'Core');
}

const stock = new Map<string, tf.KernelConfig>();

/**
 * The wasm kernel `name` as tfjs-backend-wasm registered it, before the core addon's version
 * replaced it (undefined for a name not replaced); for tests and benchmarks.
 */
export function stockWasmKernel(name: string): tf.KernelConfig | undefined {
  return stock.get(name);
}

/**
 * Registers `kernelFunc` as the wasm kernel `name` in place of tfjs-backend-wasm's, which it gets
 * to fall back on (and `stockWasmKernel` keeps). Does nothing and returns undefined where there is
 * no stock kernel or it was replaced already.
 */
export function replaceStockWasmKernel(name: string, kernelFunc: (stockKernel: tf.KernelConfig) => tf.KernelFunc): tf.KernelConfig | undefined {
  const original = tf.getKernel(name, 'wasm');
  if (!original || stock.has(name)) return undefined;
  stock.set(name, original);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc(original) });
  return original;
}
