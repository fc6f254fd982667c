/**
 * CIFAR-10 and CIFAR-100 from the standard binary versions (reference `tasks/datasets/image.py`,
 * `cifar10_datasets` and `cifar100_datasets`, loaded by `tasks/datasets/base.py`,
 * `preload_tfds_image_classification_datasets`).
 *
 * Files (the "binary version" archives from https://www.cs.toronto.edu/~kriz/cifar.html,
 * unpacked) are looked for under `$LOPT_DATA_DIR` and then `~/.cache/lopt`:
 * - `cifar-10-batches-bin/`: `data_batch_1.bin` … `data_batch_5.bin` (train, 50 000) and
 *   `test_batch.bin` (10 000); each record is 1 label byte then 3072 image bytes.
 * - `cifar-100-binary/`: `train.bin` (50 000) and `test.bin` (10 000); each record is a coarse
 *   label byte, a fine label byte, then 3072 image bytes. TFDS's `label` is the fine label (100 classes).
 * Images are stored channel-major (1024 red, 1024 green, 1024 blue, each 32x32 row-major); they
 * are turned into `[32, 32, 3]` channels last, as TFDS gives them.
 *
 * Preprocessing as the reference: `tf.image.resize` (bilinear, half-pixel centers) when
 * `imageSize` is not 32x32, cast float32, `/255`; labels int32.
 *
 * Splits (TFDS percent slices of the 50 000-image train file, and the test file):
 * - cifar10: train = `train[0:perc%]` with `perc = max(1, int(80·dataFraction))` (40 000 at
 *   dataFraction 1), inner_valid = `train[80%:90%]`, outer_valid = `train[90%:]`, test = `test`.
 * - cifar100: the same, but the reference computes `perc = min(1, int(80·dataFraction))`, so its
 *   train split is `train[0:1%]`: 500 images whatever dataFraction (a quirk kept as is).
 * TFDS stores examples in its own (hashed) order; lopt-ts slices the files in their own order
 * (the same choice as Fashion-MNIST), so the examples in each split differ from TFDS's.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { SPLITS, type Datasets, type SplitName } from '../base';
import { TensorBatchStream } from './batch_streams';
import { cachedDatasets } from './cache';
import { DatasetNotFoundError } from './fashion_mnist';
import { preprocessImages } from './image_preprocessing';
import { SplitDatasets } from './splits';

/** The CIFAR variants read from the binary distributions: `cifar10` or `cifar100`. */
export type CifarName = 'cifar10' | 'cifar100';

/**
 * Layout of each CIFAR binary distribution: folder, train and test file names, label bytes per record (1, or
 * 2 for CIFAR-100's coarse + fine) and class count.
 */
export const CIFAR_FILES: Record<CifarName, { folder: string; train: string[]; test: string[]; labelBytes: number; numClasses: number }> = {
  cifar10: {
    folder: 'cifar-10-batches-bin',
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
    labelBytes: 1,
    numClasses: 10,
  },
  cifar100: {
    folder: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    labelBytes: 2,
    numClasses: 100,
  },
};

const IMAGE_BYTES = 32 * 32 * 3;

/** Thrown for a CIFAR binary file whose size or labels do not fit the record format. */
export class CifarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CifarFormatError';
  }
}

/** Directories searched for `cifar-10-batches-bin/` / `cifar-100-binary/`, in order. */
export function cifarSearchDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.LOPT_DATA_DIR) dirs.push(process.env.LOPT_DATA_DIR);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  dirs.push(path.join(cache, 'lopt'));
  return dirs;
}

/** The folder holding every file of `name` (e.g. `$LOPT_DATA_DIR/cifar-10-batches-bin`), or a DatasetNotFoundError naming what was looked for. */
export function findCifarDir(name: CifarName, dirs: string[] = cifarSearchDirs()): string {
  const spec = CIFAR_FILES[name];
  const files = [...spec.train, ...spec.test];
  for (const d of dirs) {
    const folder = path.join(d, spec.folder);
    if (files.every((f) => fs.existsSync(path.join(folder, f)))) return folder;
  }
  throw new DatasetNotFoundError(
    `${name} not found: looked for ${spec.folder}/{${files.join(', ')}} in ${dirs.join(', ')}. ` +
      `Download the binary version (https://www.cs.toronto.edu/~kriz/${name === 'cifar10' ? 'cifar-10' : 'cifar-100'}-binary.tar.gz), ` +
      `unpack it into a directory and name that directory with LOPT_DATA_DIR (it must contain ${spec.folder}/).`,
  );
}

/** uint8 images `[n, 32, 32, 3]` (channels last) and labels (the fine label for CIFAR-100) of some record files. */
export function readCifarRecords(name: CifarName, files: string[]): { images: Uint8Array; labels: Int32Array; count: number } {
  const { labelBytes } = CIFAR_FILES[name];
  const record = labelBytes + IMAGE_BYTES;
  const bufs = files.map((f) => {
    const b = fs.readFileSync(f);
    if (b.length === 0 || b.length % record !== 0) {
      throw new CifarFormatError(`${f}: ${b.length} bytes is not a whole number of ${name} records (${record} bytes each)`);
    }
    return b;
  });
  const count = bufs.reduce((a, b) => a + b.length / record, 0);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Int32Array(count);
  let k = 0;
  for (const b of bufs) {
    for (let off = 0; off < b.length; off += record, k++) {
      const label = b[off + labelBytes - 1];
      if (label >= CIFAR_FILES[name].numClasses) throw new CifarFormatError(`${name}: label ${label} of record ${k} is out of range`);
      labels[k] = label;
      const src = off + labelBytes;
      const dst = k * IMAGE_BYTES;
      for (let p = 0; p < 1024; p++) {
        images[dst + 3 * p] = b[src + p];
        images[dst + 3 * p + 1] = b[src + 1024 + p];
        images[dst + 3 * p + 2] = b[src + 2048 + p];
      }
    }
  }
  return { images, labels, count };
}

/** TFDS's `split[a%:b%]` bounds of n examples (rounded to the closest example). */
function pctBounds(n: number, lo: number, hi: number): [number, number] {
  return [Math.round((n * lo) / 100), Math.round((n * hi) / 100)];
}

/** The reference's train percentage (see the file comment for CIFAR-100's `min`). */
export function cifarTrainPercent(name: CifarName, dataFraction = 1): number {
  const p = Math.trunc(80 * dataFraction);
  return name === 'cifar10' ? Math.max(1, p) : Math.min(1, p);
}

const PREPROCESSED = new Map<string, Record<SplitName, { image: tf.Tensor; label: tf.Tensor }>>();

/** The four preprocessed splits as tensors, built once per process per (dataset, dir, size, fraction). */
export function cifarSplits(
  name: CifarName,
  imageSize: [number, number],
  opts: { dir?: string; dataFraction?: number } = {},
): Record<SplitName, { image: tf.Tensor; label: tf.Tensor }> {
  const dir = opts.dir ?? findCifarDir(name);
  const perc = cifarTrainPercent(name, opts.dataFraction ?? 1);
  const key = `${name}|${dir}|${imageSize.join('x')}|${perc}`;
  let splits = PREPROCESSED.get(key);
  if (!splits) {
    const spec = CIFAR_FILES[name];
    const tr = readCifarRecords(name, spec.train.map((f) => path.join(dir, f)));
    const te = readCifarRecords(name, spec.test.map((f) => path.join(dir, f)));
    const n = tr.count;
    const part = (lo: number, hi: number) => {
      const [a, b] = pctBounds(n, lo, hi);
      return {
        image: preprocessImages(tr.images.subarray(a * IMAGE_BYTES, b * IMAGE_BYTES), b - a, 32, 32, imageSize, 3),
        label: tf.tensor1d(tr.labels.slice(a, b), 'int32'),
      };
    };
    splits = {
      train: part(0, perc),
      inner_valid: part(80, 90),
      outer_valid: part(90, 100),
      test: { image: preprocessImages(te.images, te.count, 32, 32, imageSize, 3), label: tf.tensor1d(te.labels, 'int32') },
    };
    for (const s of Object.values(splits)) {
      tf.keep(s.image);
      tf.keep(s.label);
    }
    PREPROCESSED.set(key, splits);
  }
  return splits;
}

/**
 * `cifar10_datasets(batch_size, image_size=(32, 32), data_fraction=1.)` /
 * `cifar100_datasets(...)`: cached per arguments, so all tasks share one stream per split. The
 * files are read on the first `next()` (a missing folder fails there, naming what it looked for).
 */
export function cifarDatasets(
  name: CifarName,
  batchSize = 128,
  imageSize: [number, number] = [32, 32],
  opts: { dir?: string; dataFraction?: number } = {},
): Datasets {
  return cachedDatasets(`${name}|${batchSize}|${imageSize.join('x')}|${opts.dir ?? ''}|${opts.dataFraction ?? 1}`, () => {
    const abstract = {
      image: { shape: [imageSize[0], imageSize[1], 3], dtype: 'float32' as tf.DataType },
      label: { shape: [], dtype: 'int32' as tf.DataType },
    };
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [s, new TensorBatchStream(() => ({ ...cifarSplits(name, imageSize, opts)[s] }), batchSize, abstract, i)]),
    ) as Record<SplitName, TensorBatchStream>;
    return new SplitDatasets(streams, { num_classes: CIFAR_FILES[name].numClasses, name, image_size: imageSize, batch_size: batchSize });
  });
}

/**
 * CIFAR-10 datasets (reference `tasks/datasets/image.py`, `cifar10_datasets`): batches `{image [B, h, w, 3]
 * float32, label [B] int32}` at `imageSize`.
 */
export function cifar10Datasets(batchSize = 128, imageSize: [number, number] = [32, 32], opts: { dir?: string; dataFraction?: number } = {}): Datasets {
  return cifarDatasets('cifar10', batchSize, imageSize, opts);
}

/**
 * CIFAR-100 datasets (reference `tasks/datasets/image.py`, `cifar100_datasets`, fine labels): batches `{image
 * [B, h, w, 3] float32, label [B] int32}` at `imageSize`.
 */
export function cifar100Datasets(batchSize = 128, imageSize: [number, number] = [32, 32], opts: { dir?: string; dataFraction?: number } = {}): Datasets {
  return cifarDatasets('cifar100', batchSize, imageSize, opts);
}

/** Write CIFAR binary records (used to build test fixtures): images `[n, 32, 32, 3]` channels last. */
export function encodeCifarRecords(name: CifarName, images: Uint8Array, labels: ArrayLike<number>, coarse?: ArrayLike<number>): Buffer {
  const { labelBytes } = CIFAR_FILES[name];
  const n = labels.length;
  const record = labelBytes + IMAGE_BYTES;
  const out = Buffer.alloc(n * record);
  for (let k = 0; k < n; k++) {
    const off = k * record;
    if (labelBytes === 2) out[off] = coarse ? coarse[k] : 0;
    out[off + labelBytes - 1] = labels[k];
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) out[off + labelBytes + c * 1024 + p] = images[k * IMAGE_BYTES + 3 * p + c];
    }
  }
  return out;
}
