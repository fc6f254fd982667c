/**
 * Optional native kernels (C, N-API): loading, settings and their registration as tf.js kernels.
 *
 * Libraries keep their kernels in `libs/<lib>/native` (built by `npm run build:native`, which
 * runs node-gyp; shared C helpers in `libs/core/native`). Each addon is registered here as tf.js
 * kernels for the wasm and cpu backends, which hand the C code views of the backend's own memory
 * (the wasm heap, the cpu backend's arrays): nothing is copied, and a training step still reads
 * nothing back to JavaScript.
 *
 * Settings (read when an addon is first asked for):
 * - `LOPT_NATIVE=auto` (default: use an addon where it is built), `on` (an addon that is not built
 *   is an error), `off` (always the tf.js kernels).
 * - `LOPT_NATIVE_ISA=avx512|avx2|base`: run that instruction-set variant instead of the best one.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };

/** A typed array over float32 or int32 tensor memory, as native and host functions read and write it. */
export type HostArray = Float32Array | Int32Array;

/** What every lopt addon exports besides its kernels. */
export interface NativeAddon {
  /** The instruction-set variants this CPU runs, the default first (e.g. ['avx512', 'avx2', 'base']). */
  kernelVariants(): string[];
}

/** Backends whose tensors a native kernel can address. */
export const NATIVE_BACKENDS = ['wasm', 'cpu'];

const SETTINGS = ['auto', 'on', 'off'];
const loaded = new Map<string, { label: string; addon: NativeAddon | null; why: string }>();
let variant: string | undefined;
let variantChecked = false;

/** How to build the kernels, said once in `nativeStatus()` when any is not built. */
const BUILD_HINT = "build them with 'npx lopt build-native' ('npm run build:native' in the lopt-ts repository; same values, faster)";

/**
 * An environment variable where the host has them (Node), else undefined (a browser has no
 * `process`; the libraries then run with every setting at its default).
 */
export function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}

/**
 * The path of a built addon: `<moduleDir>/../native/build/Release/<file>` (what each lib's
 * native.ts loads), written without Node's `path` so the module also bundles for a browser.
 * `moduleDir` is the caller's `__dirname`; where there is none (a browser bundle) the result is ''
 * and `loadNativeAddon` reports the addon as not built.
 */
export function nativeAddonPath(moduleDir: string | undefined, file: string): string {
  if (typeof moduleDir !== 'string' || moduleDir === '') return '';
  const sep = moduleDir.includes('\\') && !moduleDir.includes('/') ? '\\' : '/';
  const trimmed = moduleDir.replace(/[\\/]+$/, '');
  const cut = Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\'));
  const parent = cut > 0 ? trimmed.slice(0, cut) : cut === 0 ? trimmed.slice(0, 1) : '.';
  return [parent.replace(/[\\/]+$/, ''), 'native', 'build', 'Release', file].join(sep);
}

/** `LOPT_NATIVE`, checked: 'auto' | 'on' | 'off'. */
export function nativeSetting(): 'auto' | 'on' | 'off' {
  const raw = (envVar('LOPT_NATIVE') ?? 'auto').toLowerCase();
  const s = raw === '1' ? 'on' : raw === '0' ? 'off' : raw;
  if (!SETTINGS.includes(s)) throw new Error(`LOPT_NATIVE='${envVar('LOPT_NATIVE')}': allowed values are ${SETTINGS.join(', ')}`);
  return s as 'auto' | 'on' | 'off';
}

/**
 * The addon at `file` (an absolute path to a `.node` file), or null where it is not built or
 * `LOPT_NATIVE=off`. Loaded once per process (per worker thread); `label` names it in `nativeStatus()`.
 */
export function loadNativeAddon<T extends NativeAddon>(file: string, label: string): T | null {
  // With no path (a browser bundle) the label keeps the libraries' entries apart.
  const id = file === '' ? `<${label}>` : file;
  const known = loaded.get(id);
  if (known) return known.addon as T | null;
  const setting = nativeSetting();
  let addon: T | null = null;
  let why = '';
  if (setting === 'off') why = 'turned off by LOPT_NATIVE=off';
  else if (file === '' || typeof require !== 'function') why = 'not available here (no Node addons in this environment)';
  else {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a .node addon, loaded from a path at run time if built
      addon = require(file) as T;
    } catch (e) {
      why = `not built (${file}: ${(e as Error).message.split('\n')[0]})`;
      if (setting === 'on') throw new Error(`LOPT_NATIVE=on but the ${label} native kernel is ${why}; ${BUILD_HINT}`);
    }
  }
  if (addon && !variantChecked) {
    const wanted = envVar('LOPT_NATIVE_ISA');
    if (wanted && !addon.kernelVariants().includes(wanted)) {
      throw new Error(`LOPT_NATIVE_ISA='${wanted}': this CPU runs ${addon.kernelVariants().join(', ')}`);
    }
    variant = wanted || undefined;
    variantChecked = true;
  }
  loaded.set(id, { label, addon, why });
  return addon;
}

/** Any addon loaded so far (they all run the same variants), or null. */
function anyLoaded(): NativeAddon | null {
  return [...loaded.values()].find((l) => l.addon)?.addon ?? null;
}

/** The instruction-set variant the kernels run ('avx512', 'avx2', 'base'), or null with no addon loaded. */
export function nativeVariant(): string | null {
  const addon = anyLoaded();
  return addon ? variant ?? addon.kernelVariants()[0] : null;
}

/** Pass as the kernels' optional last argument: undefined runs the best variant. */
export function nativeVariantArg(): string | undefined {
  return variant;
}

/** Run this variant from now on (undefined: the best this CPU runs); for tests and benchmarks. */
export function useNativeVariant(name: string | undefined): void {
  const addon = anyLoaded();
  if (!addon) throw new Error(`useNativeVariant: no native kernel is loaded (${nativeStatus()})`);
  const allowed = addon.kernelVariants();
  if (name !== undefined && !allowed.includes(name)) throw new Error(`native variant '${name}': this CPU runs ${allowed.join(', ')}`);
  variant = name;
}

/** One line for logs and the benchmark: the addons asked for so far, and why any is not in use. */
export function nativeStatus(): string {
  if (loaded.size === 0) return 'native kernels: none requested yet';
  const parts = [...loaded.values()].map((l) => (l.addon ? `${l.label} (${nativeVariant()})` : `${l.label} off: ${l.why}`));
  const unbuilt = [...loaded.values()].some((l) => !l.addon && l.why.startsWith('not built'));
  return `native kernels: ${parts.join('; ')}${unbuilt ? `; ${BUILD_HINT}` : ''}`;
}

/** Allocation and memory views on one backend, as a native kernel's `run` sees them. */
export interface NativeIO {
  /** A new output tensor of this shape on the kernel's backend. Allocate every output before `view`. */
  alloc(shape: number[], dtype: 'float32' | 'int32'): TensorInfo;
  /** The tensor's memory as a typed array (a view, not a copy). */
  view(t: TensorInfo): Float32Array | Int32Array;
}

/**
 * A native kernel's body: reads its inputs, allocates its outputs through `io`, returns them (one
 * output, which `runKernel` returns as a tensor, or a list, which it returns as a list).
 */
export type NativeKernelRun = (inputs: Record<string, TensorInfo>, attrs: Record<string, any>, io: NativeIO) => TensorInfo | TensorInfo[];

/** Register `run` as the tf.js kernel `kernelName` on every backend of NATIVE_BACKENDS (once). */
export function registerNativeKernel(kernelName: string, run: NativeKernelRun): void {
  if (tf.getKernel(kernelName, 'wasm')) return;
  const size = (shape: number[]) => shape.reduce((a, c) => a * c, 1);
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as any;
      // On wasm an allocation may grow the heap and detach older views: `run` allocates first.
      return run(inputs as any, attrs as any, { alloc: (shape, dtype) => b.makeOutput(shape, dtype), view: (t) => b.typedArrayFromHeap(t) });
    },
  });
  tf.registerKernel({
    kernelName,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as any;
      return run(inputs as any, attrs as any, {
        alloc: (shape, dtype) => b.makeTensorInfo(shape, dtype, dtype === 'int32' ? new Int32Array(size(shape)) : new Float32Array(size(shape))),
        view: (t) => b.data.get(t.dataId).values,
      });
    },
  });
}

const BODY_KERNEL = 'LoptNativeBody';
/** What `runNativeBody` runs: views of its inputs through `io`, and its outputs (allocated through `io`). */
export type NativeBody = (inputs: TensorInfo[], io: NativeIO) => TensorInfo[];

/**
 * Runs `body` as one tf.js kernel on the current backend (wasm or cpu; see `nativeUsable`): it
 * reads `inputs` through `io.view` and allocates its outputs through `io.alloc` (all of them before
 * any view, as a registered native kernel does), and its outputs come back as tensors. For work
 * that is a loop of native calls on the same memory (a host unroll: many inner steps in one
 * kernel), so that nothing goes through tf.js between the calls. Scratch memory inside `body` is
 * plain typed arrays, which the addons take as well.
 */
export function runNativeBody(inputs: tf.Tensor[], body: NativeBody): tf.Tensor[] {
  registerNativeKernel(BODY_KERNEL, (named, attrs, io) => {
    const list = Array.from({ length: attrs.count as number }, (_, i) => named[`t${i}`]);
    return (attrs.body as NativeBody)(list, io);
  });
  const named: Record<string, tf.Tensor> = {};
  inputs.forEach((t, i) => (named[`t${i}`] = t));
  const out = tf.engine().runKernel(BODY_KERNEL, named as any, { count: inputs.length, body } as any);
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}

/** Whether no gradient tape is recording (a native kernel has no gradient: callers use tf.js ops then). */
export function noGradientRecorded(): boolean {
  return (tf.engine() as any).state?.gradientDepth === 0;
}

/** Whether a native kernel may run now: a supported backend and no gradient tape. */
export function nativeUsable(): boolean {
  return NATIVE_BACKENDS.includes(tf.getBackend()) && noGradientRecorded();
}
