/**
 * The image-net.org npz converter (datasets/imagenet_npz.ts): npz files written by numpy itself
 * (fixtures from tools/reference/make_imagenet_npz_fixture.py: ZIP64 local headers, stored and
 * deflated) and npz / zip archives written here with fflate and hand-made .npy headers.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { zipSync } from 'fflate';
import { clearDatasetCache } from '../datasets/cache';
import { imagenetDatasets, imagenetShards, readImagenetShards } from '../datasets/imagenet';
import { clslocToSortedSynsets, convertImagenetNpz, NpzFormatError, parseNpyHeader, readNpzLabels, streamNpzImages } from '../datasets/imagenet_npz';
import { useTestBackend } from './helpers';

beforeAll(async () => {
  await useTestBackend();
});
afterEach(() => clearDatasetCache());

const FIXTURES = path.join(__dirname, 'fixtures');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-imagenet-npz-'));

/** The fixtures' pixel (channel c, row y, column x of example k of file f) and label. */
const pixel = (f: number, k: number, c: number, y: number, x: number) => (31 * f + 17 * k + 50 * c + 8 * y + x) % 256;
const label1 = (f: number, k: number) => ((7 * k + 300 * f) % 1000) + 1;

/** A version-1 .npy file: header dict padded with spaces to a multiple of 64, then the data. */
function npy(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = Buffer.alloc(total, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(header);
  header.writeUInt16LE(total - 10, 8);
  header.write(dict, 10, 'latin1');
  header[total - 1] = 0x0a;
  return Buffer.concat([header, data]);
}

/** An npz (zip of data.npy and labels.npy) of n S×S images, channel-planar byte (k, c, p) = (3 k + 5 c + p) mod 256, labels 1-based int32. */
function makeNpz(S: number, labels: number[], level: 0 | 6): Uint8Array {
  const n = labels.length;
  const row = 3 * S * S;
  const data = new Uint8Array(n * row).map((_, j) => {
    const k = Math.floor(j / row);
    const c = Math.floor((j % row) / (S * S));
    return (3 * k + 5 * c + (j % (S * S))) % 256;
  });
  const lab = Buffer.alloc(4 * n);
  labels.forEach((l, k) => lab.writeInt32LE(l, 4 * k));
  return zipSync({ 'labels.npy': [npy('<i4', [n], lab), { level }], 'data.npy': [npy('|u1', [n, row], data), { level }] });
}

describe('npz files written by numpy', () => {
  test('labels and images (channel-planar rows turned to HWC), stored and deflated, ZIP64 headers', () => {
    const files = ['imagenet8_npz_stored.npz', 'imagenet8_npz_deflated.npz'].map((f) => path.join(FIXTURES, f));
    expect(readNpzLabels(files[0])).toEqual([0, 1, 2, 3, 4].map((k) => label1(0, k)));
    expect(readNpzLabels(files[1])).toEqual([0, 1, 2].map((k) => label1(1, k)));
    files.forEach((file, f) => {
      const seen: number[] = [];
      const n = streamNpzImages(file, 8, (k, hwc) => {
        seen.push(k);
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) expect(hwc[(y * 8 + x) * 3 + c]).toBe(pixel(f, k, c, y, x));
      });
      expect(n).toBe(f === 0 ? 5 : 3);
      expect(seen).toEqual(Array.from({ length: n }, (_, k) => k));
    });
    expect(() => streamNpzImages(files[0], 16, () => {})).toThrow(/shape \(5, 192\); expected \(n, 768\)/);
  });

  test('convertImagenetNpz writes the four splits the loader reads: labels minus one, held-out examples from the end of train', () => {
    const out = tmp();
    const shards: [string, number][] = [];
    const r = convertImagenetNpz({
      size: 8,
      train: [path.join(FIXTURES, 'imagenet8_npz_stored.npz')],
      val: [path.join(FIXTURES, 'imagenet8_npz_deflated.npz')],
      outDir: out,
      innerValid: 1,
      outerValid: 1,
      shardSize: 2,
      onShard: (f, n) => shards.push([path.basename(f), n]),
    });
    expect(r.folder).toBe(path.join(out, 'imagenet2012_8'));
    expect(r.counts).toEqual({ train: 3, inner_valid: 1, outer_valid: 1, test: 3 });
    expect(shards.sort()).toEqual([
      ['inner_valid.tfrecords-00000-of-00001', 1],
      ['outer_valid.tfrecords-00000-of-00001', 1],
      ['test.tfrecords-00000-of-00002', 2],
      ['test.tfrecords-00001-of-00002', 1],
      ['train.tfrecords-00000-of-00002', 2],
      ['train.tfrecords-00001-of-00002', 1],
    ]);
    expect(r.files.map((f) => path.basename(f)).sort()).toEqual(shards.map(([f]) => f));
    const expectSplit = (split: 'train' | 'inner_valid' | 'outer_valid' | 'test', f: number, ks: number[]) => {
      const raw = readImagenetShards(imagenetShards(r.folder, split), 8);
      expect(Array.from(raw.labels)).toEqual(ks.map((k) => label1(f, k) - 1));
      ks.forEach((k, j) => {
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) expect(raw.images[j * 192 + (y * 8 + x) * 3 + c]).toBe(pixel(f, k, c, y, x));
      });
    };
    expectSplit('train', 0, [0, 1, 2]);
    expectSplit('inner_valid', 0, [3]);
    expectSplit('outer_valid', 0, [4]);
    expectSplit('test', 1, [0, 1, 2]);
    // the datasets read the folder: a test batch is example 0 of the val file, /255
    const ds = imagenetDatasets(8, 3, [8, 8], { dir: r.folder });
    const b = ds.split('test').next() as { image: tf.Tensor; label: tf.Tensor };
    expect(Array.from(b.label.dataSync()).sort((a, c) => a - c)).toEqual([0, 1, 2].map((k) => label1(1, k) - 1).sort((a, c) => a - c));
    tf.dispose(Object.values(b));
    // too few training examples for the held-out splits
    expect(() => convertImagenetNpz({ size: 8, train: [path.join(FIXTURES, 'imagenet8_npz_stored.npz')], val: [], outDir: out })).toThrow(/too few to hold out 10000 \+ 10000/);
  });
});

describe('npz and zip archives written here', () => {
  test('a zip of npz files (the download) is read through; map_clsloc.txt maps labels to the sorted-synset order', () => {
    const dir = tmp();
    // map_clsloc order i (1-based) is synset n(99999999 - i): the sorted order is reversed
    const clsloc = Array.from({ length: 1000 }, (_, i) => `n${99999999 - (i + 1)} ${i + 1} class_${i + 1}`).join('\n') + '\n';
    const table = clslocToSortedSynsets(clsloc);
    expect(table[0]).toBe(999);
    expect(table[999]).toBe(0);
    // ImagenetSize admits 8/16/32/64 only
    expect(() => convertImagenetNpz({ size: 4 as 8, train: [], val: [], outDir: dir })).toThrow(RangeError);
    // the download: a zip of npz files (deflated), the second npz stored inside
    const a8 = makeNpz(8, [1, 2, 1000, 500], 6);
    const b8 = makeNpz(8, [3, 4], 0);
    fs.writeFileSync(path.join(dir, 'Imagenet8_train_npz.zip'), zipSync({ 'Imagenet8_train/train_data_batch_1.npz': a8, 'Imagenet8_train/train_data_batch_2.npz': b8 }, { level: 6 }));
    // an npz named .zip (data.npy inside) is read as an npz
    fs.writeFileSync(path.join(dir, 'val8.zip'), makeNpz(8, [7, 8], 6));
    const r = convertImagenetNpz({ size: 8, train: [path.join(dir, 'Imagenet8_train_npz.zip')], val: [path.join(dir, 'val8.zip')], outDir: dir, innerValid: 2, outerValid: 1, clsloc });
    expect(r.counts).toEqual({ train: 3, inner_valid: 2, outer_valid: 1, test: 2 });
    const labels = (split: 'train' | 'inner_valid' | 'outer_valid' | 'test') => Array.from(readImagenetShards(imagenetShards(r.folder, split), 8).labels);
    expect(labels('train')).toEqual([1, 2, 1000].map((l) => 1000 - l));
    expect(labels('inner_valid')).toEqual([500, 3].map((l) => 1000 - l));
    expect(labels('outer_valid')).toEqual([1000 - 4]);
    expect(labels('test')).toEqual([1000 - 7, 1000 - 8]);
    // the second file's first image: byte (k=0, c, p) = 5 c + p, HWC
    const img = readImagenetShards(imagenetShards(r.folder, 'inner_valid'), 8).images.subarray(192);
    for (let p = 0; p < 64; p++) for (let c = 0; c < 3; c++) expect(img[3 * p + c]).toBe((5 * c + p) % 256);
  });

  test('format errors: bad magic, missing arrays, labels out of range, a bad map, zips without npz data', () => {
    const dir = tmp();
    expect(() => parseNpyHeader(Buffer.from('not an npy file at all'))).toThrow(NpzFormatError);
    expect(parseNpyHeader(npy('|u1', [2, 3], new Uint8Array(6)))).toMatchObject({ descr: '|u1', fortranOrder: false, shape: [2, 3] });
    fs.writeFileSync(path.join(dir, 'nolabels.npz'), zipSync({ 'data.npy': npy('|u1', [1, 192], new Uint8Array(192)) }));
    expect(() => readNpzLabels(path.join(dir, 'nolabels.npz'))).toThrow(/no labels array/);
    fs.writeFileSync(path.join(dir, 'zero.npz'), makeNpz(8, [0, 1], 6));
    expect(() => convertImagenetNpz({ size: 8, train: [path.join(dir, 'zero.npz')], val: [], outDir: dir, innerValid: 0, outerValid: 0 })).toThrow(/label 0 is not in 1\.\.1000/);
    expect(() => clslocToSortedSynsets('n01440764 1 tench\n')).toThrow(/1000 lines/);
    fs.writeFileSync(path.join(dir, 'other.zip'), zipSync({ 'readme.txt': Buffer.from('hello') }));
    expect(() => convertImagenetNpz({ size: 8, train: [path.join(dir, 'other.zip')], val: [], outDir: dir })).toThrow(/neither \.npz files nor data\.npy inside/);
    fs.writeFileSync(path.join(dir, 'broken.zip'), Buffer.from('PK\x03\x04 this is not really a zip'));
    expect(() => convertImagenetNpz({ size: 8, train: [path.join(dir, 'broken.zip')], val: [], outDir: dir })).toThrow(NpzFormatError);
  });
});
