/**
 * The tasks' native kernels (`native/image_mlp.c`), registered as tf.js kernels (wasm and cpu; see
 * @lopt/core's native.ts for loading, settings and memory views):
 * - `LoptImageMLPValueAndGrad`: loss and gradient of N stacked MLP classifiers with ReLU in one C
 *   call. Where the addon is not built or `LOPT_NATIVE=off`, `imageMlpNative()` is null and
 *   ImageMLPTask uses its tf.js path: same values up to float rounding.
 * - `LoptGatherRows`: a data stream's batch of examples gathered by row (`native/gather_rows.h`),
 *   with the next rows requested ahead; `gatherRowsNative()` is null without the addon and
 *   TensorBatchStream uses `tf.gather`: the same values.
 */
import { loadNativeAddon, nativeAddonPath, nativeVariantArg, registerNativeKernel, type NativeAddon } from '@lopt/core';

/**
 * The tasks' native addon (`lopt_tasks.node`): the image MLP's loss and gradient for N stacked tasks, on host
 * arrays.
 */
export interface TasksAddon extends NativeAddon {
  imageMlpValueAndGrad(
    N: number,
    B: number,
    sizes: Int32Array,
    x: Float32Array,
    label: Int32Array,
    w: Float32Array[],
    b: Float32Array[],
    loss: Float32Array,
    gw: Float32Array[] | null,
    gb: Float32Array[] | null,
    variant?: string,
  ): void;
  /** dst row i = src row indices[i] (rows of rowElems elements; both Float32Array or both Int32Array). */
  gatherRows(src: Float32Array | Int32Array, rowElems: number, indices: Int32Array, dst: Float32Array | Int32Array): void;
}

/**
 * Name of the tf.js kernel the native addon registers: the image MLP's fused loss (and gradient) for N
 * stacked tasks.
 */
export const LOPT_IMAGE_MLP_KERNEL = 'LoptImageMLPValueAndGrad';
// '' in a browser bundle (no __dirname): the addon is then reported as not built.
const ADDON_PATH = nativeAddonPath(typeof __dirname === 'string' ? __dirname : undefined, 'lopt_tasks.node');

/** The addon (its kernel registered), or null. */
export function imageMlpNative(): TasksAddon | null {
  const addon = loadNativeAddon<TasksAddon>(ADDON_PATH, 'ImageMLP');
  if (addon) {
    // Inputs: x [N, B, D], label int32 [N, B], w0.., b0.. ([N, in, out], [N, out]).
    // Outputs: loss [N], then (withGrad) gw0.., gb0...
    registerNativeKernel(LOPT_IMAGE_MLP_KERNEL, (inputs, attrs, io) => {
      const L = attrs.numLayers as number;
      const ws = Array.from({ length: L }, (_, i) => inputs[`w${i}`]);
      const bs = Array.from({ length: L }, (_, i) => inputs[`b${i}`]);
      const [N, B, D] = inputs.x.shape;
      const loss = io.alloc([N], 'float32');
      const gws = attrs.withGrad ? ws.map((t) => io.alloc(t.shape, 'float32')) : [];
      const gbs = attrs.withGrad ? bs.map((t) => io.alloc(t.shape, 'float32')) : [];
      const f32 = (t: (typeof ws)[number]) => io.view(t) as Float32Array;
      const sizes = Int32Array.from([D, ...ws.map((w) => w.shape[2])]);
      addon.imageMlpValueAndGrad(
        N,
        B,
        sizes,
        f32(inputs.x),
        io.view(inputs.label) as Int32Array,
        ws.map(f32),
        bs.map(f32),
        f32(loss),
        attrs.withGrad ? gws.map(f32) : null,
        attrs.withGrad ? gbs.map(f32) : null,
        nativeVariantArg(),
      );
      return [loss, ...gws, ...gbs];
    });
  }
  return addon;
}

/** Name of the tf.js kernel that gathers rows of a data split by host indices (see `gatherRowsNative`). */
export const LOPT_GATHER_ROWS_KERNEL = 'LoptGatherRows';

/**
 * The addon with `LoptGatherRows` registered, or null. The kernel takes `{x}` (rows along axis 0,
 * float32 or int32) and attrs `{indices: Int32Array, shape}`, and returns x's rows at `indices` as
 * one tensor of `shape` (indices.length rows of x's row shape, however `shape` groups them).
 */
export function gatherRowsNative(): TasksAddon | null {
  const addon = loadNativeAddon<TasksAddon>(ADDON_PATH, 'ImageMLP');
  if (addon) {
    registerNativeKernel(LOPT_GATHER_ROWS_KERNEL, (inputs, attrs, io) => {
      const x = inputs.x;
      if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`${LOPT_GATHER_ROWS_KERNEL}: x must be float32 or int32, got ${x.dtype}`);
      const out = io.alloc(attrs.shape as number[], x.dtype);
      const rowElems = x.shape.slice(1).reduce((a, b) => a * b, 1);
      addon.gatherRows(io.view(x), rowElems, attrs.indices as Int32Array, io.view(out));
      return out;
    });
  }
  return addon;
}
