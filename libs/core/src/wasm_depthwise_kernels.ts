/**
 * `DepthwiseConv2dNativeBackpropInput` and `DepthwiseConv2dNativeBackpropFilter` for the wasm
 * backend, which has the depthwise convolution (`DepthwiseConv2dNative`) but neither of its
 * gradients, so `tf.grads` through `tf.depthwiseConv2d` fails there with "... not registered".
 *
 * With the forward `y[b, oy, ox, c·M + q] = Σ_{i,j} x[b, oy·sh + i·dh − top, ox·sw + j·dw − left, c] · f[i, j, c, q]`
 * (M = channel multiplier, 0 outside the input), the two gradients are the same sums read the other
 * way round:
 *
 *   dx[b, iy, ix, c] = Σ_{oy,ox,i,j,q : iy = oy·sh + i·dh − top, ix = ox·sw + j·dw − left} dy[b, oy, ox, c·M + q] · f[i, j, c, q]
 *   df[i, j, c, q]   = Σ_{b,oy,ox} x[b, oy·sh + i·dh − top, ox·sw + j·dw − left, c] · dy[b, oy, ox, c·M + q]
 *
 * A depthwise convolution costs kh·kw multiply-adds per output value (no sum over channels), so
 * plain loops over views of the wasm heap are enough; they are written to walk dy and the output
 * in memory order. NHWC only (the only layout tf.js's depthwise kernels take), float32.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}
interface DepthwiseBackpropAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | number[][];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** tf.js's geometry of the depthwise convolution that has input `xShape` and filter `fShape`. */
function geometry(xShape: number[], fShape: number[], attrs: DepthwiseBackpropAttrs) {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    fShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad as any,
    attrs.dimRoundingMode,
    true,
  );
  return { ...info, top: info.padInfo.top, left: info.padInfo.left, mult: fShape[3] };
}

function checkFloat(kernel: string, ...ts: TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${kernel} (wasm): float32 only, got ${t.dtype}`);
}

/** dx of a depthwise convolution (NHWC): inputs dy, filter; attrs as tf.js's, with `inputShape`. */
export function wasmDepthwiseConv2dBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: WasmBackendLike;
  attrs: DepthwiseBackpropAttrs & { inputShape: [number, number, number, number] };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  checkFloat('DepthwiseConv2dNativeBackpropInput', inputs.dy, inputs.filter);
  const g = geometry(attrs.inputShape, inputs.filter.shape, attrs);
  const out = backend.makeOutput([...attrs.inputShape], 'float32');
  // Views after makeOutput (which may grow the heap and detach earlier views).
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const dy = backend.typedArrayFromHeap(inputs.dy) as Float32Array;
  const f = backend.typedArrayFromHeap(inputs.filter) as Float32Array;
  dx.fill(0);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, mult: M } = g;
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < Ho; oy++)
      for (let ox = 0; ox < Wo; ox++) {
        const dyRow = ((b * Ho + oy) * Wo + ox) * Co;
        for (let i = 0; i < g.filterHeight; i++) {
          const iy = oy * g.strideHeight + i * g.dilationHeight - g.top;
          if (iy < 0 || iy >= H) continue;
          for (let j = 0; j < g.filterWidth; j++) {
            const ix = ox * g.strideWidth + j * g.dilationWidth - g.left;
            if (ix < 0 || ix >= W) continue;
            const dxRow = ((b * H + iy) * W + ix) * C;
            const fRow = (i * g.filterWidth + j) * C * M;
            for (let c = 0; c < C; c++) {
              let s = 0;
              for (let q = 0; q < M; q++) s += dy[dyRow + c * M + q] * f[fRow + c * M + q];
              dx[dxRow + c] += s;
            }
          }
        }
      }
  return out;
}

/** df of a depthwise convolution (NHWC): inputs x, dy; attrs as tf.js's, with `filterShape`. */
export function wasmDepthwiseConv2dBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: WasmBackendLike;
  attrs: DepthwiseBackpropAttrs & { filterShape: [number, number, number, number] };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  checkFloat('DepthwiseConv2dNativeBackpropFilter', inputs.x, inputs.dy);
  const g = geometry(inputs.x.shape, attrs.filterShape, attrs);
  const out = backend.makeOutput([...attrs.filterShape], 'float32');
  const df = backend.typedArrayFromHeap(out) as Float32Array;
  const x = backend.typedArrayFromHeap(inputs.x) as Float32Array;
  const dy = backend.typedArrayFromHeap(inputs.dy) as Float32Array;
  df.fill(0);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, mult: M } = g;
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < Ho; oy++)
      for (let ox = 0; ox < Wo; ox++) {
        const dyRow = ((b * Ho + oy) * Wo + ox) * Co;
        for (let i = 0; i < g.filterHeight; i++) {
          const iy = oy * g.strideHeight + i * g.dilationHeight - g.top;
          if (iy < 0 || iy >= H) continue;
          for (let j = 0; j < g.filterWidth; j++) {
            const ix = ox * g.strideWidth + j * g.dilationWidth - g.left;
            if (ix < 0 || ix >= W) continue;
            const xRow = ((b * H + iy) * W + ix) * C;
            const fRow = (i * g.filterWidth + j) * C * M;
            for (let c = 0; c < C; c++) {
              const xv = x[xRow + c];
              for (let q = 0; q < M; q++) df[fRow + c * M + q] += xv * dy[dyRow + c * M + q];
            }
          }
        }
      }
  return out;
}

/** Register both on wasm where tf.js has none (idempotent; needs no backend to be ready). */
export function registerWasmDepthwiseKernels(): void {
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropInput', 'wasm')) {
    tf.registerKernel({ kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: wasmDepthwiseConv2dBackpropInput as any });
  }
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: wasmDepthwiseConv2dBackpropFilter as any });
  }
}
