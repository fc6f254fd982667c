/**
 * A plain convnet's loss and gradient for N stacked tasks as one native kernel
 * ({@link CONV_NET_KERNEL}, `native/conv_net.h` in the ResNet addon): layers of SAME convolution +
 * bias + activation, the spatial mean, a linear head and the mean softmax cross-entropy. It runs
 * ConvTask (conv.ts, without normalisation, mean pool) and ParametricImageConv
 * (parametric/image_conv.ts) where it applies; their tf.js paths run ~100 tf.js kernels a task for
 * one step, most of it per-kernel overhead at these sizes (8x8 to 28x28 maps, 8 to 64 channels).
 * The same values as those paths up to float rounding (tested in `__tests__/conv_net.test.ts`).
 */
import * as tf from '@tensorflow/tfjs';
import { nativeUsable, nativeVariantArg, registerNativeKernel } from '@lopt/core';
import type { Batch, LossAndGrad, Params } from './base';
import { resnetNative, type ResnetAddon } from './resnet_kernels';
import { tidyTree } from './task';

/** Name of the tf.js kernel (wasm and cpu) that runs the whole convnet: loss `[N]`, then (withGrad) the gradient of every parameter. */
export const CONV_NET_KERNEL = 'LoptConvNetValueAndGrad';

/** The activations the kernel runs, by their code (native/conv_net.h `CONV_ACT_*`), named as parametric_utils' SAMPLE_ACTIVATIONS names them. */
export const CONV_NET_ACTIVATIONS = ['relu', 'relu6', 'selu', 'tanh', 'cos', 'sin', 'sigmoid', 'silu', 'gelu', 'leaky_relu(-0.5)'] as const;

/** The kernel's code of an activation named as in SAMPLE_ACTIVATIONS or ConvTask ('swish' is silu), or -1 where it has none. */
export function convNetActivation(name: string): number {
  return CONV_NET_ACTIVATIONS.indexOf((name === 'swish' ? 'silu' : name) as (typeof CONV_NET_ACTIVATIONS)[number]);
}

/** A convnet as the kernel runs it: per layer its output channels, (square) kernel side and stride; the number of classes. */
export interface ConvNetSpec {
  layers: { channels: number; kernel: number; stride: number }[];
  numClasses: number;
}

/** haiku's module names of the layers (`conv2_d`, `conv2_d_1`, …) and of the head (`linear`). */
const convModule = (i: number) => (i === 0 ? 'conv2_d' : `conv2_d_${i}`);

interface ConvNetAddon extends ResnetAddon {
  convNetValueAndGrad(
    spec: Int32Array,
    acts: Int32Array,
    N: number,
    B: number,
    x: Float32Array,
    label: Int32Array,
    params: Float32Array[],
    loss: Float32Array,
    grads: Float32Array[] | null,
    variant?: string,
  ): void;
}

let kernelOn = true;

/** Let ConvTask and ParametricImageConv use {@link CONV_NET_KERNEL} (`true`, the default) or not (their tf.js paths); for tests and benchmarks. */
export function useConvNetKernel(on: boolean): void {
  kernelOn = on;
}

/** The addon with {@link CONV_NET_KERNEL} registered (wasm and cpu), or null: not built, `LOPT_NATIVE=off`, or turned off by {@link useConvNetKernel}. */
export function convNetNative(): ResnetAddon | null {
  const addon = kernelOn ? (resnetNative() as ConvNetAddon | null) : null;
  if (!addon || typeof addon.convNetValueAndGrad !== 'function') return null;
  // Inputs: x [N, B, H, W, C], label int32 [N, B], p0.. (w0, b0, ..., head w, head b; each [N, ...]).
  registerNativeKernel(CONV_NET_KERNEL, (inputs, attrs, io) => {
    const ps = Array.from({ length: attrs.numParams as number }, (_, i) => inputs[`p${i}`]);
    const [N, B] = inputs.x.shape;
    const loss = io.alloc([N], 'float32');
    const grads = attrs.withGrad ? ps.map((t) => io.alloc(t.shape, 'float32')) : [];
    // views after every allocation (a wasm heap may grow and detach earlier ones)
    const f32 = (t: (typeof ps)[number]) => io.view(t) as Float32Array;
    addon.convNetValueAndGrad(
      attrs.spec as Int32Array,
      attrs.acts as Int32Array,
      N,
      B,
      f32(inputs.x),
      io.view(inputs.label) as Int32Array,
      ps.map(f32),
      f32(loss),
      attrs.withGrad ? grads.map(f32) : null,
      nativeVariantArg(),
    );
    return [loss, ...grads];
  });
  return addon;
}

/** FLOPs of {@link CONV_NET_KERNEL} calls by their input and output shapes (see {@link convNetKernelFlops}). */
const netFlops = new Map<string, number>();
const signature = (inputShapes: number[][], outputShapes: number[][]) => JSON.stringify([inputShapes, outputShapes]);

/**
 * The FLOPs of a {@link CONV_NET_KERNEL} call as `tf.profile` reports it (its input and output
 * shapes): 2 per multiply-add of its convolutions (forward, filter gradients, input gradients but
 * the image's) and head matmul, as tf.js's conv and matmul kernels count them; NaN for shapes no
 * call had (or two calls with other counts, e.g. other strides).
 */
export function convNetKernelFlops(inputShapes: number[][], outputShapes: number[][]): number {
  return netFlops.get(signature(inputShapes, outputShapes)) ?? NaN;
}

/** One task's multiply-adds: forward, and backward (each weight gradient, each input gradient but the image's). */
function convNetMacs(spec: ConvNetSpec, image: number[], batch: number): { forward: number; backward: number } {
  let [h, w, c] = image;
  let forward = 0;
  let backward = 0;
  spec.layers.forEach((l, i) => {
    h = Math.ceil(h / l.stride);
    w = Math.ceil(w / l.stride);
    const m = batch * h * w * l.kernel * l.kernel * c * l.channels;
    forward += m;
    backward += i === 0 ? m : 2 * m;
    c = l.channels;
  });
  forward += batch * c * spec.numClasses;
  backward += 2 * batch * c * spec.numClasses;
  return { forward, backward };
}

/**
 * Whether {@link convNetLossAndGrad} may run now: the addon is there and on, the backend is wasm or
 * cpu and no gradient tape records (`nativeUsable`: a meta-gradient through the task records the
 * tf.js ops; the kernel has no gradient of its own).
 */
export function convNetUsable(): boolean {
  return nativeUsable() && convNetNative() !== null;
}

/**
 * The loss `[N]` (and with `withGrad` the gradient, a tree like `params`) of N stacked convnets of
 * `spec` on `data` (`image [N, B, H, W, C]`, `label [N, B]`), task n with activation `acts[n]`
 * (codes of {@link CONV_NET_ACTIVATIONS}; one code: every task), as one native call. Null where
 * the kernel does not apply (no addon, a params tree other than `conv2_d…` / `linear` of the
 * spec's shapes, an activation without a code): then use the tf.js path. Call only when
 * {@link convNetUsable}.
 */
export function convNetLossAndGrad(spec: ConvNetSpec, acts: number[], params: Params, data: Batch, withGrad: boolean): LossAndGrad | null {
  const p = params as Record<string, Record<string, tf.Tensor>>;
  const d = data as { image: tf.Tensor; label: tf.Tensor };
  if (!convNetNative() || d.image.shape.length !== 5 || d.label.shape.length !== 2) return null;
  const [N, B, H, W, C] = d.image.shape;
  if (acts.some((a) => a < 0 || a >= CONV_NET_ACTIVATIONS.length) || (acts.length !== 1 && acts.length !== N)) return null;
  const names: [string, string][] = [];
  const shapes: number[][] = [];
  let cin = C;
  spec.layers.forEach((l, i) => {
    names.push([convModule(i), 'w'], [convModule(i), 'b']);
    shapes.push([N, l.kernel, l.kernel, cin, l.channels], [N, l.channels]);
    cin = l.channels;
  });
  names.push(['linear', 'w'], ['linear', 'b']);
  shapes.push([N, cin, spec.numClasses], [N, spec.numClasses]);
  const leaves = Object.values(p).reduce((n, m) => n + Object.keys(m).length, 0);
  const same = (t: tf.Tensor | undefined, s: number[]) => t !== undefined && t.dtype === 'float32' && t.shape.length === s.length && t.shape.every((v, i) => v === s[i]);
  if (leaves !== names.length || !names.every(([m, k], i) => same(p[m]?.[k], shapes[i]))) return null;
  const specArray = Int32Array.from([spec.layers.length, H, W, C, spec.numClasses, ...spec.layers.flatMap((l) => [l.channels, l.kernel, l.stride])]);
  const actArray = Int32Array.from(acts.length === N ? acts : new Array(N).fill(acts[0]));
  return tidyTree(() => {
    const inputs: Record<string, tf.Tensor> = {
      x: d.image.dtype === 'float32' ? d.image : tf.cast(d.image, 'float32'),
      label: d.label.dtype === 'int32' ? d.label : tf.cast(d.label, 'int32'),
    };
    names.forEach(([m, k], i) => (inputs[`p${i}`] = p[m][k]));
    const attrs = { spec: specArray, acts: actArray, numParams: names.length, withGrad };
    const out = tf.engine().runKernel(CONV_NET_KERNEL, inputs as any, attrs as any) as unknown as tf.Tensor[];
    const key = signature(
      Object.values(inputs).map((t) => t.shape),
      out.map((t) => t.shape),
    );
    const macs = convNetMacs(spec, [H, W, C], B);
    const flops = 2 * N * (macs.forward + (withGrad ? macs.backward : 0));
    const known = netFlops.get(key);
    netFlops.set(key, known === undefined || known === flops ? flops : NaN);
    const grad: Record<string, Record<string, tf.Tensor>> = {};
    if (withGrad) names.forEach(([m, k], i) => ((grad[m] ??= {})[k] = out[1 + i]));
    return { loss: out[0], grad: grad as Params, state: null };
  });
}
