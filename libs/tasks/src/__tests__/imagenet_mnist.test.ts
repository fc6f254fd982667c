/**
 * Downsampled ImageNet (datasets/imagenet.ts) on fixtures made here (and one shard written by
 * TensorFlow itself, tools/reference/make_imagenet_tfrecord_fixture.py), and MNIST's folder search
 * (datasets/mnist.ts). No real dataset is read.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { SPLITS } from '../base';
import { clearDatasetCache } from '../datasets/cache';
import { DatasetNotFoundError } from '../datasets/fashion_mnist';
import { preprocessImages } from '../datasets/image_preprocessing';
import {
  encodeImagenetTfrecords,
  exampleBytesFeatures,
  findImagenetDir,
  ImagenetFormatError,
  imagenetDatasets,
  readImagenetShards,
  readTfrecords,
} from '../datasets/imagenet';
import { findMnistDir, MNIST_FILES, mnistDatasets } from '../datasets/mnist';
import { useTestBackend } from './helpers';

beforeAll(async () => {
  await useTestBackend();
});

const FIXTURES = path.join(__dirname, 'fixtures');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-imagenet-'));

/** n images of size S (bytes (11 k + i) mod 256) and labels (k · 97) mod 1000, in `shards` shard files per split. */
function writeSplits(root: string, size: number, counts: Record<string, number>, shards = 2) {
  const folder = path.join(root, `imagenet2012_${size}`);
  fs.mkdirSync(folder, { recursive: true });
  const px = size * size * 3;
  const all: Record<string, { images: Uint8Array; labels: number[] }> = {};
  for (const [split, n] of Object.entries(counts)) {
    const images = new Uint8Array(n * px).map((_, j) => (11 * Math.floor(j / px) + (j % px) + split.length) % 256);
    const labels = Array.from({ length: n }, (_, k) => (k * 97 + split.length) % 1000);
    all[split] = { images, labels };
    const per = Math.ceil(n / shards);
    for (let s = 0; s < shards; s++) {
      const a = s * per;
      const b = Math.min(n, a + per);
      fs.writeFileSync(path.join(folder, `${split}.tfrecords-0000${s}-of-0000${shards}`), encodeImagenetTfrecords(images.subarray(a * px, b * px), labels.slice(a, b), size));
    }
  }
  return { folder, all };
}

describe('downsampled ImageNet', () => {
  afterEach(() => clearDatasetCache());

  test('reads a shard TensorFlow wrote (GZIP TFRecord of tf.train.Example, CRCs checked)', () => {
    const raw = readImagenetShards([path.join(FIXTURES, 'imagenet2012_8_tf.tfrecords.gz')], 8);
    expect(raw.count).toBe(3);
    expect(Array.from(raw.labels)).toEqual([5, 999, 0]);
    for (let k = 0; k < 3; k++) {
      const want = Array.from({ length: 192 }, (_, i) => (7 * k + 3 * i) % 256);
      expect(Array.from(raw.images.subarray(k * 192, (k + 1) * 192))).toEqual(want);
    }
  });

  test('our writer round-trips, and a corrupt record or a wrong image size is an ImagenetFormatError', () => {
    const images = new Uint8Array(2 * 48).map((_, i) => i);
    const gz = encodeImagenetTfrecords(images, [3, 7], 4);
    const recs = readTfrecords(zlib.gunzipSync(gz));
    expect(recs.length).toBe(2);
    const ex = exampleBytesFeatures(recs[1]);
    expect(Array.from(ex.image)).toEqual(Array.from(images.subarray(48)));
    expect(Buffer.from(ex.label).readInt32LE(0)).toBe(7);
    const raw = zlib.gunzipSync(gz);
    raw[20] ^= 1; // a data byte of record 0
    expect(() => readTfrecords(raw)).toThrow(ImagenetFormatError);
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'x.gz'), gz);
    expect(() => readImagenetShards([path.join(dir, 'x.gz')], 8)).toThrow(/192-byte image/);
  });

  test('missing folder: the error names the directories, the folder and the files', () => {
    const dir = tmp();
    let err: Error | undefined;
    try {
      findImagenetDir(16, [dir]);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect(err!.message).toContain(dir);
    expect(err!.message).toContain('imagenet2012_16/');
    expect(err!.message).toContain('train.tfrecords*');
    expect(err!.message).toContain('LOPT_DATA_DIR');
    // the datasets object is built without files; the first batch fails with that error
    const ds = imagenetDatasets(16, 4, [16, 16], { dir: path.join(dir, 'imagenet2012_16') });
    expect(() => ds.split('train').next()).toThrow();
  });

  test('splits, batches (resized, /255), labels, epochs and stream state; found through LOPT_DATA_DIR', () => {
    const root = tmp();
    const { all } = writeSplits(root, 8, { train: 10, inner_valid: 4, outer_valid: 4, test: 6 });
    const old = process.env.LOPT_DATA_DIR;
    process.env.LOPT_DATA_DIR = root;
    try {
      expect(findImagenetDir(8)).toBe(path.join(root, 'imagenet2012_8'));
      const ds = imagenetDatasets(8, 3, [4, 4]);
      expect(ds.extraInfo?.num_classes).toBe(1000);
      const train = ds.split('train');
      expect(train.abstractBatch()).toEqual({ image: { shape: [3, 4, 4, 3], dtype: 'float32' }, label: { shape: [3], dtype: 'int32' } });
      const before = tf.memory().numTensors;
      const seen: number[] = [];
      const s0 = train.getState();
      const first = train.next() as { image: tf.Tensor; label: tf.Tensor };
      expect(first.image.shape).toEqual([3, 4, 4, 3]);
      // each example equals the preprocessed file example with the same label
      const labels = Array.from(first.label.dataSync());
      const want = preprocessImages(all.train.images, 10, 8, 8, [4, 4], 3);
      const wantRows = tf.split(want, 10);
      labels.forEach((l, j) => {
        const k = all.train.labels.indexOf(l);
        expect(k).toBeGreaterThanOrEqual(0);
        const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(first.image, [j], [1]), wantRows[k]))).dataSync()[0]);
        expect(diff).toBeLessThan(1e-6);
        seen.push(l);
      });
      tf.dispose([want, ...wantRows]);
      // 3 batches per epoch (10 // 3), each train label at most once per epoch
      for (let b = 0; b < 2; b++) {
        const x = train.next() as { image: tf.Tensor; label: tf.Tensor };
        seen.push(...Array.from(x.label.dataSync()));
        tf.dispose(Object.values(x));
      }
      expect(new Set(seen).size).toBe(9);
      expect(train.getState()).toEqual({ seed: 0, epoch: 0, position: 3 });
      // replaying from the saved state gives the same first batch
      train.setState(s0);
      const again = train.next() as { image: tf.Tensor; label: tf.Tensor };
      expect(Array.from(again.label.dataSync())).toEqual(labels);
      // stacked batches: [2, 3, ...]
      const stacked = ds.split('test').next([2]) as { image: tf.Tensor; label: tf.Tensor };
      expect(stacked.image.shape).toEqual([2, 3, 4, 4, 3]);
      expect(Array.from(stacked.label.dataSync()).every((l) => all.test.labels.includes(l))).toBe(true);
      for (const s of SPLITS) expect(ds.split(s)).toBeDefined();
      tf.dispose([first, again, stacked].flatMap((x) => Object.values(x)));
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      if (old === undefined) delete process.env.LOPT_DATA_DIR;
      else process.env.LOPT_DATA_DIR = old;
    }
  });
});

describe('MNIST', () => {
  test('looked for only in folders named mnist; the error names them and the files', () => {
    const dir = tmp();
    let err: Error | undefined;
    try {
      findMnistDir({ dirs: [path.join(dir, 'mnist')], download: false });
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect(err!.message).toContain(path.join(dir, 'mnist'));
    for (const f of Object.values(MNIST_FILES)) expect(err!.message).toContain(f);
    expect(err!.message).toContain('download disabled');
    fs.mkdirSync(path.join(dir, 'mnist'));
    for (const f of Object.values(MNIST_FILES)) fs.writeFileSync(path.join(dir, 'mnist', f), '');
    expect(findMnistDir({ dirs: [path.join(dir, 'mnist')], download: false })).toBe(path.join(dir, 'mnist'));
  });

  test('mnist_datasets: 10 classes, [B, H, W, 1] batches, built without reading files', () => {
    const ds = mnistDatasets(5, [14, 14], { dir: '/nonexistent' });
    expect(ds.extraInfo?.num_classes).toBe(10);
    expect(ds.split('train').abstractBatch()).toEqual({ image: { shape: [5, 14, 14, 1], dtype: 'float32' }, label: { shape: [5], dtype: 'int32' } });
    expect(() => ds.split('train').next()).toThrow();
  });
});
