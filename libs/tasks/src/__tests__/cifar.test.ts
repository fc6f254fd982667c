/**
 * CIFAR-10/100 binary loaders on small fixture files written here in the standard format: record
 * layout (label bytes, channel-major image), splits (percent slices of the train files, CIFAR-100's
 * 1% train quirk), preprocessing (/255, bilinear half-pixel resize), and the missing-folder error.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from './helpers';
import { CIFAR_FILES, cifarDatasets, cifarSplits, cifarTrainPercent, DatasetNotFoundError, encodeCifarRecords, findCifarDir, readCifarRecords } from '../index';

const PER_FILE = 4;
let root = '';

/** Image k: pixel value (7k + 3p + 5c) mod 256 at position p, channel c. */
function image(k: number): Uint8Array {
  const a = new Uint8Array(32 * 32 * 3);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) a[3 * p + c] = (7 * k + 3 * p + 5 * c) % 256;
  return a;
}

function writeRecords(name: 'cifar10' | 'cifar100', file: string, first: number, n: number): void {
  const imgs = new Uint8Array(n * 3072);
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    imgs.set(image(first + k), k * 3072);
    labels.push((first + k) % CIFAR_FILES[name].numClasses);
  }
  const coarse = labels.map((l) => l % 20);
  fs.writeFileSync(file, encodeCifarRecords(name, imgs, labels, coarse));
}

beforeAll(async () => {
  await useTestBackend();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-cifar-'));
  const c10 = path.join(root, 'cifar-10-batches-bin');
  fs.mkdirSync(c10);
  CIFAR_FILES.cifar10.train.forEach((f, i) => writeRecords('cifar10', path.join(c10, f), i * PER_FILE, PER_FILE));
  writeRecords('cifar10', path.join(c10, 'test_batch.bin'), 1000, 3);
  const c100 = path.join(root, 'cifar-100-binary');
  fs.mkdirSync(c100);
  writeRecords('cifar100', path.join(c100, 'train.bin'), 0, 200);
  writeRecords('cifar100', path.join(c100, 'test.bin'), 500, 5);
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('records: label bytes, channel-major bytes to [32, 32, 3]; CIFAR-100 keeps the fine label', () => {
  const r = readCifarRecords('cifar10', [path.join(root, 'cifar-10-batches-bin', 'data_batch_2.bin')]);
  expect(r.count).toBe(PER_FILE);
  expect(Array.from(r.labels)).toEqual([4, 5, 6, 7]);
  expect(Array.from(r.images.subarray(3072, 2 * 3072))).toEqual(Array.from(image(5)));
  const r100 = readCifarRecords('cifar100', [path.join(root, 'cifar-100-binary', 'test.bin')]);
  expect(Array.from(r100.labels)).toEqual([0, 1, 2, 3, 4]);
  expect(Array.from(r100.images.subarray(0, 3072))).toEqual(Array.from(image(500)));
});

test('a truncated file is refused with its size and record size', () => {
  const f = path.join(root, 'short.bin');
  fs.writeFileSync(f, Buffer.alloc(3073 + 10));
  expect(() => readCifarRecords('cifar10', [f])).toThrow(/3083 bytes is not a whole number of cifar10 records \(3073 bytes each\)/);
});

test('cifar10 splits: train[0:80%], train[80%:90%], train[90%:], test; values /255 channels last', () => {
  const s = cifarSplits('cifar10', [32, 32], { dir: path.join(root, 'cifar-10-batches-bin') });
  expect(s.train.image.shape).toEqual([16, 32, 32, 3]);
  expect(s.inner_valid.image.shape).toEqual([2, 32, 32, 3]);
  expect(s.outer_valid.image.shape).toEqual([2, 32, 32, 3]);
  expect(s.test.image.shape).toEqual([3, 32, 32, 3]);
  expect(Array.from(s.inner_valid.label.dataSync())).toEqual([6, 7]);
  expect(Array.from(s.outer_valid.label.dataSync())).toEqual([8, 9]);
  expect(s.test.label.dtype).toBe('int32');
  const want = Array.from(image(16)).map((v) => v / 255);
  const got = Array.from(tf.tidy(() => tf.slice(s.inner_valid.image, [0], [1]).dataSync()));
  got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 7));
});

test('resize to 8x8: tf.image.resize (bilinear, half-pixel) of the uint8 images, then /255', () => {
  const dir = path.join(root, 'cifar-10-batches-bin');
  const small = cifarSplits('cifar10', [8, 8], { dir });
  const full = cifarSplits('cifar10', [32, 32], { dir });
  expect(small.train.image.shape).toEqual([16, 8, 8, 3]);
  const ref = tf.tidy(() => tf.image.resizeBilinear(tf.mul(full.train.image, 255) as tf.Tensor4D, [8, 8], false, true).div(255));
  const a = small.train.image.dataSync();
  const b = ref.dataSync();
  let maxAbs = 0;
  a.forEach((v, i) => (maxAbs = Math.max(maxAbs, Math.abs(v - b[i]))));
  expect(maxAbs).toBeLessThan(1e-6);
  ref.dispose();
});

test("cifar100: the reference's min(1, int(80·fraction)) gives train[0:1%]", () => {
  expect(cifarTrainPercent('cifar10')).toBe(80);
  expect(cifarTrainPercent('cifar10', 0.001)).toBe(1);
  expect(cifarTrainPercent('cifar100')).toBe(1);
  const s = cifarSplits('cifar100', [32, 32], { dir: path.join(root, 'cifar-100-binary') });
  expect(s.train.image.shape).toEqual([2, 32, 32, 3]);
  expect(s.inner_valid.image.shape).toEqual([20, 32, 32, 3]);
  expect(s.outer_valid.image.shape).toEqual([20, 32, 32, 3]);
  expect(s.test.image.shape).toEqual([5, 32, 32, 3]);
});

test('datasets: batches [B, 32, 32, 3] / [B] from LOPT_DATA_DIR; num_classes', () => {
  const old = process.env.LOPT_DATA_DIR;
  process.env.LOPT_DATA_DIR = root;
  try {
    expect(findCifarDir('cifar10')).toBe(path.join(root, 'cifar-10-batches-bin'));
    const ds = cifarDatasets('cifar10', 4, [32, 32]);
    expect(ds.extraInfo?.num_classes).toBe(10);
    const b = ds.split('train').next() as { image: tf.Tensor; label: tf.Tensor };
    expect(b.image.shape).toEqual([4, 32, 32, 3]);
    expect(b.label.shape).toEqual([4]);
    tf.dispose([b.image, b.label]);
    expect(cifarDatasets('cifar100', 2, [32, 32]).extraInfo?.num_classes).toBe(100);
  } finally {
    if (old === undefined) delete process.env.LOPT_DATA_DIR;
    else process.env.LOPT_DATA_DIR = old;
  }
});

test('missing files: an error naming the folder and the files expected', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-nocifar-'));
  try {
    expect(() => findCifarDir('cifar10', [empty])).toThrow(DatasetNotFoundError);
    expect(() => findCifarDir('cifar10', [empty])).toThrow(/cifar-10-batches-bin\/\{data_batch_1\.bin, .*test_batch\.bin\}/);
    expect(() => findCifarDir('cifar100', [empty])).toThrow(/cifar-100-binary\/\{train\.bin, test\.bin\}.*LOPT_DATA_DIR/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
