/**
 * Host kernels of the ResNet (resnet.ts) on the wasm and cpu backends: loops over the tensors' own
 * memory (views straight into the wasm heap, or the cpu backend's arrays), one kernel where the
 * plain tf.js ops run many small ones. A ResNet inner step runs hundreds of kernels on maps of a
 * few thousand values, where the engine's work per kernel (tape node, saved-tensor clones,
 * bookkeeping) weighs as much as the arithmetic, so each of these replaces 10–25 kernels and their
 * tape nodes with one.
 *
 * - `LoptMaxPool3x3Stride2SameGrad`: the input gradient of the 3x3 stride-2 SAME max pool.
 * - `LoptBatchNormTrain` / `LoptBatchNormTrainGrad`: `hk.BatchNorm` in training mode (batch
 *   statistics over [B, H, W]), optionally followed by a relu, and its gradient.
 * - `LoptEmaUpdate`: every moving average of the batch norms of N stacked tasks updated at once
 *   (off the gradient tape), the same float32 arithmetic as the ops, so the same values.
 *
 * The batch-norm and max-pool bodies run in C (`native/resnet.c`, the addon `lopt_resnet.node`, the
 * same float64 arithmetic) where it is built and `LOPT_NATIVE` is not off; else in JavaScript.
 *
 * Each sits beside the plain-ops version in resnet.ts, the reference its tests compare it with
 * (`__tests__/resnet_custom_grad.test.ts`, `__tests__/resnet_kernels.test.ts`). The kernels are
 * first-order only: they have no gradient of their own, so resnet.ts runs the plain ops whenever a
 * forward pass is recorded for a gradient of a gradient ({@link underNestedGradientTape}).
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, nativeAddonPath, nativeVariantArg, registerNativeKernel, type NativeAddon } from '@lopt/core';

/** The body of a host kernel: float32 inputs and (unzeroed) outputs as flat arrays, the inputs' shapes. */
type HostKernelBody = (inputs: Float32Array[], shapes: number[][], outputs: Float32Array[], attrs: Record<string, unknown>) => void;

/**
 * Registers `kernelName` on the wasm and cpu backends (idempotent; @lopt/core's
 * `registerNativeKernel` gives the memory views): the inputs named by `inputNames` (a list, or a
 * function of the attributes), in order; outputs of `outShapes(input shapes, attributes)`, all
 * float32; `body` fills every output element.
 */
function registerHostKernel(
  kernelName: string,
  inputNames: string[] | ((attrs: Record<string, unknown>) => string[]),
  outShapes: (shapes: number[][], attrs: Record<string, unknown>) => number[][],
  body: HostKernelBody,
): void {
  registerNativeKernel(kernelName, (inputs, attrs, io) => {
    const a = attrs ?? {};
    const ins = (typeof inputNames === 'function' ? inputNames(a) : inputNames).map((n) => inputs[n]);
    const shapes = ins.map((t) => t.shape);
    const outs = outShapes(shapes, a).map((s) => io.alloc(s, 'float32'));
    // views after every allocation, which may grow the wasm heap and detach earlier ones
    body(
      ins.map((t) => io.view(t) as Float32Array),
      shapes,
      outs.map((t) => io.view(t) as Float32Array),
      a,
    );
    return outs.length === 1 ? outs[0] : outs;
  });
}

/** The ResNet's native addon (`native/resnet.c`): the C versions of the bodies below, on host arrays. */
export interface ResnetAddon extends NativeAddon {
  /** Batch norm forward: x [M, C] → y [M, C] (relu'd when `relu`), mean, variance, r [C]. */
  resnetBatchNorm(C: number, relu: boolean, x: Float32Array, scale: Float32Array, offset: Float32Array, y: Float32Array, mean: Float32Array, variance: Float32Array, r: Float32Array): void;
  /** Batch norm backward: dx [M, C], d scale and d offset [C]. */
  resnetBatchNormGrad(
    C: number,
    relu: boolean,
    dy: Float32Array,
    x: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    r: Float32Array,
    scale: Float32Array,
    dx: Float32Array,
    dScale: Float32Array,
    dOffset: Float32Array,
  ): void;
  /** The input gradient of the 3x3 stride-2 SAME max pool of x [b, h, w, c]. */
  resnetMaxPoolGrad(b: number, h: number, w: number, c: number, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void;
}

// '' in a browser bundle (no __dirname): the addon is then reported as not built.
const ADDON_PATH = nativeAddonPath(typeof __dirname === 'string' ? __dirname : undefined, 'lopt_resnet.node');

/** The ResNet's native addon, or null (not built, or `LOPT_NATIVE=off`). */
export function resnetNative(): ResnetAddon | null {
  return loadNativeAddon<ResnetAddon>(ADDON_PATH, 'ResNet');
}

let jsOnly = false;

/** Run the JavaScript bodies even where the native addon is loaded (`true`), or not; for tests and benchmarks. */
export function useResnetJsKernels(on: boolean): void {
  jsOnly = on;
}

/** The native addon the bodies call, or null (JavaScript). */
function native(): ResnetAddon | null {
  return jsOnly ? null : resnetNative();
}

/** Whether `kernelName` runs on the active backend (wasm and cpu: the kernels of this file). */
export function hasHostKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/**
 * True while the ops being run are recorded for a gradient of a gradient: a forward pass inside
 * two or more nested `tf.grad`s (a Hessian-vector product, a TruncatedGrad / FullGrad
 * meta-gradient through an inner step). tf.js counts the open gradient tapes in
 * `engine.state.gradientDepth`; the backward pass of a first-order gradient runs at depth 0.
 */
export function underNestedGradientTape(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 1;
}

// ---- max pool 3x3 / 2 SAME -------------------------------------------------------------------

/** SAME padding of a 3-wide stride-2 window along an axis of length n: the output length and the padding before. */
export function same3x2(n: number): { o: number; before: number } {
  const o = Math.ceil(n / 2);
  return { o, before: Math.floor(Math.max((o - 1) * 2 + 3 - n, 0) / 2) };
}

/** The input gradient of `maxPool3x3Stride2SameOps` (inputs x, y = the pool's output, dy; output dx). */
export const MAX_POOL_GRAD_KERNEL = 'LoptMaxPool3x3Stride2SameGrad';

/**
 * `dx [b, h, w, c]` of the 3x3 stride-2 SAME max pool: each window's `dy` goes to the element
 * autodiff of `max(max(a, b), c)` per axis picks (tf.js's Maximum gradient goes to a on a tie): the
 * window's first column holding the maximum `y`, and in it the first row. A window whose maximum
 * is NaN passes none (as Maximum's gradient at NaN). Per window and channel the candidates are
 * tried in that order until one equals `y`.
 */
function maxPoolGradBody([xs, ys, ds]: Float32Array[], [shape]: number[][], [dx]: Float32Array[]): void {
  const [b, h, w, c] = shape;
  const nat = native();
  if (nat) return nat.resnetMaxPoolGrad(b, h, w, c, xs, ys, ds, dx);
  const H = same3x2(h);
  const W = same3x2(w);
  dx.fill(0);
  const cand = new Int32Array(9);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < H.o; i++) {
      const r0 = Math.max(2 * i - H.before, 0);
      const r1 = Math.min(2 * i - H.before + 2, h - 1);
      for (let j = 0; j < W.o; j++) {
        const c0 = Math.max(2 * j - W.before, 0);
        const c1 = Math.min(2 * j - W.before + 2, w - 1);
        // the window's elements (channel 0) in priority order: column, then row
        let nc = 0;
        for (let cc = c0; cc <= c1; cc++) for (let r = r0; r <= r1; r++) cand[nc++] = ((bi * h + r) * w + cc) * c;
        const k = ((bi * H.o + i) * W.o + j) * c;
        for (let ch = 0; ch < c; ch++) {
          const y = ys[k + ch];
          for (let t = 0; t < nc; t++) {
            const at = cand[t] + ch;
            if (xs[at] === y) {
              dx[at] += ds[k + ch];
              break;
            }
          }
        }
      }
    }
  }
}
registerHostKernel(MAX_POOL_GRAD_KERNEL, ['x', 'y', 'dy'], (s) => [s[0]], maxPoolGradBody);

// ---- training-mode batch norm ------------------------------------------------------------------

/** `hk.BatchNorm`'s eps. */
export const BN_EPS = 1e-5;

/**
 * Batch norm in training mode (inputs x `[B, H, W, C]`, scale and offset `[1, 1, 1, C]`; attr
 * `relu`): outputs y (relu'd when `relu`), the batch mean and variance `[1, 1, 1, C]`, and r =
 * rsqrt(variance + eps) `[1, 1, 1, C]` for the gradient.
 */
export const BATCH_NORM_KERNEL = 'LoptBatchNormTrain';
/**
 * The gradient of {@link BATCH_NORM_KERNEL} (inputs dy, x, y, mean, r, scale; attr `relu`):
 * outputs dx `[B, H, W, C]`, d scale and d offset `[1, 1, 1, C]`.
 */
export const BATCH_NORM_GRAD_KERNEL = 'LoptBatchNormTrainGrad';

/**
 * The statistics as resnet.ts's `batchNormTrainOps` defines them (mean E[x], variance E[x²] −
 * E[x]², as haiku), accumulated in float64 and rounded once to float32; then y = (x − mean) ·
 * (r · scale) + offset per element, r = rsqrt(variance + eps).
 */
function batchNormBody([x, scale, offset]: Float32Array[], [shape]: number[][], [y, mean, variance, rOut]: Float32Array[], attrs: Record<string, unknown>): void {
  const c = shape[3];
  const nat = native();
  if (nat) return nat.resnetBatchNorm(c, attrs.relu === true, x, scale, offset, y, mean, variance, rOut);
  const m = x.length / c;
  const s1 = new Float64Array(c);
  const s2 = new Float64Array(c);
  for (let p = 0; p < x.length; p += c) {
    for (let ch = 0; ch < c; ch++) {
      const v = x[p + ch];
      s1[ch] += v;
      s2[ch] += v * v;
    }
  }
  const mu = new Float32Array(c);
  const inv = new Float64Array(c);
  const eps = Math.fround(BN_EPS);
  for (let ch = 0; ch < c; ch++) {
    mu[ch] = s1[ch] / m;
    const mean64 = s1[ch] / m;
    mean[ch] = mu[ch];
    variance[ch] = s2[ch] / m - mean64 * mean64;
    rOut[ch] = 1 / Math.sqrt(Math.fround(variance[ch] + eps));
    inv[ch] = rOut[ch] * scale[ch];
  }
  const relu = attrs.relu === true;
  for (let p = 0; p < x.length; p += c) {
    for (let ch = 0; ch < c; ch++) {
      const v = (x[p + ch] - mu[ch]) * inv[ch] + offset[ch];
      y[p + ch] = relu && v < 0 ? 0 : v; // tf.relu's: NaN stays NaN
    }
  }
}
registerHostKernel(BATCH_NORM_KERNEL, ['x', 'scale', 'offset'], ([s]) => [s, [1, 1, 1, s[3]], [1, 1, 1, s[3]], [1, 1, 1, s[3]]], batchNormBody);

/**
 * With g = dy (times [y > 0] when `relu`), x̂ = (x − mean) · r over the M = B·H·W positions:
 * d offset = Σ g, d scale = Σ g·x̂, dx = scale · r · (g − Σg/M − x̂ · Σ(g·x̂)/M); sums in float64.
 */
function batchNormGradBody([dy, x, y, mean, r, scale]: Float32Array[], [shape]: number[][], [dx, dScale, dOffset]: Float32Array[], attrs: Record<string, unknown>): void {
  const c = shape[3];
  const nat = native();
  if (nat) return nat.resnetBatchNormGrad(c, attrs.relu === true, dy, x, y, mean, r, scale, dx, dScale, dOffset);
  const m = x.length / c;
  const relu = attrs.relu === true;
  const sg = new Float64Array(c);
  const sgx = new Float64Array(c);
  for (let p = 0; p < x.length; p += c) {
    for (let ch = 0; ch < c; ch++) {
      if (relu && !(y[p + ch] > 0)) continue;
      const g = dy[p + ch];
      sg[ch] += g;
      sgx[ch] += g * (x[p + ch] - mean[ch]);
    }
  }
  const a = new Float64Array(c); // scale · r
  const meanG = new Float64Array(c);
  const k = new Float64Array(c); // r · Σ(g·x̂)/M, the coefficient of x − mean
  for (let ch = 0; ch < c; ch++) {
    const sgxh = sgx[ch] * r[ch];
    dOffset[ch] = sg[ch];
    dScale[ch] = sgxh;
    a[ch] = scale[ch] * r[ch];
    meanG[ch] = sg[ch] / m;
    k[ch] = (r[ch] * sgxh) / m;
  }
  for (let p = 0; p < x.length; p += c) {
    for (let ch = 0; ch < c; ch++) {
      const g = relu && !(y[p + ch] > 0) ? 0 : dy[p + ch];
      dx[p + ch] = a[ch] * (g - meanG[ch] - (x[p + ch] - mean[ch]) * k[ch]);
    }
  }
}
registerHostKernel(BATCH_NORM_GRAD_KERNEL, ['dy', 'x', 'y', 'mean', 'r', 'scale'], ([, s]) => [s, [1, 1, 1, s[3]], [1, 1, 1, s[3]]], batchNormGradBody);

if (!tf.getGradient(BATCH_NORM_KERNEL)) {
  tf.registerGradient({
    kernelName: BATCH_NORM_KERNEL,
    inputsToSave: ['x', 'scale'],
    // y, mean, r (not the variance)
    outputsToSave: [true, true, false, true],
    gradFunc: (dys, saved, attrs) => {
      // only y's gradient: the batch statistics carry none (the loss never reads the averages)
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, scale, y, mean, r] = saved;
      const [dx, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, { dy, x, y, mean, r, scale }, attrs as any) as unknown as tf.Tensor[];
      return { x: () => dx, scale: () => dScale, offset: () => dOffset };
    },
  });
}

/**
 * {@link BATCH_NORM_KERNEL} on float32 `x [B, H, W, C]`, scale and offset `[1, 1, 1, C]`: y (relu'd
 * when `relu`), with the kernel's gradient for x, scale and offset; the batch mean and variance
 * `[1, 1, 1, C]` carry no gradient. Wasm and cpu only ({@link hasHostKernel}).
 */
export function batchNormTrainKernel(x: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor, relu: boolean): { y: tf.Tensor4D; mean: tf.Tensor; variance: tf.Tensor } {
  const [y, mean, variance, r] = tf.engine().runKernel(BATCH_NORM_KERNEL, { x, scale, offset }, { relu } as any) as unknown as tf.Tensor[];
  r.dispose();
  return { y: y as tf.Tensor4D, mean, variance };
}

// ---- moving averages ---------------------------------------------------------------------------

/**
 * K moving averages updated at once (attrs `k`, `decay`, `fromZero`): inputs `v0 … v{k−1}` (the new
 * values), `h0 … h{k−1}` (the previous hidden values, same shapes; none when `fromZero`: zeros) and
 * `debias [k, n]` (1 − decay^counter of each average and task, the leading axis of every value
 * being the n tasks); outputs `hidden0 … hidden{k−1}`, then `average0 … average{k−1}`.
 */
export const EMA_KERNEL = 'LoptEmaUpdate';

/**
 * hidden = h·decay + v·(1 − decay), average = hidden / debias: each operation in float32 as the
 * ops do it (a float64 product, sum or quotient of float32 values rounded once is the correctly
 * rounded float32 result), so bit for bit the values of resnet.ts's ops path.
 */
function emaBody(inputs: Float32Array[], shapes: number[][], outputs: Float32Array[], attrs: Record<string, unknown>): void {
  const k = attrs.k as number;
  const decay = Math.fround(attrs.decay as number);
  const oneMinusDecay = Math.fround(1 - decay);
  const fromZero = attrs.fromZero === true;
  const debias = inputs[fromZero ? k : 2 * k];
  const n = shapes[0][0];
  for (let i = 0; i < k; i++) {
    const v = inputs[i];
    const h = fromZero ? null : inputs[k + i];
    const hidden = outputs[i];
    const average = outputs[k + i];
    const per = v.length / n;
    for (let t = 0; t < n; t++) {
      const d = debias[i * n + t];
      for (let j = t * per; j < (t + 1) * per; j++) {
        const hv = Math.fround(Math.fround(h ? h[j] * decay : 0) + Math.fround(v[j] * oneMinusDecay));
        hidden[j] = hv;
        average[j] = hv / d;
      }
    }
  }
}
registerHostKernel(
  EMA_KERNEL,
  (attrs) => {
    const k = attrs.k as number;
    const names = Array.from({ length: k }, (_, i) => `v${i}`);
    if (attrs.fromZero !== true) names.push(...Array.from({ length: k }, (_, i) => `h${i}`));
    return [...names, 'debias'];
  },
  (shapes, attrs) => {
    const k = attrs.k as number;
    return [...shapes.slice(0, k), ...shapes.slice(0, k)];
  },
  emaBody,
);

/**
 * {@link EMA_KERNEL} on float32 values `[n, ...]` and previous hidden values (null: all zero),
 * with `debias [k, n]`: the new hidden values and averages, in the order of `values`.
 */
export function emaUpdateKernel(values: tf.Tensor[], hidden: tf.Tensor[] | null, debias: tf.Tensor, decay: number): { hidden: tf.Tensor[]; average: tf.Tensor[] } {
  const k = values.length;
  const inputs: Record<string, tf.Tensor> = { debias };
  values.forEach((v, i) => (inputs[`v${i}`] = v));
  hidden?.forEach((h, i) => (inputs[`h${i}`] = h));
  const outs = tf.engine().runKernel(EMA_KERNEL, inputs, { k, decay, fromZero: hidden === null } as any) as unknown as tf.Tensor | tf.Tensor[];
  const all = Array.isArray(outs) ? outs : [outs];
  return { hidden: all.slice(0, k), average: all.slice(k) };
}

// ---- the whole network in one kernel -------------------------------------------------------------

/**
 * The whole ResNet of N stacked tasks in one native call (`native/resnet_net.h`): inputs `x [N, B,
 * H, W, C]` (float32), `label [N, B]` (int32), the parameters `p0 … p{k−1}` (`[N, ...]`, in the
 * plan's order) and, unless attr `fromZero`, the previous moving averages `c0 …` (int32 counters
 * `[N]`) and `h0 …` (hidden values `[N, 1, 1, 1, C]`), two per batch norm (its mean, then its
 * variance); attrs `plan` (Int32Array, see resnet.ts `resnetNetPlan`), `statChannels`, `numParams`,
 * `withGrad`, `fromZero`. Outputs: the loss `[N]`, then (withGrad) the gradient of each parameter
 * (its shape), then per moving average its new counter, hidden value and average. No gradient of
 * its own: callers run it only when no gradient tape records.
 */
export const RESNET_NET_KERNEL = 'LoptResnetValueAndGrad';

/** The whole-network entry of the ResNet addon. */
interface ResnetNetAddon extends ResnetAddon {
  resnetNetValueAndGrad(
    plan: Int32Array,
    N: number,
    B: number,
    x: Float32Array,
    label: Int32Array,
    params: Float32Array[],
    loss: Float32Array,
    grads: Float32Array[] | null,
    prevCounter: Int32Array[] | null,
    prevHidden: Float32Array[] | null,
    counter: Int32Array[],
    hidden: Float32Array[],
    average: Float32Array[],
    variant?: string,
  ): void;
}

let netKernelOn = true;

/** Let ResnetTask and the parametric ResNet use {@link RESNET_NET_KERNEL} (`true`, the default) or not (their tf.js path); for tests and benchmarks. */
export function useResnetNetKernel(on: boolean): void {
  netKernelOn = on;
}

/**
 * The addon with {@link RESNET_NET_KERNEL} registered (wasm and cpu), or null: not built,
 * `LOPT_NATIVE=off`, or turned off by {@link useResnetNetKernel}.
 */
export function resnetNetNative(): ResnetAddon | null {
  const addon = netKernelOn ? (resnetNative() as ResnetNetAddon | null) : null;
  if (!addon || typeof addon.resnetNetValueAndGrad !== 'function') return null;
  registerNativeKernel(RESNET_NET_KERNEL, (inputs, attrs, io) => {
    const statChannels = attrs.statChannels as number[];
    const numParams = attrs.numParams as number;
    const fromZero = attrs.fromZero === true;
    const ps = Array.from({ length: numParams }, (_, i) => inputs[`p${i}`]);
    const emaChannels = statChannels.flatMap((c) => [c, c]);
    const [N, B] = inputs.x.shape;
    const loss = io.alloc([N], 'float32');
    const grads = attrs.withGrad ? ps.map((t) => io.alloc(t.shape, 'float32')) : [];
    const ema = emaChannels.map((c) => [io.alloc([N], 'int32'), io.alloc([N, 1, 1, 1, c], 'float32'), io.alloc([N, 1, 1, 1, c], 'float32')]);
    // views after every allocation (a wasm heap may grow and detach earlier ones)
    const f32 = (t: (typeof ps)[number]) => io.view(t) as Float32Array;
    const i32 = (t: (typeof ps)[number]) => io.view(t) as Int32Array;
    addon.resnetNetValueAndGrad(
      attrs.plan as Int32Array,
      N,
      B,
      f32(inputs.x),
      i32(inputs.label),
      ps.map(f32),
      f32(loss),
      attrs.withGrad ? grads.map(f32) : null,
      fromZero ? null : emaChannels.map((_, i) => i32(inputs[`c${i}`])),
      fromZero ? null : emaChannels.map((_, i) => f32(inputs[`h${i}`])),
      ema.map((e) => i32(e[0])),
      ema.map((e) => f32(e[1])),
      ema.map((e) => f32(e[2])),
      nativeVariantArg(),
    );
    return [loss, ...grads, ...ema.flat()];
  });
  return addon;
}

/** FLOPs of a {@link RESNET_NET_KERNEL} call by its input and output shapes, as {@link recordResnetNetFlops} recorded them. */
const netFlops = new Map<string, number>();
const netSignature = (inputShapes: number[][], outputShapes: number[][]) => JSON.stringify([inputShapes, outputShapes]);

/**
 * Records the FLOPs of a {@link RESNET_NET_KERNEL} call with these shapes (2 per multiply-add of
 * its convolutions and matmul, as tf.js's conv and matmul kernels count them), for
 * {@link resnetNetKernelFlops}. Two plans with the same shapes and different counts (e.g. another
 * stride) make the count NaN: the shapes alone then do not say.
 */
export function recordResnetNetFlops(inputShapes: number[][], outputShapes: number[][], flops: number): void {
  const key = netSignature(inputShapes, outputShapes);
  const known = netFlops.get(key);
  netFlops.set(key, known === undefined || known === flops ? flops : NaN);
}

/**
 * The FLOPs of a {@link RESNET_NET_KERNEL} call as `tf.profile` reports it (its input and output
 * shapes): what {@link recordResnetNetFlops} recorded for them, NaN if nothing (or two counts) was.
 */
export function resnetNetKernelFlops(inputShapes: number[][], outputShapes: number[][]): number {
  return netFlops.get(netSignature(inputShapes, outputShapes)) ?? NaN;
}
