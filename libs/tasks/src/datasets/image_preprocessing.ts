/** Image preprocessing as the reference's datasets do it (TF's resize, then float32 in [0, 1]). */
import * as tf from '@tensorflow/tfjs';

/**
 * `tf.image.resize(images, [H, W])` (TF2: bilinear, half-pixel centers, no antialias) of uint8
 * images `[n, h, w, channels]` (channels last), computed on the host straight from the bytes, then `/255`.
 * Same arithmetic as `tf.image.resizeBilinear(x, [H, W], false, true)`: source coordinate
 * `(i + 0.5)·h/H − 0.5`, neighbours `max(floor, 0)` and `min(ceil, h − 1)`, weight `frac`.
 */
export function resizeBilinearHalfPixel(images: Uint8Array, n: number, h: number, w: number, imageSize: [number, number], channels = 1): Float32Array {
  const [H, W] = imageSize;
  const C = channels;
  const out = new Float32Array(n * H * W * C);
  const axis = (inSize: number, outSize: number) => {
    const lo = new Int32Array(outSize);
    const hi = new Int32Array(outSize);
    const fr = new Float64Array(outSize);
    const scale = inSize / outSize;
    for (let i = 0; i < outSize; i++) {
      const src = (i + 0.5) * scale - 0.5;
      const f = Math.floor(src);
      lo[i] = Math.max(0, f);
      hi[i] = Math.min(inSize - 1, Math.ceil(src));
      fr[i] = src - f;
    }
    return { lo, hi, fr };
  };
  const ry = axis(h, H);
  const rx = axis(w, W);
  const plane = h * w * C;
  for (let k = 0; k < n; k++) {
    const base = k * plane;
    for (let y = 0; y < H; y++) {
      const top = base + ry.lo[y] * w * C;
      const bot = base + ry.hi[y] * w * C;
      const fy = ry.fr[y];
      for (let x = 0; x < W; x++) {
        const l = rx.lo[x] * C;
        const r = rx.hi[x] * C;
        const fx = rx.fr[x];
        const o = ((k * H + y) * W + x) * C;
        for (let c = 0; c < C; c++) {
          const t = images[top + l + c] + (images[top + r + c] - images[top + l + c]) * fx;
          const b = images[bot + l + c] + (images[bot + r + c] - images[bot + l + c]) * fx;
          out[o + c] = Math.fround(t + (b - t) * fy) / 255;
        }
      }
    }
  }
  return out;
}

/** uint8 images `[n, h, w, channels]` -> float32 tensor `[n, H, W, channels]` in [0, 1] (resized when the size differs). */
export function preprocessImages(images: Uint8Array, n: number, h: number, w: number, imageSize: [number, number], channels = 1): tf.Tensor4D {
  return tf.tensor4d(preprocessImagesArray(images, n, h, w, imageSize, channels), [n, imageSize[0], imageSize[1], channels]);
}

/** {@link preprocessImages}'s values as a host array (row-major `[n, imageSize, channels]`). */
export function preprocessImagesArray(images: Uint8Array, n: number, h: number, w: number, imageSize: [number, number], channels = 1): Float32Array {
  const [H, W] = imageSize;
  if (H === h && W === w) {
    const f = new Float32Array(n * h * w * channels);
    for (let i = 0; i < f.length; i++) f[i] = images[i] / 255;
    return f;
  }
  return resizeBilinearHalfPixel(images, n, h, w, imageSize, channels);
}
