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
 * N stacked tasks each run their own convolutions (tf.js has no grouped conv2d).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { haikuInit, initializers, registerPlugin, registerWasmConvKernels, type HaikuInit, type PRNGKey } from '@lopt/core';
import type { Batch, Datasets, LossWithState, ModelState, Params } from './base';
import { emaUpdate, stackTrees, unstackTree, type EmaState } from './conv';
import { fashionMnistDatasets } from './datasets/fashion_mnist';
import { imagenetDatasets, type ImagenetSize } from './datasets/imagenet';
import { stackHaikuRows } from './parametric/image_mlp';
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
const BN_EPS = 1e-5;
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
 * separable 1-D maxima built from pad/reshape/slice/maximum. Not tf.maxPool: tfjs-backend-wasm
 * 4.22's MaxPoolGrad gives wrong input gradients for this SAME 3x3/2 pool (0.09 off on an 8x8 test
 * map against tfjs cpu), and tf.js autodiff would use it (StridedSlice has no gradient in tf.js).
 * A tie passes the gradient to one element, as jax; which one may differ, but ties have measure
 * zero on real-valued maps, and on post-relu zeros the relu passes no gradient anyway.
 */
export function maxPool3x3Stride2Same(x: tf.Tensor4D): tf.Tensor4D {
  return maxPool1d(maxPool1d(x, 1), 2);
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
  const newState: Record<string, EmaState> = {};
  const conv = (x: tf.Tensor4D, name: string, stride: number) => tf.conv2d(x, p[name].w as tf.Tensor4D, stride, 'same');
  const bn = (x: tf.Tensor4D, name: string): tf.Tensor4D => {
    const mean = tf.mean(x, [0, 1, 2], true);
    const variance = tf.sub(tf.mean(tf.square(x), [0, 1, 2], true), tf.square(mean));
    newState[`${name}/~/mean_ema`] = emaUpdate(state ? state[`${name}/~/mean_ema`] : null, mean);
    newState[`${name}/~/var_ema`] = emaUpdate(state ? state[`${name}/~/var_ema`] : null, variance);
    const inv = tf.mul(tf.rsqrt(tf.add(variance, BN_EPS)), p[name].scale);
    return tf.add(tf.mul(tf.sub(x, mean), inv), p[name].offset) as tf.Tensor4D;
  };
  let out = conv(image, `${ROOT}/~/initial_conv`, spec.initialConvStride);
  if (!spec.resnetV2) out = actFn(bn(out, `${ROOT}/~/initial_batchnorm`)) as tf.Tensor4D;
  if (spec.maxPool) out = maxPool3x3Stride2Same(out);
  for (const blk of resnetBlocks(spec)) {
    if (spec.resnetV2) {
      let x = out;
      let shortcut = out;
      blk.layers.forEach((l, i) => {
        x = tf.relu(bn(x, l.bn));
        if (i === 0 && blk.projection) shortcut = conv(x, `${blk.name}/~/shortcut_conv`, blk.stride);
        x = conv(x, l.conv, l.stride);
      });
      out = tf.add(x, shortcut);
    } else {
      let shortcut = out;
      if (blk.projection) shortcut = bn(conv(out, `${blk.name}/~/shortcut_conv`, blk.stride), `${blk.name}/~/shortcut_batchnorm`);
      let x = out;
      blk.layers.forEach((l, i) => {
        x = bn(conv(x, l.conv, l.stride), l.bn);
        if (i < blk.layers.length - 1) x = tf.relu(x);
      });
      out = tf.relu(tf.add(x, shortcut)) as tf.Tensor4D;
    }
  }
  if (spec.resnetV2) out = actFn(bn(out, `${ROOT}/~/final_batchnorm`)) as tf.Tensor4D;
  const pooled = tf.mean(out, [1, 2]);
  const lg = p[`${ROOT}/~/logits`];
  return { logits: tf.add(tf.matMul(pooled, lg.w), lg.b) as tf.Tensor2D, state: newState };
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
 * each task with its own activation (`acts[n]`).
 */
export function resnetLossWithState(
  spec: ResNetSpec,
  params: Params,
  state: ModelState,
  data: Batch,
  acts: ((x: tf.Tensor) => tf.Tensor)[],
): LossWithState {
  return tidyTree(() => {
    const d = data as { image: tf.Tensor; label: tf.Tensor };
    const N = d.image.shape[0];
    const ps = unstackTree(params, N);
    const ss = state ? unstackTree(state as Record<string, EmaState>, N) : null;
    const images = N === 1 ? [tf.squeeze(d.image, [0])] : tf.unstack(d.image, 0);
    const labels = N === 1 ? [tf.squeeze(d.label, [0])] : tf.unstack(d.label, 0);
    const outs = ps.map((p, n) => {
      const f = resnetForward(spec, p as P, ss ? ss[n] : null, images[n] as tf.Tensor4D, acts.length === 1 ? acts[0] : acts[n]);
      return { loss: resnetMeanCrossEntropy(f.logits, labels[n], spec.numClasses), state: f.state };
    });
    return { loss: tf.stack(outs.map((o) => o.loss)), state: stackTrees(outs.map((o) => o.state)) };
  });
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

  override lossWithStateBatch(params: Params, state: ModelState, _keys: PRNGKey[] | null, data: Batch): LossWithState {
    return resnetLossWithState(this.spec, params, state, data, [tf.relu]);
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
