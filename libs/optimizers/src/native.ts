/**
 * The optional native kernel (`native/mlp_lopt_step.c`, built by `npm run build:native`): one
 * MLPLOpt update for all stacked tasks and leaves in a single C call, registered as the tf.js
 * kernel `LoptMLPLOptStep` on the wasm and cpu backends. It reads and writes the backends' own
 * memory (wasm heap views, cpu arrays), so a step still reads nothing back to JavaScript.
 *
 * Where the addon is not built (no compiler, another platform) or `LOPT_NATIVE=off`, `nativeKernel()`
 * is null and MLPLOpt uses its tf.js path: same values up to float rounding.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
type Views = Float32Array | Int32Array;

interface NativeAddon {
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
  /** The instruction-set variants this CPU runs, the default first (e.g. ['avx512', 'avx2', 'base']). */
  kernelVariants(): string[];
}

export const LOPT_MLP_STEP_KERNEL = 'LoptMLPLOptStep';
/** Backends whose tensors the native kernel can address. */
export const NATIVE_BACKENDS = ['wasm', 'cpu'];

const ADDON_PATH = path.resolve(__dirname, '..', 'native', 'build', 'Release', 'lopt_native.node');

let addon: NativeAddon | null | undefined;
let loadError = '';
/** `LOPT_NATIVE_ISA` (checked when the addon loads): run this variant instead of the best one. */
let variant: string | undefined;

/** The addon, or null where it is not built or is turned off with `LOPT_NATIVE=off`. */
export function nativeKernel(): NativeAddon | null {
  if (addon !== undefined) return addon;
  const setting = (process.env.LOPT_NATIVE ?? 'auto').toLowerCase();
  if (!['auto', 'on', 'off', '0', '1'].includes(setting)) {
    throw new Error(`LOPT_NATIVE='${process.env.LOPT_NATIVE}': allowed values are auto, on, off`);
  }
  if (setting === 'off' || setting === '0') {
    loadError = 'turned off by LOPT_NATIVE=off';
    return (addon = null);
  }
  let loaded: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    loaded = require(ADDON_PATH) as NativeAddon;
  } catch (e) {
    loadError = `not built (${ADDON_PATH}: ${(e as Error).message.split('\n')[0]}); run npm run build:native`;
    if (setting === 'on' || setting === '1') throw new Error(`LOPT_NATIVE=on but the native kernel ${loadError}`);
    return (addon = null);
  }
  const wanted = process.env.LOPT_NATIVE_ISA;
  if (wanted) {
    const allowed = loaded.kernelVariants();
    if (!allowed.includes(wanted)) throw new Error(`LOPT_NATIVE_ISA='${wanted}': this CPU runs ${allowed.join(', ')}`);
    variant = wanted;
  }
  registerKernels();
  return (addon = loaded);
}

/** The variant in use ('avx512', 'avx2', 'base'), or null without the addon. */
export function nativeVariant(): string | null {
  const a = nativeKernel();
  return a ? variant ?? a.kernelVariants()[0] : null;
}

/** Run this instruction-set variant from now on (undefined: the best this CPU runs). For tests and benchmarks. */
export function useNativeVariant(name: string | undefined): void {
  const a = nativeKernel();
  if (!a) throw new Error(`useNativeVariant: the ${nativeStatus()}`);
  if (name !== undefined && !a.kernelVariants().includes(name)) throw new Error(`native variant '${name}': this CPU runs ${a.kernelVariants().join(', ')}`);
  variant = name;
}

/** One line for logs and the benchmark: whether the native kernel is in use, and why not. */
export function nativeStatus(): string {
  return nativeKernel() ? `native MLPLOpt kernel (${nativeVariant()})` : `native MLPLOpt kernel off: ${loadError}`;
}

/** Inputs: p0..p{L-1}, g*, m* (leaves), w0, b0, w1, b1, w2, b2 (θ), iteration (int32). */
interface StepAttrs {
  numLeaves: number;
  numTasks: number;
  perTask: boolean;
  expMult: number;
  stepMult: number;
  decays: number[];
  timeScales: number[];
}

const THETA_KEYS = ['w0', 'b0', 'w1', 'b1', 'w2', 'b2'];

function runStep(inputs: Record<string, TensorInfo>, attrs: StepAttrs, alloc: (like: TensorInfo) => TensorInfo, view: (t: TensorInfo) => Views): TensorInfo[] {
  const L = attrs.numLeaves;
  const leaves = (prefix: string) => Array.from({ length: L }, (_, i) => inputs[`${prefix}${i}`]);
  const [ps, gs, ms] = [leaves('p'), leaves('g'), leaves('m')];
  // Allocate every output first: on wasm an allocation may grow the heap and detach older views.
  const pOut = ps.map(alloc);
  const mOut = ms.map(alloc);
  const f32 = (t: TensorInfo) => view(t) as Float32Array;
  addon!.mlpLoptStep(
    attrs.numTasks,
    attrs.perTask,
    ps.map(f32),
    gs.map(f32),
    ms.map(f32),
    pOut.map(f32),
    mOut.map(f32),
    THETA_KEYS.map((k) => f32(inputs[k])),
    view(inputs.iteration) as Int32Array,
    Float32Array.from(attrs.decays),
    Float32Array.from(attrs.timeScales),
    attrs.expMult,
    attrs.stepMult,
    variant,
  );
  return [...pOut, ...mOut];
}

function registerKernels(): void {
  if (tf.getKernel(LOPT_MLP_STEP_KERNEL, 'wasm')) return;
  tf.registerKernel({
    kernelName: LOPT_MLP_STEP_KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as any;
      return runStep(inputs as any, attrs as unknown as StepAttrs, (t) => b.makeOutput(t.shape, 'float32'), (t) => b.typedArrayFromHeap(t));
    },
  });
  tf.registerKernel({
    kernelName: LOPT_MLP_STEP_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as any;
      return runStep(
        inputs as any,
        attrs as unknown as StepAttrs,
        (t) => b.makeTensorInfo(t.shape, 'float32', new Float32Array(t.shape.reduce((a: number, c: number) => a * c, 1))),
        (t) => b.data.get(t.dataId).values,
      );
    },
  });
}
