/**
 * The `MLPLOptUpdate` kernel: one MLPLOpt update of N stacked tasks (every leaf at once) as a
 * single tf.js kernel, registered the way tf.js registers kernels, one implementation per backend.
 *
 * | backend | implementation |
 * |---|---|
 * | wasm | the native C kernel (`native/mlp_lopt_step.c`) for the reference's MLP (19→32→32→2, six decays); any other inputs: the wasm tf.js variants (mlp_lopt_wasm.ts) |
 * | cpu  | the native C kernel, the same inputs |
 *
 * Where no implementation is registered or takes the inputs (other backends, the cpu backend
 * without the C kernel or with another MLP), and under a gradient tape, `mlpLoptUpdate`
 * (mlp_lopt.ts) runs `mlpLoptUpdateOps`, the readable tf.js-ops update that every
 * implementation is tested against.
 *
 * The one setting is `LOPT_NATIVE=auto|on|off` (@lopt/core's native.ts: `auto` uses the C kernel
 * where it is built, `on` makes a missing build an error, `off` never loads it); `LOPT_NATIVE_ISA`
 * picks an instruction-set variant of it. The kernels are registered when first asked for
 * (`mlpLoptKernelApplies`, `mlpLoptNative`), after the setting has been read.
 *
 * The inputs, attributes and outputs are in mlp_lopt_kernel.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, nativeAddonPath, nativeVariantArg, noGradientRecorded, registerNativeKernel, useNativeVariant, type NativeAddon } from '@lopt/core';
import { TIME_SCALES } from './common';
import { MLPLOPT_UPDATE, type MLPLOptUpdateAttrs, type MLPLOptUpdateImpl, type MLPLOptUpdateInputs } from './mlp_lopt_kernel';
import { mlpLoptUpdateWasmOps, MLPLOPT_WASM_VARIANTS, wasmVariantHandles } from './mlp_lopt_wasm';

export * from './mlp_lopt_kernel';

/**
 * The optimizers' native addon (`lopt_optimizers.node`): the fused MLPLOpt step for N stacked tasks and the
 * fused per-parameter MLP of the Adafactor-feature optimizers, on host arrays.
 */
export interface OptimizersAddon extends NativeAddon {
  mlpLoptStep(N: number, perTask: boolean, ...args: [...MLPLOptStepArrays, decays: Float32Array, timeScales: Float32Array, expMult: number, stepMult: number, variant?: string]): void;
  /**
   * The fused per-parameter MLP of one leaf of N stacked tasks (`native/per_param_mlp.c`; its
   * arguments are described there, per_param_native.ts builds them).
   */
  perParamMLP(
    N: number,
    S: number,
    sources: Float32Array[],
    widths: Int32Array,
    factors: Array<Float32Array | null>,
    factorWidth: number,
    walks: Int32Array,
    terms: Array<Float32Array | null>,
    ops: Int32Array,
    eps: Float32Array,
    sizes: Int32Array,
    w0: Float32Array,
    bias: Float32Array,
    layers: Float32Array[],
    outCols: Int32Array,
    outs: Float32Array[],
    stepP: Float32Array | null,
    stepScale: Float32Array | null,
    expMult: number,
    pOut: Float32Array | null,
    variant?: string,
  ): void;
  /**
   * HyperV2's per-tensor LSTM statistics of one leaf of N stacked tasks (`native/per_param_mlp.c`):
   * `out [N, kr + km + max(km, kr)]` = mean RMS, variance of the momenta, the RMS's spread about
   * the momenta's mean, all after the leaf's `rsqrt(mean p²)` normalisation.
   */
  tensorStats(N: number, S: number, p: Float32Array, m: Float32Array, km: number, rms: Float32Array, kr: number, out: Float32Array): void;
  /** Runs `iters` iterations of the FMA peak loop (fma_probe.h) in variant `variant` (an index). */
  fmaProbe(iters: number, variant?: number): { flops: number; width: number };
}

/** Where the built C kernels live (a worker thread that needs only the addon can `require` it directly). */
export const MLPLOPT_ADDON_PATH = nativeAddonPath(typeof __dirname === 'string' ? __dirname : undefined, 'lopt_optimizers.node');
const THETA_KEYS = ['w0', 'b0', 'w1', 'b1', 'w2', 'b2'];
/** The one MLP the C kernel is compiled for: 19 → 32 → 32 → 2 (the reference's default). */
const NATIVE_LAYERS = [
  [19, 32],
  [32, 32],
  [32, 2],
];

/** Whether the C kernel takes these inputs: the reference's default MLP and six decays. */
function nativeHandles(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): boolean {
  if (attrs.numLayers !== NATIVE_LAYERS.length || attrs.decays.length !== 6) return false;
  const lead = attrs.perTask ? 1 : 0;
  return NATIVE_LAYERS.every(([i, o], j) => {
    const w = inputs[`w${j}`].shape;
    return w.length === lead + 2 && w[lead] === i && w[lead + 1] === o;
  });
}

/** Which inputs the kernel registered for each backend takes. */
const registered = new Map<string, (inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs) => boolean>();
let addon: OptimizersAddon | null = null;
let registeredOnce = false;

/** Register the kernel's implementations (once per process; reads LOPT_NATIVE the first time). */
function registerMLPLOptKernels(): void {
  if (registeredOnce) return;
  addon = loadNativeAddon<OptimizersAddon>(MLPLOPT_ADDON_PATH, 'MLPLOpt');
  registeredOnce = true;
  const native = addon;
  if (native) {
    registerNativeKernel(MLPLOPT_UPDATE, (inputs, attrs, io) => {
      const a = attrs as MLPLOptUpdateAttrs;
      // On wasm, inputs the C kernel does not take go to the wasm tf.js variants (runKernel hands
      // the kernel the tensors it was given).
      if (!nativeHandles(inputs as unknown as MLPLOptUpdateInputs, a)) return mlpLoptUpdateWasmOps(inputs as unknown as MLPLOptUpdateInputs, a);
      const L = a.numLeaves;
      const leaves = (prefix: string) => Array.from({ length: L }, (_, i) => inputs[`${prefix}${i}`]);
      const [ps, gs, ms] = [leaves('p'), leaves('g'), leaves('m')];
      // allocate every output before taking views (an allocation may grow the wasm heap)
      const pOut = ps.map((t) => io.alloc(t.shape, 'float32'));
      const mOut = ms.map((t) => io.alloc(t.shape, 'float32'));
      const counters = [inputs.iteration, inputs.t];
      const countersOut = counters.map((c) => io.alloc(c.shape, 'int32'));
      const f32 = (t: (typeof ps)[number]) => io.view(t) as Float32Array;
      counters.forEach((c, i) => {
        const from = io.view(c) as Int32Array;
        const to = io.view(countersOut[i]) as Int32Array;
        for (let j = 0; j < from.length; j++) to[j] = from[j] + 1;
      });
      stepFor(native, inputs.iteration.shape[0], a)(ps.map(f32), gs.map(f32), ms.map(f32), pOut.map(f32), mOut.map(f32), THETA_KEYS.map((k) => f32(inputs[k])), io.view(inputs.iteration) as Int32Array);
      return [...pOut, ...mOut, ...countersOut];
    });
    registered.set('wasm', (inputs, attrs) => nativeHandles(inputs, attrs) || wasmVariantHandles(inputs, attrs));
    registered.set('cpu', nativeHandles);
  } else {
    tf.registerKernel({
      kernelName: MLPLOPT_UPDATE,
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs }) => mlpLoptUpdateWasmOps(inputs as unknown as MLPLOptUpdateInputs, attrs as unknown as MLPLOptUpdateAttrs) as any,
    });
    registered.set('wasm', wasmVariantHandles);
  }
}

/** One MLPLOpt update of N stacked tasks by the C kernel on host arrays (`mlpLoptHostStep`). */
export type MLPLOptHostStep = (...arrays: MLPLOptStepArrays) => void;

/** The arrays of one MLPLOpt step: leaves of p, g, m, their outputs, θ (w0, b0, w1, ...) and the pre-update iteration counters. */
export type MLPLOptStepArrays = [p: Float32Array[], g: Float32Array[], m: Float32Array[], pOut: Float32Array[], mOut: Float32Array[], theta: Float32Array[], iteration: Int32Array];

/**
 * The C kernel as a function on host arrays for these inputs (what the registered kernel calls,
 * without tf.js around it: for host unrolls), or null where it is not built, LOPT_NATIVE=off, the
 * backend's memory is not host memory or the kernel does not take the inputs. θ goes in the
 * order w0, b0, w1, b1, w2, b2; `iteration` is the pre-update counter.
 */
export function mlpLoptHostStep(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): MLPLOptHostStep | null {
  registerMLPLOptKernels();
  const native = addon;
  if (!native || !['wasm', 'cpu'].includes(tf.getBackend()) || !nativeHandles(inputs, attrs)) return null;
  return stepFor(native, inputs.iteration.shape[0], attrs);
}

/** The addon's step for N tasks and these attributes (the registered kernel and `mlpLoptHostStep` both call it). */
function stepFor(native: OptimizersAddon, N: number, attrs: MLPLOptUpdateAttrs): MLPLOptHostStep {
  const decays = Float32Array.from(attrs.decays);
  const scales = Float32Array.from(TIME_SCALES);
  const variant = nativeVariantArg();
  return (...arrays) => native.mlpLoptStep(N, attrs.perTask, ...arrays, decays, scales, attrs.expMult, attrs.stepMult, variant);
}

/** The native addon (the kernel registered), or null where it is not built or LOPT_NATIVE=off. */
export function mlpLoptNative(): OptimizersAddon | null {
  registerMLPLOptKernels();
  return addon;
}

/**
 * Whether `tf.engine().runKernel(MLPLOPT_UPDATE, inputs, attrs)` runs now: a kernel is registered
 * for the current backend, it takes these inputs, and no gradient tape is recording (the kernels
 * have no gradient; `mlpLoptUpdateOps` is differentiable).
 */
export function mlpLoptKernelApplies(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): boolean {
  registerMLPLOptKernels();
  const backend = tf.getBackend();
  const handles = registered.get(backend);
  // (the tf.getKernel check covers a tf.js shared with another copy of this module that registered first)
  return handles !== undefined && noGradientRecorded() && handles(inputs, attrs) && tf.getKernel(MLPLOPT_UPDATE, backend) !== undefined;
}

/**
 * Every implementation of the kernel this process has besides the readable `mlpLoptUpdateOps`:
 * each instruction-set variant of the C kernel (where it is built; on the wasm and cpu backends)
 * and each wasm tf.js variant (run directly, so on any backend). The comparison test runs them all.
 */
export function mlpLoptUpdateImpls(): MLPLOptUpdateImpl[] {
  registerMLPLOptKernels();
  const impls: MLPLOptUpdateImpl[] = [];
  for (const v of addon?.kernelVariants() ?? []) {
    impls.push({
      name: `native (${v})`,
      handles: (inputs, attrs) => ['wasm', 'cpu'].includes(tf.getBackend()) && nativeHandles(inputs, attrs),
      run: (inputs, attrs) => {
        const before = nativeVariantArg();
        useNativeVariant(v);
        try {
          return tf.engine().runKernel(MLPLOPT_UPDATE, inputs as any, attrs as any) as unknown as tf.Tensor[];
        } finally {
          useNativeVariant(before);
        }
      },
    });
  }
  return [...impls, ...MLPLOPT_WASM_VARIANTS];
}
