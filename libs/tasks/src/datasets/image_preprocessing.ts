/** Image preprocessing as the reference's datasets do it (TF's resize, then float32 in [0, 1]). */
import * as tf from '@tensorflow/tfjs';

/**
 * `tf.image.resize(images, [H, W])` (TF2: bilinear, half-pixel centers, no antialias) of uint8
 * images `[n, h, w]` (one channel), computed on the host straight from the bytes, then `/255`.
 * Same arithmetic as `tf.image.resizeBilinear(x, [H, W], false, true)`: source coordinate
 * `(i + 0.5)·h/H − 0.5`, neighbours `max(floor, 0)` and `min(ceil, h − 1)`, weight `frac`.
 */
export function resizeBilinearHalfPixel(images: Uint8Array, n: number, h: number, w: number, imageSize: [number, number]): Float32Array {
  const [H, W] = imageSize;
  const out = new Float32Array(n * H * W);
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
  const plane = h * w;
  for (let k = 0; k < n; k++) {
    const base = k * plane;
    for (let y = 0; y < H; y++) {
      const top = base + ry.lo[y] * w;
      const bot = base + ry.hi[y] * w;
      const fy = ry.fr[y];
      for (let x = 0; x < W; x++) {
        const l = rx.lo[x];
        const r = rx.hi[x];
        const fx = rx.fr[x];
        const t = images[top + l] + (images[top + r] - images[top + l]) * fx;
        const b = images[bot + l] + (images[bot + r] - images[bot + l]) * fx;
        out[(k * H + y) * W + x] = Math.fround(t + (b - t) * fy) / 255;
      }
    }
  }
  return out;
}

/** uint8 images `[n, h, w]` -> float32 tensor `[n, H, W, 1]` in [0, 1] (resized when the size differs). */
export function preprocessImages(images: Uint8Array, n: number, h: number, w: number, imageSize: [number, number]): tf.Tensor4D {
  const [H, W] = imageSize;
  if (H === h && W === w) {
    const f = new Float32Array(n * h * w);
    for (let i = 0; i < f.length; i++) f[i] = images[i] / 255;
    return tf.tensor4d(f, [n, h, w, 1]);
  }
  return tf.tensor4d(resizeBilinearHalfPixel(images, n, h, w, imageSize), [n, H, W, 1]);
}
