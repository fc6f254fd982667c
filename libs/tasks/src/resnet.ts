/**
 * ResNet image classifiers (reference `tasks/resnet.py`, the ResNet haiku module forked from
 * haiku's `nets/resnet.py`, and `tasks/fixed/resnet.py`, `_ResnetTask` and the
 * `Resnet_MultiRuntime_<i>` configurations).
 *
 * The network (`ResNet.__call__`): `initial_conv` (`hk.Conv2D(initial_conv_channels,
 * initial_conv_kernel_size, initial_conv_stride, with_bias=False, SAME)`); v1 only:
 * `initial_batchnorm` then `act_fn`; optionally a 3x3 stride-2 SAME max pool; four block groups
 * (strides 1, 2, 2, 2; block 0 of a group takes the stride and the projection); v2 only:
 * `final_batchnorm` then `act_fn`; a spatial mean and `hk.Linear(num_classes)` named `logits`
 * with zero-initialised weights. Blocks (`BlockV1` / `BlockV2`) always use relu, whatever `act_fn`;
 * with `bottleneck` their convs are 1x1 (C/4), 3x3 (C/4, the stride), 1x1 (C), otherwise 3x3 (C,
 * the stride), 3x3 (C). BlockV1: conv → bn (→ relu except after the last), projection conv + bn on
 * the shortcut, relu(out + shortcut); its last bottleneck batch norm's scale starts at zeros.
 * BlockV2 (pre-activation): bn → relu → conv per layer, the projection conv reads the first
 * relu's output, out + shortcut.
 *
 * Batch norm (`hk.BatchNorm(create_scale, create_offset, decay_rate=0.9, eps=1e-5)`, is_training
 * always True as the reference calls it): batch statistics over [batch, height, width], scale and
 * offset `[1, 1, 1, C]`, and the moving averages as model state (`<bn>/~/mean_ema`,
 * `<bn>/~/var_ema`, haiku's zero-debiased EMA; see conv.ts for the init-state convention). The loss
 * never reads the averages; every loss call returns them updated.
 *
 * Weights: `hk.Conv2D`'s default, truncated normal with stddev 1/√(fan_in); keys are drawn in the
 * order the forward pass creates the convs (v2: per block the shortcut conv after the first batch
 * norm and before conv_0; v1: the shortcut conv first). Batch-norm parameters and the logits draw
 * no key.
 *
 * N stacked tasks each run their own convolutions (tf.js has no grouped conv2d). Where the native
 * addon is built, a step without a gradient tape runs as one native kernel instead
 * ({@link resnetNetValueAndGrad}; the tf.js ops here stay the reference and the fallback).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, initializers, nativeUsable, registerPlugin, registerWasmConvKernels, type HaikuInit, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, LossAndGrad, LossWithState, ModelState, Params } from './base';
import { emaUpdate, stackTrees, unstackTree, type EmaState } from './conv';
import { fashionMnistDatasets } from './datasets/fashion_mnist';
import { imagenetDatasets, type ImagenetSize } from './datasets/imagenet';
import { stackHaikuRows } from './parametric/image_mlp';
import { BATCH_NORM_KERNEL, BN_EPS, batchNormTrainKernel, EMA_KERNEL, emaUpdateKernel, hasHostKernel, MAX_POOL_GRAD_KERNEL, RESNET_NET_KERNEL, recordResnetNetFlops, resnetNetNative, underNestedGradientTape } from './resnet_kernels';
import { BaseTask, tidyTree } from './task';

registerWasmConvKernels();

/** The architecture of one `ResNet(...)` module (reference `tasks/resnet.py`), with its input. */
export interface ResNetSpec {
  /** blocks in each of the 4 groups */
  blocksPerGroup: number[];
  /** output channels of each group */
  channelsPerGroup: number[];
  /** whether block 0 of each group has a projection shortcut */
  useProjection: boolean[];
  bottleneck: boolean;
  resnetV2: boolean;
  initialConvChannels: number;
  initialConvKernelSize: number;
  initialConvStride: number;
  maxPool: boolean;
  numClasses: number;
  /** the images' channels */
  inChannels: number;
}

/** `ResNet.__init__`'s defaults for the arguments a ResNetSpec names. */
export const RESNET_DEFAULTS = {
  bottleneck: true,
  resnetV2: false,
  useProjection: [true, true, true, true],
  initialConvChannels: 64,
  initialConvKernelSize: 7,
  initialConvStride: 2,
  maxPool: true,
} as const;

const ROOT = 'res_net';
/** `hk.BatchNorm(decay_rate=0.9)`'s moving-average decay (as conv.ts). */
const BN_DECAY = 0.9;
const STRIDES = [1, 2, 2, 2];

type Layer = { conv: string; bn: string; kernel: number; stride: number; out: number };
type Block = { name: string; stride: number; inChannels: number; channels: number; projection: boolean; layers: Layer[] };

/** The blocks of a spec, in forward order, with module names and conv shapes. */
export function resnetBlocks(spec: ResNetSpec): Block[] {
  if (spec.blocksPerGroup.length !== 4 || spec.channelsPerGroup.length !== 4 || spec.useProjection.length !== 4) {
    throw new Error('ResNet: blocksPerGroup, channelsPerGroup and useProjection must be of length 4');
  }
  const blocks: Block[] = [];
  let cin = spec.initialConvChannels;
  for (let g = 0; g < 4; g++) {
    const channels = spec.channelsPerGroup[g];
    for (let b = 0; b < spec.blocksPerGroup[g]; b++) {
      const name = `${ROOT}/~/block_group_${g}/~/block_${b}`;
      const stride = b === 0 ? STRIDES[g] : 1;
      const layers: Layer[] = [];
      const mk = (i: number, kernel: number, s: number, out: number) => layers.push({ conv: `${name}/~/conv_${i}`, bn: `${name}/~/batchnorm_${i}`, kernel, stride: s, out });
      if (spec.bottleneck) {
        const div = Math.trunc(channels / 4);
        mk(0, 1, 1, div);
        mk(1, 3, stride, div);
        mk(2, 1, 1, channels);
      } else {
        mk(0, 3, stride, channels);
        mk(1, 3, 1, channels);
      }
      blocks.push({ name, stride, inChannels: cin, channels, projection: b === 0 && spec.useProjection[g], layers });
      cin = channels;
    }
  }
  return blocks;
}

const convInit = (k: number, cin: number) => initializers.truncatedNormal({ stddev: 1 / Math.sqrt(k * k * cin) });

/** haiku's `init` of a ResNet: the parameters in creation order (see the file comment). */
export function resnetHaikuInit(spec: ResNetSpec, hk: HaikuInit): void {
  const conv = (name: string, k: number, cin: number, cout: number) => hk.getParameter(name, 'w', [k, k, cin, cout], convInit(k, cin));
  const bn = (name: string, c: number, scaleZero = false) => {
    hk.getParameter(name, 'scale', [1, 1, 1, c], scaleZero ? initializers.zeros() : initializers.ones());
    hk.getParameter(name, 'offset', [1, 1, 1, c], initializers.zeros());
  };
  const k0 = spec.initialConvKernelSize;
  conv(`${ROOT}/~/initial_conv`, k0, spec.inChannels, spec.initialConvChannels);
  if (!spec.resnetV2) bn(`${ROOT}/~/initial_batchnorm`, spec.initialConvChannels);
  for (const blk of resnetBlocks(spec)) {
    if (spec.resnetV2) {
      let cin = blk.inChannels;
      blk.layers.forEach((l, i) => {
        bn(l.bn, cin);
        if (i === 0 && blk.projection) conv(`${blk.name}/~/shortcut_conv`, 1, blk.inChannels, blk.channels);
        conv(l.conv, l.kernel, cin, l.out);
        cin = l.out;
      });
    } else {
      if (blk.projection) {
        conv(`${blk.name}/~/shortcut_conv`, 1, blk.inChannels, blk.channels);
        bn(`${blk.name}/~/shortcut_batchnorm`, blk.channels);
      }
      let cin = blk.inChannels;
      blk.layers.forEach((l, i) => {
        conv(l.conv, l.kernel, cin, l.out);
        // BlockV1: the bottleneck's last batch norm starts with scale zeros
        bn(l.bn, l.out, spec.bottleneck && i === 2);
        cin = l.out;
      });
    }
  }
  const last = spec.channelsPerGroup[3];
  if (spec.resnetV2) bn(`${ROOT}/~/final_batchnorm`, last);
  hk.linear(`${ROOT}/~/logits`, last, spec.numClasses, { wInit: initializers.zeros() });
}

type P = Record<string, Record<string, tf.Tensor>>;

/** A 3-wide, stride-2 SAME max along axis 1 or 2 of `[b, h, w, c]` (padding −∞, TF's split), by pairs: out[i] = max(x[2i], x[2i+1], x[2i+2]). */
function maxPool1d(x: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D {
  const n = x.shape[axis];
  const o = Math.ceil(n / 2);
  const padTotal = Math.max((o - 1) * 2 + 3 - n, 0);
  const before = Math.floor(padTotal / 2);
  const pads: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
  pads[axis] = [before, 2 * o + 2 - n - before]; // to 2o + 2: pairs (x[2i], x[2i+1]) for i ≤ o
  const xp = tf.pad(x, pads, -Infinity);
  const [b, h, w, c] = xp.shape;
  const pairs = axis === 1 ? tf.reshape(xp, [b, o + 1, 2, w, c]) : tf.reshape(xp, [b, h, o + 1, 2, c]);
  const pick = (start: number, which: number) => {
    const begin = [0, 0, 0, 0, 0];
    const size = [...pairs.shape];
    begin[axis] = start;
    size[axis] = o;
    begin[axis + 1] = which;
    size[axis + 1] = 1;
    return tf.slice(pairs, begin, size);
  };
  const m = tf.maximum(tf.maximum(pick(0, 0), pick(0, 1)), pick(1, 0));
  const outShape: [number, number, number, number] = [...x.shape];
  outShape[axis] = o;
  return tf.reshape(m, outShape) as tf.Tensor4D;
}

/**
 * `hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding='SAME')`, as two
 * separable 1-D maxima built from pad/reshape/slice/maximum, differentiated by tf.js autodiff. The
 * reference for {@link maxPool3x3Stride2Same}, which gives the same values and gradients faster.
 */
export function maxPool3x3Stride2SameOps(x: tf.Tensor4D): tf.Tensor4D {
  return maxPool1d(maxPool1d(x, 1), 2);
}

/**
 * `hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding='SAME')` of a float32
 * `[b, h, w, c]` map: tf.maxPool's values (the maximum over the window's elements inside the map,
 * as the −∞ padding of {@link maxPool3x3Stride2SameOps}) with a custom gradient. Not tf.maxPool's
 * gradient: tfjs-backend-wasm 4.22's MaxPoolGrad gives wrong input gradients for this SAME 3x3/2
 * pool (0.09 off on an 8x8 test map against tfjs cpu). The gradient is a host kernel (wasm and cpu;
 * other backends use {@link maxPool3x3Stride2SameOps}) that gives autodiff's gradient of the
 * separable maxima, ties included: each window's dy goes to its first column holding the maximum,
 * and in it to the first row. On real-valued maps ties have measure zero, and on post-relu zeros
 * the relu passes no gradient anyway. (Maps holding NaN are not covered: tf.maxPool's and
 * tf.maximum's NaN handling may differ.) Tested against the ops version in
 * `__tests__/resnet_custom_grad.test.ts`, on cpu and wasm. The kernel has no gradient itself: while
 * a gradient of a gradient is being recorded (`underNestedGradientTape`) the ops version runs.
 */
export function maxPool3x3Stride2Same(x: tf.Tensor4D): tf.Tensor4D {
  if (x.dtype !== 'float32' || !hasHostKernel(MAX_POOL_GRAD_KERNEL) || underNestedGradientTape()) return maxPool3x3Stride2SameOps(x);
  return maxPoolCustom(x) as tf.Tensor4D;
}

const maxPoolCustom: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((xt: tf.Tensor4D, save: tf.GradSaveFunc) => {
  const value = tf.maxPool(xt, 3, 2, 'same');
  save([xt, value]);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(MAX_POOL_GRAD_KERNEL, { x: saved[0], y: saved[1], dy }) as tf.Tensor;
  return { value, gradFunc };
}) as any) as (x: tf.Tensor) => tf.Tensor;

/**
 * `hk.BatchNorm` in training mode on `x [B, H, W, C]` written as plain ops, differentiated by tf.js
 * autodiff: batch mean and variance (`E[x²] − E[x]²`, as haiku) over [B, H, W], then
 * `(x − mean) · rsqrt(variance + eps) · scale + offset`. The reference for {@link batchNormTrain}.
 */
export function batchNormTrainOps(x: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor): { y: tf.Tensor4D; mean: tf.Tensor; variance: tf.Tensor } {
  const mean = tf.mean(x, [0, 1, 2], true);
  const variance = tf.sub(tf.mean(tf.square(x), [0, 1, 2], true), tf.square(mean));
  const inv = tf.mul(tf.rsqrt(tf.add(variance, BN_EPS)), scale);
  return { y: tf.add(tf.mul(tf.sub(x, mean), inv), offset) as tf.Tensor4D, mean, variance };
}

/**
 * {@link batchNormTrainOps} with the same forward ops (so the same values) and a hand-written
 * gradient for x, scale and offset, with r = rsqrt(variance + eps) and xc = x − mean over the M =
 * B·H·W positions: d offset = Σ dy, d scale = r · Σ dy·xc, dx = scale · r · (dy − Σdy/M − xc · r² ·
 * Σ(dy·xc)/M) (the variance's derivative is 2·xc/M whether written E[x²] − E[x]² or E[xc²]). The
 * batch statistics come back for the moving averages and carry no gradient (the loss never reads the
 * averages).
 */
export function batchNormTrain(x: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor): { y: tf.Tensor4D; mean: tf.Tensor; variance: tf.Tensor } {
  let mean: tf.Tensor | null = null;
  let variance: tf.Tensor | null = null;
  const f = tf.customGrad(((xt: tf.Tensor, st: tf.Tensor, ot: tf.Tensor, save: tf.GradSaveFunc) => {
    // kept: the engine disposes a custom op's other tensors when no gradient tape is recording
    const mu = tf.keep(tf.mean(xt, [0, 1, 2], true));
    const v = tf.keep(tf.sub(tf.mean(tf.square(xt), [0, 1, 2], true), tf.square(mu)));
    [mean, variance] = [mu, v];
    const r = tf.rsqrt(tf.add(v, BN_EPS));
    const xc = tf.sub(xt, mu);
    const inv = tf.mul(r, st);
    const value = tf.add(tf.mul(xc, inv), ot);
    save([xc, r, inv]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sxc, sr, sinv] = saved as [tf.Tensor4D, tf.Tensor, tf.Tensor];
      const m = sxc.shape[0] * sxc.shape[1] * sxc.shape[2];
      const sumDy = tf.sum(dy, [0, 1, 2], true);
      const dScale = tf.mul(tf.sum(tf.mul(dy, sxc), [0, 1, 2], true), sr);
      // dx = inv · (dy − Σdy/M − xc · r · dScale/M)
      const dx = tf.mul(tf.sub(tf.sub(dy, tf.mul(sxc, tf.mul(sr, tf.div(dScale, m)))), tf.div(sumDy, m)), sinv);
      return [dx, dScale, sumDy];
    };
    return { value, gradFunc };
  }) as any) as (x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.Tensor;
  const y = f(x, scale, offset) as tf.Tensor4D;
  // hand back tracked clones (same data), so that the caller's tf.tidy owns them, and release the kept ones
  const untrack = (t: tf.Tensor) => {
    const c = tf.clone(t);
    t.dispose();
    return c;
  };
  return { y, mean: untrack(mean!), variance: untrack(variance!) };
}

/**
 * The ResNet's training-mode batch norm, then a relu when `relu`: the fused host kernel
 * (`batchNormTrainKernel`, wasm and cpu, float32) where it runs; {@link batchNormTrain} elsewhere;
 * {@link batchNormTrainOps} (autodiff of plain ops) while a gradient of a gradient is being recorded,
 * which neither custom gradient supports (the kernel has no gradient of its own; batchNormTrain's
 * tf.customGrad loses the terms through its saved tensors).
 */
export function resnetBatchNorm(x: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor, relu: boolean): { y: tf.Tensor4D; mean: tf.Tensor; variance: tf.Tensor } {
  const nested = underNestedGradientTape();
  if (!nested && x.dtype === 'float32' && hasHostKernel(BATCH_NORM_KERNEL)) return batchNormTrainKernel(x, scale, offset, relu);
  const r = nested ? batchNormTrainOps(x, scale, offset) : batchNormTrain(x, scale, offset);
  return relu ? { ...r, y: tf.relu(r.y) as tf.Tensor4D } : r;
}

/** The batch statistics of each batch norm a forward pass ran, by module name, in call order. */
type BnStats = Record<string, { mean: tf.Tensor; variance: tf.Tensor }>;

/** The operations a ResNet's forward is made of, on values of type X (tensors, or a plan's buffers). */
interface ResnetOps<X> {
  /** SAME convolution by the module's `w` ([kernel, kernel, in, out]) */
  conv(x: X, name: string, kernel: number, stride: number, out: number): X;
  /** training-mode batch norm, then a relu when `relu` */
  bn(x: X, name: string, relu: boolean): X;
  /** batch norm, then the network's activation (`act_fn`) */
  bnAct(x: X, name: string): X;
  /** the 3x3 stride-2 SAME max pool */
  maxPool(x: X): X;
  add(a: X, b: X): X;
  relu(x: X): X;
}

/**
 * The forward of `ResNet.__call__` up to the final feature map (before the spatial mean and the
 * logits), in the reference's module order (see the file comment), on `ops`: the tf.js forward and
 * the native kernel's plan are both this walk.
 */
function walkResnet<X>(spec: ResNetSpec, image: X, ops: ResnetOps<X>): X {
  let out = ops.conv(image, `${ROOT}/~/initial_conv`, spec.initialConvKernelSize, spec.initialConvStride, spec.initialConvChannels);
  if (!spec.resnetV2) out = ops.bnAct(out, `${ROOT}/~/initial_batchnorm`);
  if (spec.maxPool) out = ops.maxPool(out);
  for (const blk of resnetBlocks(spec)) {
    if (spec.resnetV2) {
      let x = out;
      let shortcut = out;
      blk.layers.forEach((l, i) => {
        x = ops.bn(x, l.bn, true);
        if (i === 0 && blk.projection) shortcut = ops.conv(x, `${blk.name}/~/shortcut_conv`, 1, blk.stride, blk.channels);
        x = ops.conv(x, l.conv, l.kernel, l.stride, l.out);
      });
      out = ops.add(x, shortcut);
    } else {
      let shortcut = out;
      if (blk.projection) shortcut = ops.bn(ops.conv(out, `${blk.name}/~/shortcut_conv`, 1, blk.stride, blk.channels), `${blk.name}/~/shortcut_batchnorm`, false);
      let x = out;
      blk.layers.forEach((l, i) => {
        x = ops.bn(ops.conv(x, l.conv, l.kernel, l.stride, l.out), l.bn, i < blk.layers.length - 1);
      });
      out = ops.relu(ops.add(x, shortcut));
    }
  }
  if (spec.resnetV2) out = ops.bnAct(out, `${ROOT}/~/final_batchnorm`);
  return out;
}

/** One task's ResNet forward on `image [B, H, W, C]`: the logits and each batch norm's batch statistics. */
function resnetForwardStats(spec: ResNetSpec, p: P, image: tf.Tensor4D, actFn: (x: tf.Tensor) => tf.Tensor): { logits: tf.Tensor2D; stats: BnStats } {
  const stats: BnStats = {};
  // batch norm, then relu when `relu`
  const bn = (x: tf.Tensor4D, name: string, relu: boolean): tf.Tensor4D => {
    const r = resnetBatchNorm(x, p[name].scale, p[name].offset, relu);
    stats[name] = { mean: r.mean, variance: r.variance };
    return r.y;
  };
  const out = walkResnet<tf.Tensor4D>(spec, image, {
    conv: (x, name, _kernel, stride) => tf.conv2d(x, p[name].w as tf.Tensor4D, stride, 'same'),
    bn,
    bnAct: (x, name) => (actFn === tf.relu ? bn(x, name, true) : (actFn(bn(x, name, false)) as tf.Tensor4D)),
    maxPool: maxPool3x3Stride2Same,
    add: (a, b) => tf.add(a, b),
    relu: (x) => tf.relu(x),
  });
  const pooled = tf.mean(out, [1, 2]);
  const lg = p[`${ROOT}/~/logits`];
  return { logits: tf.add(tf.matMul(pooled, lg.w), lg.b) as tf.Tensor2D, stats };
}

// ---- the whole network as one native kernel ------------------------------------------------

// op codes and record length of native/resnet_net.h's plan
const NET_CONV = 1;
const NET_BN = 2;
const NET_MAXPOOL = 3;
const NET_ADD = 4;
const NET_RELU = 5;
const NET_HEAD = 6;
const NET_OP_LEN = 8;

/** A spec's network as the plan of {@link RESNET_NET_KERNEL} (`native/resnet_net.h`), for one image shape and batch size. */
export interface ResnetNetPlan {
  /** the Int32Array the kernel reads (buffers, parameter sizes, statistics channels, ops) */
  plan: Int32Array;
  /** the parameters the plan's indices name, as [module, name] */
  params: [string, string][];
  /** the batch norms whose moving averages the kernel updates, in the forward order of the tf.js path */
  batchNorms: string[];
  /** the channels of each of those batch norms */
  statChannels: number[];
  /**
   * One task's multiply-adds in the convolutions and the logits matmul: forward, and backward
   * (each weight gradient, and each input gradient but the image's, as tf.js autodiff runs them).
   */
  macs: { forward: number; backward: number };
}

/**
 * The plan of {@link RESNET_NET_KERNEL} for `spec` on `[batch, ...image]` images, every activation
 * relu: op for op the forward of `resnetForwardStats` (the same modules, batch norms in the same
 * order, SAME padding, the relu fused into the batch norm before it where the tf.js path fuses it).
 */
export function resnetNetPlan(spec: ResNetSpec, image: [number, number, number], batch: number): ResnetNetPlan {
  const shapes: number[][] = [image];
  const ops: number[][] = [];
  const params: [string, string][] = [];
  const sizes: number[] = [];
  const batchNorms: string[] = [];
  const statChannels: number[] = [];
  const macs = { forward: 0, backward: 0 };
  const param = (module: string, name: string, size: number) => {
    params.push([module, name]);
    sizes.push(size);
    return params.length - 1;
  };
  const buffer = (shape: number[]) => shapes.push(shape) - 1;
  const conv = (x: number, name: string, k: number, stride: number, cout: number) => {
    const [h, w, c] = shapes[x];
    const y = buffer([Math.ceil(h / stride), Math.ceil(w / stride), cout]);
    const m = batch * shapes[y][0] * shapes[y][1] * k * k * c * cout;
    macs.forward += m;
    macs.backward += x === 0 ? m : 2 * m;
    ops.push([NET_CONV, x, y, param(name, 'w', k * k * c * cout), k, stride]);
    return y;
  };
  const bn = (x: number, name: string, relu: boolean) => {
    const c = shapes[x][2];
    const y = buffer(shapes[x]);
    ops.push([NET_BN, x, y, param(name, 'scale', c), param(name, 'offset', c), relu ? 1 : 0, batchNorms.length]);
    batchNorms.push(name);
    statChannels.push(c);
    return y;
  };
  const op = (code: number, inputs: number[], shape: number[]) => {
    const y = buffer(shape);
    ops.push([code, ...inputs, y]);
    return y;
  };
  const out = walkResnet<number>(spec, 0, {
    conv,
    bn,
    bnAct: (x, name) => bn(x, name, true), // the kernel runs relu networks only
    maxPool: (x) => op(NET_MAXPOOL, [x], [Math.ceil(shapes[x][0] / 2), Math.ceil(shapes[x][1] / 2), shapes[x][2]]),
    add: (a, b) => op(NET_ADD, [a, b], shapes[a]),
    relu: (x) => op(NET_RELU, [x], shapes[x]),
  });
  const c = shapes[out][2];
  const logits = `${ROOT}/~/logits`;
  ops.push([NET_HEAD, out, param(logits, 'w', c * spec.numClasses), param(logits, 'b', spec.numClasses), spec.numClasses]);
  macs.forward += batch * c * spec.numClasses;
  macs.backward += 2 * batch * c * spec.numClasses;
  const plan = [shapes.length, ops.length, params.length, batchNorms.length, ...shapes.flat(), ...sizes, ...statChannels];
  for (const op of ops) plan.push(...op, ...new Array(NET_OP_LEN - op.length).fill(0));
  return { plan: Int32Array.from(plan), params, batchNorms, statChannels, macs };
}

const netPlans = new WeakMap<ResNetSpec, Map<string, ResnetNetPlan>>();

/** {@link resnetNetPlan}, built once per spec, image shape and batch size. */
function cachedNetPlan(spec: ResNetSpec, image: [number, number, number], batch: number): ResnetNetPlan {
  let byShape = netPlans.get(spec);
  if (!byShape) netPlans.set(spec, (byShape = new Map()));
  const key = `${image.join(',')}/${batch}`;
  let plan = byShape.get(key);
  if (!plan) byShape.set(key, (plan = resnetNetPlan(spec, image, batch)));
  return plan;
}

/**
 * Whether {@link resnetNetValueAndGrad} runs now: the addon is built and on (`LOPT_NATIVE`,
 * {@link useResnetNetKernel}), the backend is wasm or cpu and no gradient tape records
 * (`nativeUsable`: a meta-gradient through the task records the tf.js ops), and every activation
 * is relu (`allRelu`; the kernel has no other).
 */
export function resnetNetUsable(allRelu: boolean): boolean {
  return allRelu && nativeUsable() && resnetNetNative() !== null;
}

/**
 * The loss (and with `withGrad` the gradient of every parameter) of N stacked ResNets on `data`
 * (`image [N, B, H, W, C]`, `label [N, B]`), every activation relu, as one native call
 * ({@link RESNET_NET_KERNEL}), and the state the tf.js path returns: the moving averages updated
 * from `state` on the batch statistics, in the kernel, with the float32 operations of
 * `emaUpdateAllStacked` (the decay's power from C's powf, which may differ from tf.js's pow in
 * the last bit). The same values as the tf.js path up to float rounding (tested in
 * `__tests__/resnet_net.test.ts`). Null where the addon is not there, the params tree holds
 * leaves the plan does not name, or the state lacks a moving average the plan updates (then use
 * the tf.js path). Call only when {@link resnetNetUsable} (no gradient tape: the kernel has no gradient).
 */
export function resnetNetValueAndGrad(spec: ResNetSpec, params: Params, state: ModelState, data: Batch, withGrad: boolean): LossAndGrad | null {
  const p = params as P;
  const d = data as { image: tf.Tensor; label: tf.Tensor };
  if (d.image.shape.length !== 5) return null;
  const [N, B, H, W, C] = d.image.shape;
  const plan = cachedNetPlan(spec, [H, W, C], B);
  const leaves = Object.values(p).reduce((n, m) => n + Object.keys(m).length, 0);
  if (!resnetNetNative() || leaves !== plan.params.length || !plan.params.every(([m, k]) => p[m]?.[k] !== undefined)) return null;
  // the previous moving averages, two per batch norm (its mean, then its variance): all there, or none (haiku's first call)
  const emaKeys = plan.batchNorms.flatMap((bn) => [`${bn}/~/mean_ema`, `${bn}/~/var_ema`]);
  const prev = state as Record<string, EmaState> | null;
  if (prev && !emaKeys.every((k) => prev[k]?.counter?.dtype === 'int32' && prev[k].hidden?.dtype === 'float32')) return null;
  return tidyTree(() => {
    const inputs: Record<string, tf.Tensor> = {
      x: d.image.dtype === 'float32' ? d.image : tf.cast(d.image, 'float32'),
      label: d.label.dtype === 'int32' ? d.label : tf.cast(d.label, 'int32'),
    };
    plan.params.forEach(([m, k], i) => (inputs[`p${i}`] = p[m][k]));
    if (prev) {
      emaKeys.forEach((k, i) => {
        inputs[`c${i}`] = prev[k].counter;
        inputs[`h${i}`] = prev[k].hidden;
      });
    }
    const attrs = { plan: plan.plan, statChannels: plan.statChannels, numParams: plan.params.length, withGrad, fromZero: !prev };
    const out = tf.engine().runKernel(RESNET_NET_KERNEL, inputs as any, attrs as any) as unknown as tf.Tensor[];
    recordNetFlops(plan, inputs, out, N, withGrad);
    const np = withGrad ? plan.params.length : 0;
    const newState: Record<string, EmaState> = {};
    emaKeys.forEach((k, i) => (newState[k] = { counter: out[1 + np + 3 * i], hidden: out[2 + np + 3 * i], average: out[3 + np + 3 * i] }));
    const grad: Record<string, Record<string, tf.Tensor>> = {};
    if (withGrad) plan.params.forEach(([m, k], i) => ((grad[m] ??= {})[k] = out[1 + i]));
    return { loss: out[0], grad: grad as Params, state: newState as unknown as ModelState };
  });
}

/** {@link recordResnetNetFlops} for a call of `plan`, once per number of tasks and withGrad (the shapes then repeat). */
function recordNetFlops(plan: ResnetNetPlan, inputs: Record<string, tf.Tensor>, out: tf.Tensor[], n: number, withGrad: boolean): void {
  const key = `${n}/${withGrad}/${inputs.c0 ? 1 : 0}`;
  const done = (plan as ResnetNetPlan & { recorded?: Set<string> }).recorded ?? new Set<string>();
  (plan as ResnetNetPlan & { recorded?: Set<string> }).recorded = done;
  if (done.has(key)) return;
  done.add(key);
  recordResnetNetFlops(
    Object.values(inputs).map((t) => t.shape),
    out.map((t) => t.shape),
    2 * n * (plan.macs.forward + (withGrad ? plan.macs.backward : 0)),
  );
}

/**
 * conv.ts's `emaUpdate` for every moving average of N stacked tasks at once: `values[k] [N, ...]`,
 * `prev[k]` with counter `[N]` (null: counters and hidden zero). The counters and debiasing factors
 * `1 − decay^counter` of all averages are one `[K, N]` computation; the same elementwise ops (and
 * `1 − decay` is exact in float32), so the same values as separate updates. The hidden values and
 * averages are then one host kernel (`emaUpdateKernel`, wasm and cpu: the same float32 arithmetic,
 * bit for bit) where it runs and `kernel` is not false, else these ops per average (the reference).
 */
export function emaUpdateAllStacked(prev: (EmaState | null)[], values: tf.Tensor[], opts: { kernel?: boolean } = {}): EmaState[] {
  const n = values[0].shape[0];
  const k = values.length;
  const prevCounter = tf.stack(prev.map((p) => (p ? p.counter : tf.zeros([n], 'int32'))));
  const counter = tf.add(prevCounter, tf.scalar(1, 'int32'));
  const decay = tf.scalar(BN_DECAY);
  const oneMinusDecay = tf.scalar(1 - Math.fround(BN_DECAY));
  const debias = tf.sub(tf.scalar(1), tf.pow(decay, tf.cast(counter, 'float32')));
  const counters = k === 1 ? [tf.squeeze(counter, [0])] : tf.unstack(counter);
  const fromZero = prev.every((p) => p === null);
  const useKernel =
    opts.kernel !== false && (fromZero || prev.every((p) => p !== null)) && values.every((v, i) => v.dtype === 'float32' && (fromZero || prev[i]!.hidden.dtype === 'float32')) && hasHostKernel(EMA_KERNEL);
  if (useKernel) {
    const r = emaUpdateKernel(values, fromZero ? null : prev.map((p) => p!.hidden), debias, BN_DECAY);
    return values.map((_, i) => ({ counter: counters[i], hidden: r.hidden[i], average: r.average[i] }));
  }
  const debiases = k === 1 ? [tf.squeeze(debias, [0])] : tf.unstack(debias);
  return values.map((value, i) => {
    const hidden0 = prev[i] ? prev[i]!.hidden : tf.zerosLike(value);
    const hidden = tf.add(tf.mul(hidden0, decay), tf.mul(value, oneMinusDecay));
    const average = tf.div(hidden, tf.reshape(debiases[i], [n, ...value.shape.slice(1).map(() => 1)]));
    return { counter: counters[i], hidden, average };
  });
}

/** The EMA state after one step from `state` (null: haiku's first call) on the batch statistics (`stacked`: N tasks' stacked ones). */
function emaFromStats(state: Record<string, EmaState> | null, stats: BnStats, stacked = false): Record<string, EmaState> {
  const keys: string[] = [];
  const values: tf.Tensor[] = [];
  for (const [name, st] of Object.entries(stats)) {
    keys.push(`${name}/~/mean_ema`, `${name}/~/var_ema`);
    values.push(st.mean, st.variance);
  }
  const prev = keys.map((key) => (state ? state[key] : null));
  const updated = stacked ? emaUpdateAllStacked(prev, values) : values.map((v, i) => emaUpdate(prev[i], v));
  return Object.fromEntries(keys.map((key, i) => [key, updated[i]]));
}

/**
 * One task's ResNet forward on `image [B, H, W, C]`: the logits and the updated batch-norm state
 * (`state` null: haiku's first call, counter and hidden from zero).
 */
export function resnetForward(
  spec: ResNetSpec,
  p: P,
  state: Record<string, EmaState> | null,
  image: tf.Tensor4D,
  actFn: (x: tf.Tensor) => tf.Tensor = tf.relu,
): { logits: tf.Tensor2D; state: Record<string, EmaState> } {
  const f = resnetForwardStats(spec, p, image, actFn);
  return { logits: f.logits, state: emaFromStats(state, f.stats) };
}

/** Mean softmax cross-entropy of logits `[B, C]` against integer labels `[B]` (`base.softmax_cross_entropy` + one_hot). */
export function resnetMeanCrossEntropy(logits: tf.Tensor, label: tf.Tensor, numClasses: number): tf.Scalar {
  // Not oneHot(..., 'float32'): tfjs-backend-wasm 4.22's OneHot writes int32 bits whatever the dtype.
  const onehot = tf.cast(tf.oneHot(tf.cast(label, 'int32'), numClasses), 'float32');
  return tf.mean(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

/**
 * `hk.transform_with_state(f).init`'s model state: counter 0 and hidden 0 for every EMA, `average`
 * the statistics of the one forward pass init makes on `image` (per stacked task).
 */
export function resnetInitState(spec: ResNetSpec, params: Params, n: number, image: tf.Tensor4D, actFn?: (x: tf.Tensor) => tf.Tensor, acts?: ((x: tf.Tensor) => tf.Tensor)[]): ModelState {
  return tidyTree(() => {
    const per = unstackTree(params, n).map((p, i) => {
      const s = resnetForward(spec, p as P, null, image, acts ? acts[i] : actFn).state;
      const out: Record<string, EmaState> = {};
      for (const [k, v] of Object.entries(s)) out[k] = { counter: tf.zerosLike(v.counter), hidden: tf.zerosLike(v.hidden), average: v.average };
      return out;
    });
    return stackTrees(per);
  });
}

/**
 * Loss and new state of N stacked ResNets on `data` (`image [N, B, H, W, C]`, `label [N, B]`),
 * each task with its own activation (`acts[n]`). With `statsOnly` the state is instead each batch
 * norm's stacked batch statistics (`{ [bn]: { mean, variance } }`), for {@link resnetValueAndGradBatch}.
 */
export function resnetLossWithState(
  spec: ResNetSpec,
  params: Params,
  state: ModelState,
  data: Batch,
  acts: ((x: tf.Tensor) => tf.Tensor)[],
  opts: { statsOnly?: boolean } = {},
): LossWithState {
  return tidyTree(() => {
    const d = data as { image: tf.Tensor; label: tf.Tensor };
    const N = d.image.shape[0];
    const ps = unstackTree(params, N);
    const images = N === 1 ? [tf.squeeze(d.image, [0])] : tf.unstack(d.image, 0);
    const labels = N === 1 ? [tf.squeeze(d.label, [0])] : tf.unstack(d.label, 0);
    const outs = ps.map((p, n) => {
      const f = resnetForwardStats(spec, p as P, images[n] as tf.Tensor4D, acts.length === 1 ? acts[0] : acts[n]);
      return { loss: resnetMeanCrossEntropy(f.logits, labels[n], spec.numClasses), stats: f.stats };
    });
    // the moving averages of all N tasks at once: the same elementwise ops on the stacked state
    const stack = (ts: tf.Tensor[]) => (ts.length === 1 ? tf.expandDims(ts[0], 0) : tf.stack(ts));
    const stacked: BnStats = {};
    for (const name of Object.keys(outs[0].stats)) {
      stacked[name] = { mean: stack(outs.map((o) => o.stats[name].mean)), variance: stack(outs.map((o) => o.stats[name].variance)) };
    }
    const loss = stack(outs.map((o) => o.loss));
    if (opts.statsOnly) return { loss, state: stacked as unknown as ModelState };
    return { loss, state: emaFromStats(state as Record<string, EmaState> | null, stacked, true) };
  });
}

/** A task whose `lossWithStateBatch` hands back the batch statistics instead of the EMA state while `statsOnly` is set. */
export interface ResnetStatsSwitch {
  /** while true, `lossWithStateBatch` returns `resnetLossWithState(..., { statsOnly: true })`'s state */
  statsOnly: boolean;
}

/**
 * `valueAndGradBatch` of a ResNet task with the moving averages off the gradient tape: `run` (the
 * autodiff `BaseTask.valueAndGradBatch`) runs with `task.statsOnly` set, so the recorded forward
 * stops at the batch statistics, and the EMA update (the same ops as inside the loss, so the same
 * values) runs afterwards on them. The loss never reads the averages, so the gradients are the same.
 */
export function resnetValueAndGradBatch(task: ResnetStatsSwitch, state: ModelState, run: () => LossAndGrad): LossAndGrad {
  task.statsOnly = true;
  let out: LossAndGrad;
  try {
    out = run();
  } finally {
    task.statsOnly = false;
  }
  const stats = out.state as unknown as BnStats;
  const newState = tidyTree(() => emaFromStats(state as Record<string, EmaState> | null, stats, true));
  tf.dispose(stats as unknown as tf.TensorContainer);
  return { ...out, state: newState as unknown as ModelState };
}

// ---- the fixed tasks --------------------------------------------------------------------------

/** The configuration of a `_ResnetTask` (reference `tasks/fixed/resnet.py`'s config dicts). */
export const ResnetTaskSchema = z
  .object({
    /** 16, 32 or 64: imagenet16/32/64_datasets */
    imageSize: z.union([z.literal(8), z.literal(16), z.literal(32), z.literal(64)]).default(16),
    batchSize: z.number().int().positive().default(64),
    blocksPerGroup: z.array(z.number().int().positive()).length(4).default([1, 1, 1, 1]),
    useProjection: z.array(z.boolean()).length(4).default([true, true, true, true]),
    channelsPerGroup: z.array(z.number().int().positive()).length(4).default([8, 16, 16, 16]),
    initialConvKernelSize: z.number().int().positive().default(3),
    initialConvStride: z.number().int().positive().default(2),
    maxPool: z.boolean().default(true),
    resnetV2: z.boolean().default(true),
    /** lopt-ts addition: 'fashion_mnist' runs the same net on Fashion-MNIST resized to imageSize (offline) */
    dataset: z.enum(['imagenet', 'fashion_mnist']).default('imagenet'),
    /** Metric-key name; the reference's default `__Resnet`. */
    name: z.string().default('__Resnet'),
  })
  .strict();

/** A ResnetTask's options: the schema's fields, and datasets to use instead of the named ones. */
export type ResnetTaskConfig = z.input<typeof ResnetTaskSchema> & { datasets?: Datasets };

/**
 * `_ResnetTask(cfg)`: `ResNet(num_classes, **cfg)` with ResNet's other defaults (bottleneck blocks,
 * 64 initial channels) on imagenet<image_size> (1000 classes), mean softmax cross-entropy, batch-norm
 * state. The normalizer is base.Task's (the identity).
 */
export class ResnetTask extends BaseTask {
  readonly name: string;
  readonly spec: ResNetSpec;
  /** One example's `[H, W, C]`. */
  readonly imageShape: [number, number, number];

  constructor(config: ResnetTaskConfig = {}) {
    super();
    const { datasets, ...rest } = config;
    const c = ResnetTaskSchema.parse(rest);
    this.datasets =
      datasets ??
      (c.dataset === 'fashion_mnist' ? fashionMnistDatasets(c.batchSize, [c.imageSize, c.imageSize]) : imagenetDatasets(c.imageSize as ImagenetSize, c.batchSize));
    this.name = c.name;
    const ab = this.datasets.split('train').abstractBatch() as { image: { shape: number[] } };
    this.imageShape = ab.image.shape.slice(1) as [number, number, number];
    this.spec = {
      blocksPerGroup: c.blocksPerGroup,
      channelsPerGroup: c.channelsPerGroup,
      useProjection: c.useProjection,
      bottleneck: RESNET_DEFAULTS.bottleneck,
      resnetV2: c.resnetV2,
      initialConvChannels: RESNET_DEFAULTS.initialConvChannels,
      initialConvKernelSize: c.initialConvKernelSize,
      initialConvStride: c.initialConvStride,
      maxPool: c.maxPool,
      numClasses: Number(this.datasets.extraInfo?.num_classes ?? 1000),
      inChannels: this.imageShape[2],
    };
  }

  /** Haiku-exact params per key (`init_with_state(key)[0]`). */
  initBatch(keys: PRNGKey[]): Params {
    return stackHaikuRows(keys.map((k) => haikuInit(k, (hk) => resnetHaikuInit(this.spec, hk))));
  }

  /** `init_with_state`: the params and the EMA state of init's forward pass on an all-ones batch (one image gives the same statistics as 64). */
  override initWithStateBatch(keys: PRNGKey[]): [Params, ModelState] {
    const params = this.initBatch(keys);
    const ones = tf.ones([1, ...this.imageShape]) as tf.Tensor4D;
    const state = resnetInitState(this.spec, params, keys.length, ones);
    ones.dispose();
    return [params, state];
  }

  /** See {@link ResnetStatsSwitch}: set only during {@link ResnetTask.valueAndGradBatch}. */
  statsOnly = false;

  /** The whole-network native kernel ({@link resnetNetValueAndGrad}) where it runs, else the tf.js ops ({@link resnetLossWithState}). */
  override lossWithStateBatch(params: Params, state: ModelState, _keys: PRNGKey[] | null, data: Batch): LossWithState {
    const r = !this.statsOnly && resnetNetUsable(true) ? resnetNetValueAndGrad(this.spec, params, state, data, false) : null;
    if (r) return { loss: r.loss, state: r.state };
    return resnetLossWithState(this.spec, params, state, data, [tf.relu], { statsOnly: this.statsOnly });
  }

  /**
   * The whole-network native kernel ({@link resnetNetValueAndGrad}) where it runs; else autodiff
   * as BaseTask's, with the moving averages updated off the gradient tape ({@link resnetValueAndGradBatch}).
   */
  override valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    const r = resnetNetUsable(true) ? resnetNetValueAndGrad(this.spec, params, state, data, true) : null;
    if (r) return opts.withAux ? { ...r, aux: {} } : r;
    return resnetValueAndGradBatch(this, state, () => super.valueAndGradBatch(params, state, keys, data, opts));
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => this.lossWithStateBatch(params, null, keys, data).loss);
  }
}

type ResnetCfg = Omit<z.input<typeof ResnetTaskSchema>, 'name' | 'dataset'>;
const P4 = [true, true, true, true];
const B1 = [1, 1, 1, 1];

/** `tasks/fixed/resnet.py`'s configurations, in order (`Resnet_MultiRuntime_<i>`). */
export const RESNET_MULTI_RUNTIME_CONFIGS: ResnetCfg[] = [
  { imageSize: 16, batchSize: 64, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [8, 16, 16, 16], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 16, batchSize: 64, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [8, 16, 16, 32], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 16, batchSize: 64, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [64, 128, 128, 128], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 16, batchSize: 192, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [64, 128, 256, 512], initialConvKernelSize: 5, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 16, batchSize: 192, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [128, 256, 512, 512], initialConvKernelSize: 5, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 32, batchSize: 128, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [128, 256, 512, 512], initialConvKernelSize: 5, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 32, batchSize: 256, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [128, 256, 512, 512], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 32, batchSize: 256, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [256, 512, 512, 1024], initialConvKernelSize: 5, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 64, batchSize: 256, blocksPerGroup: B1, useProjection: P4, channelsPerGroup: [256, 512, 1024, 1024], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 64, batchSize: 256, blocksPerGroup: [1, 2, 4, 5], useProjection: P4, channelsPerGroup: [256, 512, 1024, 1024], initialConvKernelSize: 3, initialConvStride: 2, maxPool: true, resnetV2: true },
  { imageSize: 64, batchSize: 256, blocksPerGroup: [1, 1, 3, 4], useProjection: P4, channelsPerGroup: [256, 512, 1024, 1024], initialConvKernelSize: 5, initialConvStride: 2, maxPool: false, resnetV2: true },
];

/** A fixed ResNet task: its name, a description and its configuration. */
export interface FixedResnetTask {
  name: string;
  description: string;
  config: Omit<z.input<typeof ResnetTaskSchema>, 'name'>;
}

const describeCfg = (c: ResnetCfg) =>
  `ResNet v2 (bottleneck, groups ${c.channelsPerGroup!.join('-')}, blocks ${c.blocksPerGroup!.join('-')}, initial conv ${c.initialConvKernelSize}x${c.initialConvKernelSize}${c.maxPool ? ', max pool' : ''})`;

/**
 * The reference's 11 `Resnet_MultiRuntime_<i>` tasks on downsampled ImageNet (see datasets/imagenet.ts
 * for the files), then lopt-ts's offline twins of the two smallest on Fashion-MNIST resized to 16x16
 * (1 channel, 10 classes).
 */
export const FIXED_RESNET_TASKS: FixedResnetTask[] = [
  ...RESNET_MULTI_RUNTIME_CONFIGS.map((c, i) => ({
    name: `Resnet_MultiRuntime_${i}`,
    description: `${describeCfg(c)} on ${c.imageSize}x${c.imageSize} ImageNet, batch ${c.batchSize}`,
    config: c,
  })),
  ...[0, 1].map((i) => {
    const c = RESNET_MULTI_RUNTIME_CONFIGS[i];
    return {
      name: `Resnet_FashionMnist_MultiRuntime_${i}`,
      description: `${describeCfg(c)} on 16x16 Fashion-MNIST, batch ${c.batchSize} (lopt-ts addition: Resnet_MultiRuntime_${i} offline)`,
      config: { ...c, dataset: 'fashion_mnist' as const },
    };
  }),
];

/** A fixed ResNet task by name (e.g. `resnetTask('Resnet_MultiRuntime_0')`); `datasets` replaces the named ones (tests, fixtures). */
export function resnetTask(name: string, opts: { datasets?: Datasets } = {}): ResnetTask {
  const f = FIXED_RESNET_TASKS.find((t) => t.name === name);
  if (!f) throw new Error(`unknown resnet task '${name}'; allowed: ${FIXED_RESNET_TASKS.map((t) => t.name).join(', ')}`);
  return new ResnetTask({ ...f.config, name: f.name, datasets: opts.datasets });
}

for (const f of FIXED_RESNET_TASKS) {
  const cls = { [f.name]: class extends ResnetTask {
    constructor() {
      super({ ...f.config, name: f.name });
    }
  } }[f.name];
  registerPlugin({ kind: 'task', name: f.name, description: f.description, schema: z.object({}).strict(), create: () => new cls(), cls });
}

registerPlugin({
  kind: 'task',
  name: 'ResnetTask',
  description: 'ResNet (bottleneck blocks, batch-norm state) on downsampled ImageNet or Fashion-MNIST, configured as tasks/fixed/resnet.py',
  schema: ResnetTaskSchema,
  create: (c) => new ResnetTask(c),
  cls: ResnetTask,
});
