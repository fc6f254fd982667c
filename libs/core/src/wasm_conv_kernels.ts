/**
 * `Conv2DBackpropFilter` for the wasm backend, and a faster one for the cpu backend (registered by
 * `initBackend` and on importing @lopt/tasks' conv tasks).
 *
 * tfjs-backend-wasm 4.22 has Conv2D, Conv2DBackpropInput, MaxPoolGrad and AvgPoolGrad but no
 * Conv2DBackpropFilter (nor the depthwise backprops: wasm_depthwise_kernels.ts), so `tf.grads` through `tf.conv2d` fails on
 * wasm with "'Conv2DBackpropFilter' not registered". This kernel is im2col + one matMul: the
 * patches of the (padded) input, `cols[(b, y, x), (i, j, c)] = x[b, y·s + i − padTop, x·s + j −
 * padLeft, c]` (0 outside), built on the host straight in the wasm heap, then
 * `dW = colsᵀ · dy` (colsᵀ built directly) with `dy` read as `[B·Ho·Wo, Cout]`, by the backend's own BatchMatMul kernel
 * (XNNPACK). The result `[kh·kw·Cin, Cout]` is the filter gradient `[kh, kw, Cin, Cout]` as is.
 * NHWC only (the only layout tfjs's wasm Conv2D supports); dilations are not an attribute of this
 * kernel (tf.js's conv2d gradient requires dilation 1).
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmDepthwiseKernels } from './wasm_depthwise_kernels';
import { coreNative } from './core_native';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): void;
}
interface CpuBackendLike {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): TensorInfo;
  disposeData(dataId: object): void;
}
type BackendKind = 'wasm' | 'cpu';

interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | number[][];
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * The sizes both backprop kernels below need, from tf.js's `computeConv2DInfo` (NHWC, no
 * dilation): batch, input and output sides, channels, filter and strides, the top / left padding,
 * and the im2col matrix's `M = B·Ho·Wo` rows and `K = kh·kw·Cin` columns.
 */
function convGeometry(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: unknown,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
) {
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad as any, dimRoundingMode, false, 'channelsLast');
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  return { B, H, W, C, Ho, Wo, Co, kh, kw, sh, sw, top: info.padInfo.top, left: info.padInfo.left, M: B * Ho * Wo, K: kh * kw * C };
}

/** A convolution's sizes as `convGeometry` returns them (NHWC, no dilation; M = B·Ho·Wo, K = kh·kw·C). */
export type ConvGeometry = ReturnType<typeof convGeometry>;

/** convGeometry as the core addon's im2colT / col2im take it: [B, H, W, C, Ho, Wo, kh, kw, sh, sw, top, left]. */
function nativeGeometry(g: ConvGeometry): Int32Array {
  return Int32Array.from([g.B, g.H, g.W, g.C, g.Ho, g.Wo, g.kh, g.kw, g.sh, g.sw, g.top, g.left]);
}

/**
 * im2col, transposed: `colsT[(i, j, c), (b, y, x)] = x[b, y·sh + i − top, x·sw + j − left, c]`, 0
 * outside (colsT: [K, M]). In C where the core addon is built (several times faster than this
 * loop), the same values.
 */
export function im2colT(g: ConvGeometry, xV: Float32Array, colsV: Float32Array, useNative = true): void {
  const addon = useNative && g.M * g.K > 0 ? coreNative() : null;
  if (addon) return addon.im2colT(nativeGeometry(g), xV, colsV);
  const { B, H, W, C, Ho, Wo, kh, kw, sh, sw, top, left, M } = g;
  colsV.fill(0);
  // row by row of colsT (tap (i, j), channel c), so that the writes are sequential
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < C; c++) {
        const row = ((i * kw + j) * C + c) * M;
        for (let b = 0; b < B; b++) {
          for (let oy = 0; oy < Ho; oy++) {
            const iy = oy * sh + i - top;
            if (iy < 0 || iy >= H) continue;
            const dst = row + (b * Ho + oy) * Wo;
            const src = (b * H + iy) * W * C + c;
            for (let ox = 0; ox < Wo; ox++) {
              const ix = ox * sw + j - left;
              if (ix >= 0 && ix < W) colsV[dst + ox] = xV[src + ix * C];
            }
          }
        }
      }
    }
  }
}

/**
 * col2im: `dx = 0`, then every patch row added back at its place, `dx[b, y·sh + i − top, x·sw + j −
 * left, :] += cols[(b, y, x), (i, j, :)]` (outside: dropped). In C where the core addon is built
 * (~5x faster than this loop): the same sums in the same order, so the same values.
 */
export function col2im(g: ConvGeometry, colsV: Float32Array, dxV: Float32Array, useNative = true): void {
  const addon = useNative && g.M * g.K > 0 && dxV.length > 0 ? coreNative() : null;
  if (addon) return addon.col2im(nativeGeometry(g), colsV, dxV);
  const { B, H, W, C, Ho, Wo, kh, kw, sh, sw, top, left, K } = g;
  dxV.fill(0);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const row = ((b * Ho + oy) * Wo + ox) * K;
        for (let i = 0; i < kh; i++) {
          const iy = oy * sh + i - top;
          if (iy < 0 || iy >= H) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * sw + j - left;
            if (ix < 0 || ix >= W) continue;
            const dst = ((b * H + iy) * W + ix) * C;
            const src = row + (i * kw + j) * C;
            for (let c = 0; c < C; c++) dxV[dst + c] += colsV[src + c];
          }
        }
      }
    }
  }
}

/** The filter gradient of a 2-D convolution (NHWC), as the cpu backend's Conv2DBackpropFilter. */
export function wasmConv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackendLike; attrs: BackpropFilterAttrs }): TensorInfo {
  return im2colBackpropFilter('wasm', args);
}

/** The same on the cpu backend, whose own kernel reads element by element through TensorBuffer getters (14 s for a [2,16,16,32] input and a 3x3x32x64 filter; this: milliseconds). */
export function cpuConv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: CpuBackendLike; attrs: BackpropFilterAttrs }): TensorInfo {
  return im2colBackpropFilter('cpu', args);
}

function im2colBackpropFilter(kind: BackendKind, args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: any; attrs: BackpropFilterAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter (wasm): dataFormat ${dataFormat} not supported (NHWC only)`);
  }
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('Conv2DBackpropFilter (wasm): float32 only');
  const geometry = convGeometry(x.shape as [number, number, number, number], filterShape, strides, pad, dimRoundingMode);
  const { M, K, Co } = geometry;
  // colsT[(i, j, c), (b, y, x)]: built transposed, so the matMul below takes no transpose.
  let colsT: TensorInfo;
  let colsV: Float32Array;
  let xV: Float32Array;
  if (kind === 'wasm') {
    const wb = backend as WasmBackendLike;
    colsT = wb.makeOutput([K, M], 'float32');
    // Views after makeOutput (which may grow the heap and detach earlier views).
    colsV = wb.typedArrayFromHeap(colsT) as Float32Array;
    xV = wb.typedArrayFromHeap(x) as Float32Array;
  } else {
    const cb = backend as CpuBackendLike;
    colsV = new Float32Array(K * M);
    xV = cb.data.get(x.dataId).values;
    colsT = cb.makeTensorInfo([K, M], 'float32', colsV);
  }
  im2colT(geometry, xV, colsV);
  const matMul = tf.getKernel('BatchMatMul', kind);
  if (!matMul) throw new Error(`Conv2DBackpropFilter (${kind}): no BatchMatMul kernel`);
  const dy2 = { dataId: dy.dataId, shape: [M, Co], dtype: dy.dtype };
  const out = (matMul.kernelFunc as any)({ inputs: { a: colsT, b: dy2 }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  backend.disposeData(colsT.dataId);
  out.shape = [...filterShape];
  return out;
}

interface BackpropInputAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | number[][];
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * The input gradient of a 2-D convolution (NHWC) on wasm, by one matMul and a scatter ("col2im"):
 * `cols = dy · Wᵀ` with dy read as `[B·Ho·Wo, Cout]` and the filter as `[kh·kw·Cin, Cout]` (the
 * backend's BatchMatMul kernel: XNNPACK), then every patch row is added back at its place,
 * `dx[b, y·s + i − padTop, x·s + j − padLeft, :] += cols[(b, y, x), (i, j, :)]` (outside: dropped).
 * tfjs-backend-wasm 4.22's own kernel is a direct loop over every multiply-add (~0.75 GMAC/s
 * here: 6 ms for a [64, 4, 4, 32] dy and a 3x3x16x32 filter). Same values up to float rounding
 * (another summation order). A 1x1 stride-1 convolution needs no scatter: the product is dx. Returns null for what it does not handle (NCHW, non-float32), which
 * the stock kernel then runs.
 */
export function wasmConv2DBackpropInput(args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackendLike; attrs: BackpropInputAttrs }): TensorInfo | null {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  if ((dataFormat !== undefined && dataFormat !== 'NHWC') || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const geometry = convGeometry(inputShape, filter.shape as [number, number, number, number], strides, pad, dimRoundingMode);
  const { H, W, Ho, Wo, Co, kh, kw, sh, sw, top, left, M, K } = geometry;
  const matMul = tf.getKernel('BatchMatMul', 'wasm');
  if (!matMul) return null;
  const dy2 = { dataId: dy.dataId, shape: [M, Co], dtype: dy.dtype };
  const w2 = { dataId: filter.dataId, shape: [K, Co], dtype: filter.dtype };
  const cols = (matMul.kernelFunc as any)({ inputs: { a: dy2, b: w2 }, backend, attrs: { transposeA: false, transposeB: true } }) as TensorInfo;
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0 && Ho === H && Wo === W) {
    // a 1x1 stride-1 convolution: every patch row is its own input position, cols is dx
    cols.shape = [...inputShape];
    return cols;
  }
  const dx = backend.makeOutput([...inputShape], 'float32');
  // Views after makeOutput (which may grow the heap and detach earlier views).
  const dxV = backend.typedArrayFromHeap(dx) as Float32Array;
  const colsV = backend.typedArrayFromHeap(cols) as Float32Array;
  col2im(geometry, colsV, dxV);
  backend.disposeData(cols.dataId);
  return dx;
}

let inputRegistered = false;

/**
 * Replace wasm's Conv2DBackpropInput by {@link wasmConv2DBackpropInput} (the stock kernel kept for
 * what it does not handle). Idempotent; does nothing until tfjs-backend-wasm has registered its kernel.
 */
export function registerFastWasmConv2DBackpropInput(): void {
  if (inputRegistered) return;
  const stock = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (!stock) return;
  inputRegistered = true;
  tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: ((args: any) => wasmConv2DBackpropInput(args) ?? (stock.kernelFunc as any)(args)) as any,
  });
}

let registered = false;

/**
 * Register Conv2DBackpropFilter and the two depthwise backprops (wasm_depthwise_kernels.ts) on wasm
 * (which lacks them), replace wasm's Conv2DBackpropInput once tfjs-backend-wasm is loaded
 * ({@link registerFastWasmConv2DBackpropInput}), and replace the cpu backend's slow Conv2DBackpropFilter (kept for what this
 * one does not handle: NCHW). Idempotent; needs no backend to be ready.
 */
export function registerWasmConvKernels(): void {
  registerFastWasmConv2DBackpropInput();
  if (registered) return;
  registered = true;
  registerWasmDepthwiseKernels();
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: wasmConv2DBackpropFilter as any });
  }
  const stockCpu = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  if (stockCpu) {
    tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'cpu',
      kernelFunc: ((args: any) =>
        (args.attrs.dataFormat ?? 'NHWC') === 'NHWC' && args.inputs.x.dtype === 'float32' ? cpuConv2DBackpropFilter(args) : (stockCpu.kernelFunc as any)(args)) as any,
    });
  }
}
