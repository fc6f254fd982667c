/**
 * Backend selection: `initBackend('auto' | 'tensorflow' | 'wasm' | 'cpu')`.
 *
 * 'auto' tries, in order, `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (both register the
 * 'tensorflow' backend; loaded with a dynamic `require` so they are never hard dependencies and a
 * missing native addon only means "not available"), then `@tensorflow/tfjs-backend-wasm` (SIMD),
 * then the pure-JS 'cpu' backend. The choice can also come from the `LOPT_BACKEND` environment
 * variable; an explicit argument wins.
 *
 * On wasm the BatchMatMul gradient is re-registered so it transposes explicitly and calls plain
 * matMuls: matMul with transposeA/transposeB falls off XNNPACK to a slow loop on wasm. Its Slice,
 * Unpack and SplitV kernels are replaced by ones that do not copy the whole input per output
 * (see wasm_kernels.ts). Its MaxPoolGrad and MaxPoolWithArgmax, wrong under SAME padding before
 * the map, are replaced by ones that follow the cpu backend (wasm_pool_kernels.ts). Where the core
 * native addon is built, its scalar libm loops (Tanh, Exp, Log, ...) are replaced by vectorised
 * ones (wasm_unary_kernels.ts) and its Sum / Mean over middle axes by ones without a transpose
 * (wasm_reduce_kernels.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { registerFastWasmSliceKernels } from './wasm_kernels';
import { registerFastWasmMatMul } from './wasm_matmul_kernel';
import { registerWasmConvKernels } from './wasm_conv_kernels';
import { registerAvgPoolGradKernels, registerWasmPoolKernels } from './wasm_pool_kernels';
import { registerWasmUnaryKernels } from './wasm_unary_kernels';
import { registerWasmReduceKernels } from './wasm_reduce_kernels';
import { envVar } from './native';

/** The values `--backend` / `LOPT_BACKEND` take; `auto` picks tfjs-node(-gpu) when installed, else wasm. */
export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
/** One of `BACKEND_NAMES`. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Options of `initBackend`. */
export interface InitBackendOptions {
  /** Do not print the one-line "backend: ..." message (also `LOPT_QUIET=1`). */
  quiet?: boolean;
}

/** A backend that was asked for cannot be used (not installed, or failed to initialise). */
export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** The requested name ('auto', ...) and tf.js backend name of the last successful initBackend. */
let current: { requested: BackendName; backend: string } | null = null;
let pending: { requested: BackendName; promise: Promise<string> } | null = null;

/** Dynamic require that bundlers and tsc leave alone; returns undefined when the module is absent or broken. */
function tryRequire(id: string): { module?: unknown; error?: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional backend packages, probed at run time
    return { module: require(id) };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

function log(msg: string, opts: InitBackendOptions): void {
  const quietEnv = envVar('LOPT_QUIET');
  if (opts.quiet || (quietEnv !== undefined && quietEnv !== '' && quietEnv !== '0')) return;
  const stderr = (globalThis as { process?: { stderr?: { write(s: string): unknown } } }).process?.stderr;
  if (stderr) stderr.write(`[lopt] backend: ${msg}\n`);
  // eslint-disable-next-line no-console -- a browser has no stderr: the line goes to its console
  else console.info(`[lopt] backend: ${msg}`);
}

function parseName(name: string | undefined): BackendName {
  const n = (name ?? '').trim().toLowerCase() || 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(n)) {
    throw new BackendError(`unknown backend '${name}'; allowed: ${BACKEND_NAMES.join(', ')}`);
  }
  return n as BackendName;
}

/** Loads tfjs-node-gpu or tfjs-node; returns which package worked, or the reasons both failed. */
function loadTensorflow(): { pkg?: string; reasons: string[] } {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    const r = tryRequire(pkg);
    if (r.module !== undefined && tf.findBackendFactory('tensorflow') !== null) return { pkg, reasons };
    reasons.push(`${pkg}: ${r.error ?? 'loaded but registered no tensorflow backend'}`);
  }
  return { reasons };
}

let wasmModule: any;
function loadWasm(): { ok: boolean; error?: string } {
  if (wasmModule) return { ok: true };
  const r = tryRequire('@tensorflow/tfjs-backend-wasm');
  if (r.module === undefined) {
    // A page that imported @tensorflow/tfjs-backend-wasm itself (a browser bundle, where nothing
    // can be required at run time) has registered its factory already.
    if (tf.findBackendFactory('wasm') !== null) {
      wasmModule = {};
      return { ok: true };
    }
    return { ok: false, error: r.error };
  }
  wasmModule = r.module;
  return { ok: true };
}

async function setWasm(): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
  } catch {
    ok = false;
  }
  if (!ok) {
    // Retry with the .wasm files located explicitly (needed when the package's own lookup fails,
    // e.g. under a bundler or a test runner that rewrites module paths).
    try {
      const pkgJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
      const sep = pkgJson.includes('/') ? '/' : '\\';
      const dist = pkgJson.slice(0, pkgJson.lastIndexOf(sep) + 1) + 'dist' + sep;
      wasmModule.setWasmPaths(dist);
      ok = await tf.setBackend('wasm');
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new BackendError('the wasm backend failed to initialise');
  await tf.ready();
  registerWasmMatMulGradient();
  registerFastWasmSliceKernels();
  registerFastWasmMatMul();
  registerWasmConvKernels();
  registerWasmPoolKernels();
  registerAvgPoolGradKernels('wasm');
  registerWasmUnaryKernels();
  registerWasmReduceKernels();
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul gradient without transposeA/transposeB

let stockBatchMatMulGrad: tf.GradConfig | undefined;
let matMulGradRegistered = false;

function swapLast2(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  if (r < 2) return x;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/** Gradient of `matMul(a, b, transposeA, transposeB)` built from explicit transposes and plain matMuls. */
export const explicitTransposeBatchMatMulGrad: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
    const g = dy as tf.Tensor;
    const [a, b] = saved;
    const transposeA = Boolean(attrs?.transposeA);
    const transposeB = Boolean(attrs?.transposeB);
    const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y);
    if (!transposeA && !transposeB) {
      return { a: () => mm(g, swapLast2(b)), b: () => mm(swapLast2(a), g) };
    } else if (!transposeA && transposeB) {
      return { a: () => mm(g, b), b: () => mm(swapLast2(g), a) };
    } else if (transposeA && !transposeB) {
      return { a: () => mm(b, swapLast2(g)), b: () => mm(a, g) };
    }
    return { a: () => mm(swapLast2(b), swapLast2(g)), b: () => mm(swapLast2(g), swapLast2(a)) };
  },
};

/**
 * Re-registers the BatchMatMul gradient (the registry is global): on the wasm backend it uses
 * `explicitTransposeBatchMatMulGrad`; on any other backend it delegates to tf.js's stock gradient.
 * Idempotent.
 */
export function registerWasmMatMulGradient(): void {
  if (matMulGradRegistered) return;
  stockBatchMatMulGrad = tf.getGradient('BatchMatMul');
  const stock = stockBatchMatMulGrad;
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm' && stock) return stock.gradFunc(dy, saved, attrs);
      return explicitTransposeBatchMatMulGrad.gradFunc(dy, saved, attrs);
    },
  });
  matMulGradRegistered = true;
}

// ---------------------------------------------------------------------------------------------

/** Selects the cpu backend and silences its one-time "install tfjs-node" console advice (our log line says why cpu). */
async function setCpu(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
  const b = tf.backend() as unknown as { firstUse?: boolean };
  if (b && typeof b.firstUse === 'boolean') b.firstUse = false;
  registerAvgPoolGradKernels('cpu');
}

async function doInit(requested: BackendName, opts: InitBackendOptions, source: string): Promise<string> {
  if (requested === 'cpu') {
    await setCpu();
    log(`cpu (${source})`, opts);
    return 'cpu';
  }
  if (requested === 'tensorflow') {
    const t = loadTensorflow();
    if (!t.pkg) {
      throw new BackendError(
        `backend 'tensorflow' was requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node ` +
          `could be loaded (${t.reasons.join('; ')}). Install one with ` +
          '`npm install @tensorflow/tfjs-node@4.22.0` (or `@tensorflow/tfjs-node-gpu@4.22.0` with CUDA 11.2 + ' +
          'cuDNN 8.1); its install script must be allowed to download libtensorflow. Or choose ' +
          `another backend: ${BACKEND_NAMES.join(', ')}.`,
      );
    }
    if (!(await tf.setBackend('tensorflow'))) throw new BackendError(`${t.pkg} loaded but the tensorflow backend failed to initialise`);
    log(`tensorflow via ${t.pkg} (${source})`, opts);
    return 'tensorflow';
  }
  if (requested === 'wasm') {
    const w = loadWasm();
    if (!w.ok) {
      throw new BackendError(
        `backend 'wasm' was requested but @tensorflow/tfjs-backend-wasm could not be loaded (${w.error}); ` +
          'install it with `npm install @tensorflow/tfjs-backend-wasm@4.22.0`',
      );
    }
    await setWasm();
    log(`wasm (${source}; simd=${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')})`, opts);
    return 'wasm';
  }
  // auto
  const t = loadTensorflow();
  if (t.pkg) {
    try {
      if (await tf.setBackend('tensorflow')) {
        log(`tensorflow via ${t.pkg} (${source}: native TensorFlow found)`, opts);
        return 'tensorflow';
      }
    } catch (e) {
      t.reasons.push(`${t.pkg}: ${(e as Error).message}`);
    }
  }
  const w = loadWasm();
  let wasmWhy = w.error;
  if (w.ok) {
    try {
      await setWasm();
      log(`wasm (${source}: no usable @tensorflow/tfjs-node[-gpu]; simd=${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')})`, opts);
      return 'wasm';
    } catch (e) {
      wasmWhy = (e as Error).message;
    }
  }
  await setCpu();
  log(`cpu (${source}: no usable @tensorflow/tfjs-node[-gpu]; wasm unavailable: ${wasmWhy})`, opts);
  return 'cpu';
}

/**
 * Selects and initialises the tf.js backend. `name` wins over `LOPT_BACKEND`, which wins over
 * 'auto'. Resolves to the tf.js backend name in use ('tensorflow', 'wasm' or 'cpu'). Calling it
 * again with the same request is cheap (no re-initialisation, no second log line).
 */
export async function initBackend(name?: BackendName | string, opts: InitBackendOptions = {}): Promise<string> {
  const fromArg = name !== undefined && name !== '';
  const envName = envVar('LOPT_BACKEND');
  const requested = parseName(fromArg ? name : envName);
  const source = fromArg ? 'requested' : envName ? 'LOPT_BACKEND' : 'default auto';
  if (current && current.requested === requested && tf.getBackend() === current.backend) return current.backend;
  if (pending && pending.requested === requested) return pending.promise;
  const promise = doInit(requested, opts, source);
  pending = { requested, promise };
  try {
    const backend = await promise;
    current = { requested, backend };
    return backend;
  } finally {
    if (pending?.promise === promise) pending = null;
  }
}

/** The tf.js backend in use now (after initBackend, or tf.js's own default if never called). */
export function currentBackend(): string {
  return tf.getBackend();
}
