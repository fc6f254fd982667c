/**
 * MaxPoolGrad and MaxPoolWithArgmax for the wasm backend (registered by `initBackend('wasm')`), and
 * AvgPoolGrad for the wasm and cpu backends (`registerAvgPoolGradKernels`, below).
 *
 * tfjs-backend-wasm 4.22's two kernels pick the wrong element in windows that SAME padding places
 * before the map (an odd-sized map, or a window wider than its stride): on a 5x5 map with a 3x3
 * stride-2 SAME pool its MaxPoolGrad sent dy 0.17 away from the cpu backend's gradient, and its
 * MaxPoolWithArgmax returned maxima that are not the window's (measured against tfjs-backend-cpu;
 * tf.maxPool itself, XNNPACK, is right). These versions follow the cpu backend's
 * `maxPoolPositions`: each window's first element, in row-major order, strictly above all before
 * it (a window of NaN / −∞ only has none); MaxPoolGrad sends each dy there, MaxPoolWithArgmax
 * returns its value and flat index. The two agree with each other, which the gradient of
 * MaxPoolGrad (higher_order_gradients.ts) relies on. Host loops over views of the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = { dataId: object; dtype: tf.DataType; shape: number[] };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}
type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

/**
 * Calls `fn` for every output position `(b, yR, yC)`, in the output's order, with the in-map rows
 * `[rMin, rMax)` and columns `[cMin, cMax)` of its window (stepped by the dilation) and the flat
 * index `o` of its first channel in the output.
 */
function forEachWindow(info: PoolInfo, fn: (b: number, rMin: number, rMax: number, cMin: number, cMax: number, o: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const rCorner = yR * strideHeight - info.padInfo.top;
      let rMin = rCorner;
      while (rMin < 0) rMin += dilationHeight;
      const rMax = Math.min(inHeight, info.effectiveFilterHeight + rCorner);
      for (let yC = 0; yC < outWidth; yC++, o += c) {
        const cCorner = yC * strideWidth - info.padInfo.left;
        let cMin = cCorner;
        while (cMin < 0) cMin += dilationWidth;
        fn(b, rMin, rMax, cMin, Math.min(inWidth, info.effectiveFilterWidth + cCorner), o);
      }
    }
  }
}

/**
 * The flat index (`((b·H + r)·W + c)·C + d`) of each output's maximum, in the output's order
 * `[b, outH, outW, C]`; −1 where a window has no element above −∞ (or only NaN).
 */
export function maxPoolArgmax(xs: ArrayLike<number>, info: PoolInfo): Int32Array {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, dilationHeight, dilationWidth } = info;
  const pos = new Int32Array(batchSize * outHeight * outWidth * c);
  forEachWindow(info, (b, rMin, rMax, cMin, cMax, o) => {
    for (let d = 0; d < c; d++) {
      let best = Number.NEGATIVE_INFINITY;
      let at = -1;
      for (let r = rMin; r < rMax; r += dilationHeight) {
        for (let col = cMin; col < cMax; col += dilationWidth) {
          const i = ((b * inHeight + r) * inWidth + col) * c + d;
          if (xs[i] > best) {
            best = xs[i];
            at = i;
          }
        }
      }
      pos[o + d] = at;
    }
  });
  return pos;
}

/**
 * dx of an average pool: each dy divided by the number of its window's elements inside the map and
 * added to each of them — what the forward divides by (tf.js's cpu `pool` and XNNPACK both average
 * over the in-map elements only). `dx` is overwritten.
 */
export function avgPoolGradValues(dy: ArrayLike<number>, info: PoolInfo, dx: Float32Array): void {
  const { inHeight, inWidth, inChannels: c, dilationHeight, dilationWidth } = info;
  dx.fill(0);
  forEachWindow(info, (b, rMin, rMax, cMin, cMax, o) => {
    const count = Math.ceil((rMax - rMin) / dilationHeight) * Math.ceil((cMax - cMin) / dilationWidth);
    if (count <= 0) return;
    for (let d = 0; d < c; d++) {
      const v = dy[o + d] / count;
      for (let r = rMin; r < rMax; r += dilationHeight) {
        for (let col = cMin; col < cMax; col += dilationWidth) dx[((b * inHeight + r) * inWidth + col) * c + d] += v;
      }
    }
  });
}

const avgRegistered = new Set<string>();

/**
 * AvgPoolGrad for the cpu or the wasm backend (registered by `initBackend` once the backend is
 * loaded: a package registering its kernels later would put its own back). tf.js 4.22's own
 * divide every dy by the full window, while the forward divides by the window's elements inside
 * the map: under SAME padding the gradient was wrong at the borders (a 3x3 stride-2 SAME pool of
 * a 5x5 map gave 1/9 at a corner where 1/4 is right; off finite differences by up to 0.18). These
 * follow the forward (`avgPoolGradValues`); VALID padding gives the same values as before.
 * Idempotent per backend.
 */
export function registerAvgPoolGradKernels(backendName: 'cpu' | 'wasm'): void {
  if (avgRegistered.has(backendName)) return;
  avgRegistered.add(backendName);
  const infoOf = (input: TensorInfo, attrs: Record<string, any>) =>
    tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  if (tf.getKernel('AvgPoolGrad', backendName)) tf.unregisterKernel('AvgPoolGrad', backendName);
  if (backendName === 'wasm') {
    tf.registerKernel({
      kernelName: 'AvgPoolGrad',
      backendName,
      kernelFunc: (({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: WasmBackendLike; attrs: Record<string, any> }) => {
        const { dy, input } = inputs;
        const out = backend.makeOutput(input.shape, 'float32');
        // views after makeOutput, which may grow the heap and detach earlier ones
        avgPoolGradValues(backend.typedArrayFromHeap(dy), infoOf(input, attrs), backend.typedArrayFromHeap(out) as Float32Array);
        return out;
      }) as any,
    });
    return;
  }
  tf.registerKernel({
    kernelName: 'AvgPoolGrad',
    backendName,
    kernelFunc: (({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: any; attrs: Record<string, any> }) => {
      const { dy, input } = inputs;
      const dx = new Float32Array(input.shape.reduce((a, b) => a * b, 1));
      avgPoolGradValues(backend.data.get(dy.dataId).values, infoOf(input, attrs), dx);
      return backend.makeTensorInfo(input.shape, 'float32', dx);
    }) as any,
  });
}

let registered = false;

/** Replaces the wasm backend's MaxPoolGrad and MaxPoolWithArgmax (see the file comment); idempotent. */
export function registerWasmPoolKernels(): void {
  if (registered) return;
  registered = true;
  const register = (kernelName: string, kernelFunc: (args: { inputs: Record<string, TensorInfo>; backend: WasmBackendLike; attrs: Record<string, any> }) => TensorInfo | TensorInfo[]) => {
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as any });
  };
  register('MaxPoolGrad', ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs;
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const out = backend.makeOutput(input.shape, input.dtype);
    // views after makeOutput, which may grow the heap and detach earlier ones
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    const pos = maxPoolArgmax(backend.typedArrayFromHeap(input), info);
    const ds = backend.typedArrayFromHeap(dy) as Float32Array;
    dx.fill(0);
    for (let o = 0; o < pos.length; o++) if (pos[o] >= 0) dx[pos[o]] += ds[o];
    return out;
  });
  register('MaxPoolWithArgmax', ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs.filterSize, attrs.strides, [1, 1], attrs.pad);
    const result = backend.makeOutput(info.outShape, x.dtype);
    const indexes = backend.makeOutput(info.outShape, 'int32');
    const xs = backend.typedArrayFromHeap(x);
    const pos = maxPoolArgmax(xs, info);
    const ys = backend.typedArrayFromHeap(result);
    const is = backend.typedArrayFromHeap(indexes) as Int32Array;
    const perImage = info.inHeight * info.inWidth * info.inChannels;
    for (let o = 0; o < pos.length; o++) {
      const p = pos[o];
      ys[o] = p >= 0 ? xs[p] : Number.NEGATIVE_INFINITY;
      // without the batch in the index: the position inside its image (as the cpu backend)
      is[o] = p < 0 || attrs.includeBatchInIndex ? p : p % perImage;
    }
    return [result, indexes];
  });
}
