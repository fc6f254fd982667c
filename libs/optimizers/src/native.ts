/**
 * The MLPLOpt native kernel (`native/mlp_lopt_step.c`): one update for all stacked tasks and
 * leaves in a single C call, registered as the tf.js kernel `LoptMLPLOptStep` (wasm and cpu; see
 * @lopt/core's native.ts for loading, settings and memory views). Where the addon is not built
 * or `LOPT_NATIVE=off`, `mlpLoptNative()` is null and MLPLOpt uses its tf.js path: same values
 * up to float rounding.
 */
import * as path from 'path';
import { loadNativeAddon, nativeVariantArg, registerNativeKernel, type NativeAddon } from '@lopt/core';

export interface OptimizersAddon extends NativeAddon {
  mlpLoptStep(
    N: number,
    perTask: boolean,
    p: Float32Array[],
    g: Float32Array[],
    m: Float32Array[],
    pOut: Float32Array[],
    mOut: Float32Array[],
    theta: Float32Array[],
    iteration: Int32Array,
    decays: Float32Array,
    timeScales: Float32Array,
    expMult: number,
    stepMult: number,
    variant?: string,
  ): void;
}

export const LOPT_MLP_STEP_KERNEL = 'LoptMLPLOptStep';
const ADDON_PATH = path.resolve(__dirname, '..', 'native', 'build', 'Release', 'lopt_optimizers.node');
const THETA_KEYS = ['w0', 'b0', 'w1', 'b1', 'w2', 'b2'];

/** The addon (its kernel registered), or null. */
export function mlpLoptNative(): OptimizersAddon | null {
  const addon = loadNativeAddon<OptimizersAddon>(ADDON_PATH, 'MLPLOpt');
  if (addon) {
    // Inputs: p0..p{L-1}, g*, m* (leaves), w0, b0, w1, b1, w2, b2 (θ), iteration (int32).
    registerNativeKernel(LOPT_MLP_STEP_KERNEL, (inputs, attrs, io) => {
      const L = attrs.numLeaves as number;
      const leaves = (prefix: string) => Array.from({ length: L }, (_, i) => inputs[`${prefix}${i}`]);
      const [ps, gs, ms] = [leaves('p'), leaves('g'), leaves('m')];
      const pOut = ps.map((t) => io.alloc(t.shape, 'float32'));
      const mOut = ms.map((t) => io.alloc(t.shape, 'float32'));
      const f32 = (t: (typeof ps)[number]) => io.view(t) as Float32Array;
      addon.mlpLoptStep(
        attrs.numTasks,
        attrs.perTask,
        ps.map(f32),
        gs.map(f32),
        ms.map(f32),
        pOut.map(f32),
        mOut.map(f32),
        THETA_KEYS.map((k) => f32(inputs[k])),
        io.view(inputs.iteration) as Int32Array,
        Float32Array.from(attrs.decays),
        Float32Array.from(attrs.timeScales),
        attrs.expMult,
        attrs.stepMult,
        nativeVariantArg(),
      );
      return [...pOut, ...mOut];
    });
  }
  return addon;
}
