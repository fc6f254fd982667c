/**
 * MNIST from the standard IDX gzip files (reference `tasks/datasets/image.py`, `mnist_datasets`,
 * loaded by `tasks/datasets/base.py`, `preload_tfds_image_classification_datasets`): the same
 * files, splits and preprocessing as Fashion-MNIST (see fashion_mnist.ts), from other folders.
 *
 * Files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
 * `t10k-labels-idx1-ubyte.gz`; the Fashion-MNIST files have the same names, so MNIST is only looked
 * for in folders named `mnist`): `$LOPT_DATA_DIR/mnist`, `/usr/share/datasets/mnist`,
 * `~/.cache/lopt/mnist`; failing those, a download into the cache is tried (short timeout; not with
 * `LOPT_NO_DOWNLOAD=1`), then an error names the folders and files.
 *
 * Splits: train = `train[0:80%]`, inner_valid = `train[80%:90%]`, outer_valid = `train[90%:]`,
 * test = `test`, in the files' order (TFDS's order differs). Preprocessing: bilinear resize
 * (half-pixel centers) to `imageSize` when it is not 28x28, float32 `/255`; labels int32; 10 classes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { SPLITS, type Datasets, type SplitName } from '../base';
import { TensorBatchStream } from './batch_streams';
import { cachedDatasets } from './cache';
import { downloadFiles } from './download';
import { DatasetNotFoundError, FASHION_MNIST_FILES, fashionMnistSplits } from './fashion_mnist';
import { SplitDatasets } from './splits';

/** The four IDX files (the same names as Fashion-MNIST's). */
export const MNIST_FILES = FASHION_MNIST_FILES;

/** Mirrors of the MNIST files, tried in order. */
export const MNIST_URLS = ['https://storage.googleapis.com/cvdf-datasets/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/'];

/** The Debian-style system folder. */
export const SYSTEM_MNIST_DIR = '/usr/share/datasets/mnist';

/** `~/.cache/lopt/mnist` (or under `$XDG_CACHE_HOME`). */
export function mnistCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lopt', 'mnist');
}

/** Directories searched, in order. */
export function mnistSearchDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.LOPT_DATA_DIR) dirs.push(path.join(process.env.LOPT_DATA_DIR, 'mnist'));
  dirs.push(SYSTEM_MNIST_DIR, mnistCacheDir());
  return dirs;
}

const hasAll = (dir: string) => Object.values(MNIST_FILES).every((f) => fs.existsSync(path.join(dir, f)));

/** The folder holding the four MNIST files; downloads into the cache when none has them (unless `download` is false or `LOPT_NO_DOWNLOAD=1`). */
export function findMnistDir(opts: { dirs?: string[]; download?: boolean } = {}): string {
  const dirs = opts.dirs ?? mnistSearchDirs();
  for (const d of dirs) if (hasAll(d)) return d;
  const download = opts.download ?? process.env.LOPT_NO_DOWNLOAD !== '1';
  let why = 'download disabled';
  if (download) {
    const cache = mnistCacheDir();
    try {
      downloadFiles(cache, Object.values(MNIST_FILES), MNIST_URLS);
      if (hasAll(cache)) return cache;
      why = 'download finished without the files';
    } catch (e) {
      why = (e as Error).message;
    }
  }
  throw new DatasetNotFoundError(
    `MNIST not found: looked for ${Object.values(MNIST_FILES).join(', ')} in ${dirs.join(', ')} (${why}). ` +
      `Download the four files from ${MNIST_URLS[0]} into a folder named mnist/ inside the directory named by LOPT_DATA_DIR.`,
  );
}

/**
 * `mnist_datasets(batch_size, image_size=(28, 28))`: cached per arguments; the files are read on
 * the first `next()` (`opts.dir` names the folder holding the four files).
 */
export function mnistDatasets(batchSize = 128, imageSize: [number, number] = [28, 28], opts: { dir?: string } = {}): Datasets {
  return cachedDatasets(`mnist|${batchSize}|${imageSize.join('x')}|${opts.dir ?? ''}`, () => {
    const abstract = {
      image: { shape: [imageSize[0], imageSize[1], 1], dtype: 'float32' as tf.DataType },
      label: { shape: [], dtype: 'int32' as tf.DataType },
    };
    const load = (s: SplitName) => () => ({ ...fashionMnistSplits(imageSize, opts.dir ?? findMnistDir())[s] });
    const streams = Object.fromEntries(SPLITS.map((s, i) => [s, new TensorBatchStream(load(s), batchSize, abstract, i)])) as Record<SplitName, TensorBatchStream>;
    return new SplitDatasets(streams, { num_classes: 10, name: 'mnist', image_size: imageSize, batch_size: batchSize });
  });
}
