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
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { SPLITS, type Datasets, type SplitName } from '../base';
import { TensorBatchStream } from './batch_streams';
import { cachedDatasets } from './cache';
import { downloadFiles } from './download';
import { readIdxImagesAndLabels, writeCacheFile } from './idx';
import { preprocessImagesArray } from './image_preprocessing';
import { SplitDatasets } from './splits';

/** File names of the four gzipped Fashion-MNIST IDX files (train/test images and labels). */
export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

/** Mirrors the Fashion-MNIST files are downloaded from, tried in order. */
export const FASHION_MNIST_URLS = [
  'https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/',
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
];

/** Where the Debian package `dataset-fashion-mnist` installs the files. */
export const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Download cache for Fashion-MNIST: `$XDG_CACHE_HOME/lopt/fashion-mnist` (default
 * `~/.cache/lopt/fashion-mnist`).
 */
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

/**
 * Thrown when a dataset's files are in none of the searched directories; the message says where it looked and
 * how to install them.
 */
export class DatasetNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetNotFoundError';
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
      downloadFiles(cache, Object.values(FASHION_MNIST_FILES), FASHION_MNIST_URLS);
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

/** The number of examples in the train and test files. */
const TRAIN_FILE_COUNT = 60000;
const TEST_FILE_COUNT = 10000;

/** Raw uint8 arrays of the train (60k) and test (10k) files, read once per process and dir. */
const RAW_CACHE = new Map<string, { train: ReturnType<typeof readIdxImagesAndLabels>; test: ReturnType<typeof readIdxImagesAndLabels> }>();

/**
 * The raw Fashion-MNIST train (60000) and test (10000) files as uint8 arrays (images row-major
 * `[n, 28, 28]`, labels `[n]`), from `dir` or {@link findFashionMnistDir}; read once per process and directory.
 */
export function loadFashionMnistRaw(dir?: string) {
  const d = dir ?? findFashionMnistDir();
  let raw = RAW_CACHE.get(d);
  if (!raw) {
    const f = FASHION_MNIST_FILES;
    raw = {
      train: readIdxImagesAndLabels(path.join(d, f.trainImages), path.join(d, f.trainLabels), TRAIN_FILE_COUNT),
      test: readIdxImagesAndLabels(path.join(d, f.testImages), path.join(d, f.testLabels), TEST_FILE_COUNT),
    };
    RAW_CACHE.set(d, raw);
  }
  return raw;
}

/** Where the train file of n examples is cut: train = [0, a), inner_valid = [a, b), outer_valid = [b, n). */
function trainFileSplitBounds(n: number): [number, number] {
  return [Math.round(n * 0.8), Math.round(n * 0.9)];
}

const [TRAIN_END, INNER_END] = trainFileSplitBounds(TRAIN_FILE_COUNT);

/** The number of examples of each split (the files hold 60,000 and 10,000). */
export const FASHION_MNIST_SPLIT_SIZES: Record<SplitName, number> = {
  train: TRAIN_END,
  inner_valid: INNER_END - TRAIN_END,
  outer_valid: TRAIN_FILE_COUNT - INNER_END,
  test: TEST_FILE_COUNT,
};

const PREPROCESSED = new Map<string, Record<SplitName, { image: tf.Tensor; label: tf.Tensor }>>();

/** Fashion-MNIST's train and test files resized and scaled (`[n, H, W, 1]` float32) with their labels. */
export interface PreprocessedFashionMnist {
  train: { images: Float32Array; labels: Uint8Array };
  test: { images: Float32Array; labels: Uint8Array };
}

const PREPROCESSED_MAGIC = 0x4c464d31; // 'LFM1': the layout below

/**
 * Where the preprocessed arrays of the four files in `dir` at `imageSize` are kept:
 * `$XDG_CACHE_HOME/lopt/fashion-mnist-preprocessed/` (default `~/.cache`), named by the files'
 * absolute paths, sizes and modification times, so changed files are preprocessed again; null when
 * `LOPT_NO_DECODE_CACHE=1`.
 */
export function preprocessedFashionMnistCachePath(dir: string, imageSize: [number, number]): string | null {
  if (process.env.LOPT_NO_DECODE_CACHE === '1') return null;
  const hash = createHash('sha1').update(`${PREPROCESSED_MAGIC}|${imageSize.join('x')}`);
  for (const f of Object.values(FASHION_MNIST_FILES)) {
    const file = path.resolve(dir, f);
    const st = fs.statSync(file);
    hash.update(`|${file}|${st.size}|${st.mtimeMs}`);
  }
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lopt', 'fashion-mnist-preprocessed', `${imageSize.join('x')}-${hash.digest('hex').slice(0, 16)}.bin`);
}

/** The cache file's bytes: [magic, train n, test n, H, W] as int32, both image arrays, both label arrays. */
function encodePreprocessed(p: PreprocessedFashionMnist, imageSize: [number, number]): Buffer {
  const head = Int32Array.from([PREPROCESSED_MAGIC, p.train.labels.length, p.test.labels.length, imageSize[0], imageSize[1]]);
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return Buffer.concat([bytes(head), bytes(p.train.images), bytes(p.test.images), bytes(p.train.labels), bytes(p.test.labels)]);
}

/** The arrays of a cache file, or null when it is not one for `imageSize` (torn, foreign, another layout). */
function decodePreprocessed(buf: Buffer, imageSize: [number, number]): PreprocessedFashionMnist | null {
  if (buf.length < 20) return null;
  const [magic, nTrain, nTest, H, W] = Array.from({ length: 5 }, (_, i) => buf.readInt32LE(4 * i));
  if (magic !== PREPROCESSED_MAGIC || H !== imageSize[0] || W !== imageSize[1] || nTrain < 0 || nTest < 0) return null;
  const px = H * W;
  if (buf.length !== 20 + 4 * px * (nTrain + nTest) + nTrain + nTest) return null;
  // copies into aligned arrays (a Buffer's offset need not be a multiple of 4)
  const floats = (at: number, n: number) => new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + 4 * n));
  const trainImagesAt = 20;
  const testImagesAt = trainImagesAt + 4 * px * nTrain;
  const labelsAt = testImagesAt + 4 * px * nTest;
  return {
    train: { images: floats(trainImagesAt, px * nTrain), labels: Uint8Array.from(buf.subarray(labelsAt, labelsAt + nTrain)) },
    test: { images: floats(testImagesAt, px * nTest), labels: Uint8Array.from(buf.subarray(labelsAt + nTrain, labelsAt + nTrain + nTest)) },
  };
}

/**
 * The train and test files resized to `imageSize` and scaled, as host arrays. Kept in a cache file
 * ({@link preprocessedFashionMnistCachePath}) and read from there next time: reading the 55 MB of
 * decoded images and resizing them to 8x8 takes ~0.3 s, and every process and branch thread of a
 * run does it at start-up; the cached 18 MB, ~20 ms. A cache that cannot be read or written is not used.
 */
export function preprocessedFashionMnist(dir: string, imageSize: [number, number]): PreprocessedFashionMnist {
  const cached = preprocessedFashionMnistCachePath(dir, imageSize);
  if (cached && fs.existsSync(cached)) {
    try {
      const hit = decodePreprocessed(fs.readFileSync(cached), imageSize);
      if (hit) return hit;
    } catch {
      // unreadable: preprocess again (and rewrite it below)
    }
  }
  const raw = loadFashionMnistRaw(dir);
  const prep = (r: (typeof raw)['train']) => ({ images: preprocessImagesArray(r.images, r.count, r.height, r.width, imageSize), labels: r.labels });
  const out = { train: prep(raw.train), test: prep(raw.test) };
  if (cached) writeCacheFile(cached, encodePreprocessed(out, imageSize));
  return out;
}

/** The four preprocessed splits as tensors, built once per process per image size. */
export function fashionMnistSplits(imageSize: [number, number], dir?: string): Record<SplitName, { image: tf.Tensor; label: tf.Tensor }> {
  const key = `${dir ?? ''}|${imageSize.join('x')}`;
  let splits = PREPROCESSED.get(key);
  if (!splits) {
    const p = preprocessedFashionMnist(dir ?? findFashionMnistDir(), imageSize);
    const [H, W] = imageSize;
    const all = tf.tensor4d(p.train.images, [p.train.labels.length, H, W, 1]);
    const labels = tf.tensor1d(Int32Array.from(p.train.labels), 'int32');
    const n = p.train.labels.length;
    const [a, b] = trainFileSplitBounds(n);
    const slice = (lo: number, hi: number) => ({
      image: tf.slice(all, [lo, 0, 0, 0], [hi - lo, -1, -1, -1]),
      label: tf.slice(labels, [lo], [hi - lo]),
    });
    splits = {
      train: slice(0, a),
      inner_valid: slice(a, b),
      outer_valid: slice(b, n),
      test: {
        image: tf.tensor4d(p.test.images, [p.test.labels.length, H, W, 1]),
        label: tf.tensor1d(Int32Array.from(p.test.labels), 'int32'),
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
    // the splits' sizes are the files' (checked when loaded): a stream's order needs no data
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [s, new TensorBatchStream(() => ({ ...fashionMnistSplits(imageSize)[s] }), batchSize, abstract, i, FASHION_MNIST_SPLIT_SIZES[s])]),
    ) as Record<SplitName, TensorBatchStream>;
    return new SplitDatasets(streams, { num_classes: 10, name: 'fashion_mnist', image_size: imageSize, batch_size: batchSize });
  });
}

/** Datasets by name; only `fashion_mnist` ships with the lib. */
export function imageDatasets(name: string, batchSize: number, imageSize: [number, number]): Datasets {
  if (name === 'fashion_mnist') return fashionMnistDatasets(batchSize, imageSize);
  throw new Error(`unknown image dataset '${name}'; allowed: fashion_mnist`);
}
