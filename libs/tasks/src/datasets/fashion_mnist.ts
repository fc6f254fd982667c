/**
 * Fashion-MNIST from the standard IDX gzip files (reference `tasks/datasets/image.py`,
 * `fashion_mnist_datasets`, loaded by `tasks/datasets/base.py`,
 * `preload_tfds_image_classification_datasets`).
 *
 * Files are looked for in: `$LOPT_DATA_DIR`, `/usr/share/datasets/fashion-mnist` (Debian package
 * `dataset-fashion-mnist`), `~/.cache/lopt/fashion-mnist`; failing those, a download into the cache
 * is tried (short timeout), then an error says how to get them.
 *
 * Preprocessing as the reference: `tf.image.resize` (bilinear, half-pixel centers, no antialias)
 * of the uint8 images to `imageSize`, cast float32, `/255`; labels int32. Splits: train = first 80%
 * of the 60k train file, inner_valid = next 10%, outer_valid = last 10%, test = the 10k test file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { SPLITS, type Datasets, type SplitName } from '../base';
import { cachedDatasets, SplitDatasets, TensorBatchStream } from './base';
import { readIdxImagesAndLabels } from './idx';

export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

export const FASHION_MNIST_URLS = [
  'https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/',
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
];

export const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export function fashionMnistCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lopt', 'fashion-mnist');
}

/** Directories searched, in order. */
export function fashionMnistSearchDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.LOPT_DATA_DIR) {
    dirs.push(process.env.LOPT_DATA_DIR, path.join(process.env.LOPT_DATA_DIR, 'fashion-mnist'));
  }
  dirs.push(SYSTEM_FASHION_MNIST_DIR, fashionMnistCacheDir());
  return dirs;
}

function hasAll(dir: string): boolean {
  return Object.values(FASHION_MNIST_FILES).every((f) => fs.existsSync(path.join(dir, f)));
}

export class DatasetNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetNotFoundError';
  }
}

/**
 * Download the four files into `dir` (synchronously, in a child process, so dataset loading
 * stays synchronous). Gives up on a mirror when no response arrives within `timeoutMs`.
 */
export function downloadFashionMnist(dir: string, timeoutMs = 10000): void {
  fs.mkdirSync(dir, { recursive: true });
  const script = `
    const fs = require('fs'), path = require('path');
    const [dir, timeout, ...rest] = process.argv.slice(1);
    const files = rest.slice(0, 4), urls = rest.slice(4);
    (async () => {
      let lastErr;
      for (const base of urls) {
        try {
          for (const f of files) {
            const ctrl = new AbortController();
            const t = setTimeout(() => ctrl.abort(), Number(timeout));
            const res = await fetch(base + f, { signal: ctrl.signal });
            if (!res.ok) throw new Error(base + f + ': HTTP ' + res.status);
            clearTimeout(t);
            const buf = Buffer.from(await res.arrayBuffer());
            fs.writeFileSync(path.join(dir, f + '.part'), buf);
            fs.renameSync(path.join(dir, f + '.part'), path.join(dir, f));
          }
          return;
        } catch (e) { lastErr = e; }
      }
      console.error(String(lastErr && (lastErr.cause || lastErr.message || lastErr)));
      process.exit(1);
    })();`;
  try {
    execFileSync(
      process.execPath,
      ['-e', script, dir, String(timeoutMs), ...Object.values(FASHION_MNIST_FILES), ...FASHION_MNIST_URLS],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10 * 60 * 1000 },
    );
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`download failed: ${stderr || (e as Error).message}`);
  }
}

/**
 * The directory holding the four Fashion-MNIST files; downloads into the cache when none has them
 * (unless `download` is false or `LOPT_NO_DOWNLOAD=1`).
 */
export function findFashionMnistDir(opts: { dirs?: string[]; download?: boolean } = {}): string {
  const dirs = opts.dirs ?? fashionMnistSearchDirs();
  for (const d of dirs) if (hasAll(d)) return d;
  const download = opts.download ?? process.env.LOPT_NO_DOWNLOAD !== '1';
  let why = 'download disabled';
  if (download) {
    const cache = fashionMnistCacheDir();
    try {
      downloadFashionMnist(cache);
      if (hasAll(cache)) return cache;
      why = 'download finished without the files';
    } catch (e) {
      why = (e as Error).message;
    }
  }
  throw new DatasetNotFoundError(
    `Fashion-MNIST not found: looked for ${Object.values(FASHION_MNIST_FILES).join(', ')} in ` +
      `${dirs.join(', ')} (${why}). Install the Debian package (sudo apt-get install dataset-fashion-mnist), ` +
      `or download the four files from ${FASHION_MNIST_URLS[0]} and put them in a directory named by LOPT_DATA_DIR.`,
  );
}

/** Raw uint8 arrays of the train (60k) and test (10k) files, read once per process and dir. */
const RAW_CACHE = new Map<string, { train: ReturnType<typeof readIdxImagesAndLabels>; test: ReturnType<typeof readIdxImagesAndLabels> }>();

export function loadFashionMnistRaw(dir?: string) {
  const d = dir ?? findFashionMnistDir();
  let raw = RAW_CACHE.get(d);
  if (!raw) {
    const f = FASHION_MNIST_FILES;
    raw = {
      train: readIdxImagesAndLabels(path.join(d, f.trainImages), path.join(d, f.trainLabels), 60000),
      test: readIdxImagesAndLabels(path.join(d, f.testImages), path.join(d, f.testLabels), 10000),
    };
    RAW_CACHE.set(d, raw);
  }
  return raw;
}

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

const PREPROCESSED = new Map<string, Record<SplitName, { image: tf.Tensor; label: tf.Tensor }>>();

/** The four preprocessed splits as tensors, built once per process per image size. */
export function fashionMnistSplits(imageSize: [number, number], dir?: string): Record<SplitName, { image: tf.Tensor; label: tf.Tensor }> {
  const key = `${dir ?? ''}|${imageSize.join('x')}`;
  let splits = PREPROCESSED.get(key);
  if (!splits) {
    const raw = loadFashionMnistRaw(dir);
    const tr = raw.train;
    const te = raw.test;
    const all = preprocessImages(tr.images, tr.count, tr.height, tr.width, imageSize);
    const labels = tf.tensor1d(Int32Array.from(tr.labels), 'int32');
    const n = tr.count;
    const a = Math.round(n * 0.8);
    const b = Math.round(n * 0.9);
    const slice = (lo: number, hi: number) => ({
      image: tf.slice(all, [lo, 0, 0, 0], [hi - lo, -1, -1, -1]),
      label: tf.slice(labels, [lo], [hi - lo]),
    });
    splits = {
      train: slice(0, a),
      inner_valid: slice(a, b),
      outer_valid: slice(b, n),
      test: {
        image: preprocessImages(te.images, te.count, te.height, te.width, imageSize),
        label: tf.tensor1d(Int32Array.from(te.labels), 'int32'),
      },
    };
    all.dispose();
    labels.dispose();
    for (const s of Object.values(splits)) {
      tf.keep(s.image);
      tf.keep(s.label);
    }
    PREPROCESSED.set(key, splits);
  }
  return splits;
}

/**
 * `fashion_mnist_datasets(batch_size, image_size)`: cached per (batch size, image size), so all
 * tasks share one stream per split. Data is loaded on the first `next()`.
 */
export function fashionMnistDatasets(batchSize = 128, imageSize: [number, number] = [28, 28]): Datasets {
  return cachedDatasets(`fashion_mnist|${batchSize}|${imageSize.join('x')}`, () => {
    const abstract = {
      image: { shape: [imageSize[0], imageSize[1], 1], dtype: 'float32' as tf.DataType },
      label: { shape: [], dtype: 'int32' as tf.DataType },
    };
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [s, new TensorBatchStream(() => ({ ...fashionMnistSplits(imageSize)[s] }), batchSize, abstract, i)]),
    ) as Record<SplitName, TensorBatchStream>;
    return new SplitDatasets(streams, { num_classes: 10, name: 'fashion_mnist', image_size: imageSize, batch_size: batchSize });
  });
}

/** Datasets by name; only `fashion_mnist` ships with the lib. */
export function imageDatasets(name: string, batchSize: number, imageSize: [number, number]): Datasets {
  if (name === 'fashion_mnist') return fashionMnistDatasets(batchSize, imageSize);
  throw new Error(`unknown image dataset '${name}'; allowed: fashion_mnist`);
}
