import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { useTestBackend } from './helpers';
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import {
  DatasetNotFoundError,
  IdxFormatError,
  TensorBatchStream,
  findFashionMnistDir,
  permutation,
  stableOrderByBits,
  preprocessImages,
  readIdxFile,
  readIdxImagesAndLabels,
  decodedIdxCachePath,
  encodeIdx,
  FASHION_MNIST_FILES,
  loadFashionMnistRaw,
  preprocessedFashionMnist,
  preprocessedFashionMnistCachePath,
} from '../index';

const FIX = path.join(__dirname, 'fixtures');
const zlibGunzip = (b: Buffer) => zlib.gunzipSync(b);

beforeAll(async () => {
  await useTestBackend();
});

describe('IDX loader (committed fixtures)', () => {
  test('reads images and labels, checks magic, shapes and values', () => {
    const r = readIdxImagesAndLabels(path.join(FIX, 'images-idx3-ubyte.gz'), path.join(FIX, 'labels-idx1-ubyte.gz'));
    expect(r.count).toBe(20);
    expect([r.height, r.width]).toEqual([28, 28]);
    expect(r.images.length).toBe(20 * 784);
    // pixel (i, r, c) = (7 i + 3 r + c) % 256
    expect(r.images[(5 * 28 + 4) * 28 + 9]).toBe((35 + 12 + 9) % 256);
    expect(Array.from(r.labels)).toEqual(Array.from({ length: 20 }, (_, i) => i % 10));
  });

  test('bad magic number is an error naming both numbers', () => {
    expect(() => readIdxFile(path.join(FIX, 'bad-magic-idx3-ubyte.gz'), 2051)).toThrow(IdxFormatError);
    expect(() => readIdxFile(path.join(FIX, 'bad-magic-idx3-ubyte.gz'), 2051)).toThrow(/bad magic number 2049, expected 2051/);
    // labels file given where images are expected
    expect(() => readIdxImagesAndLabels(path.join(FIX, 'labels-idx1-ubyte.gz'), path.join(FIX, 'labels-idx1-ubyte.gz'))).toThrow(/magic/);
  });

  test('short file is an error saying how much data is missing', () => {
    expect(() => readIdxFile(path.join(FIX, 'short-idx3-ubyte.gz'), 2051)).toThrow(/short.*15680 bytes of data, found 2352/);
  });

  test('count mismatch and truncated header are errors', () => {
    expect(() =>
      readIdxImagesAndLabels(path.join(FIX, 'images-idx3-ubyte.gz'), path.join(FIX, 'labels-idx1-ubyte.gz'), 60000),
    ).toThrow(/expected 60000 examples, found 20/);
    const tmp = path.join(os.tmpdir(), `lopt-idx-${process.pid}`);
    fs.writeFileSync(tmp, Buffer.from([0, 0, 8, 3, 0, 0]));
    expect(() => readIdxFile(tmp, 2051)).toThrow(/too short/);
    fs.unlinkSync(tmp);
  });

  test('missing data directory: error says how to get the files', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-empty-'));
    try {
      findFashionMnistDir({ dirs: [empty], download: false });
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(DatasetNotFoundError);
      expect((e as Error).message).toMatch(/apt-get install dataset-fashion-mnist/);
      expect((e as Error).message).toMatch(/LOPT_DATA_DIR/);
    }
  });
});

describe('preprocessed Fashion-MNIST cache', () => {
  const saved = { cache: process.env.XDG_CACHE_HOME, off: process.env.LOPT_NO_DECODE_CACHE };
  let dir: string;
  // the four files with Fashion-MNIST's counts (60,000 and 10,000) of 2x2 images: small and offline
  const writeFiles = (d: string, v: number) => {
    const img = (n: number) => encodeIdx(2051, [n, 2, 2], Uint8Array.from({ length: 4 * n }, (_, i) => (i * 7 + v) % 256));
    const lab = (n: number) => encodeIdx(2049, [n], Uint8Array.from({ length: n }, (_, i) => (i + v) % 10));
    const f = FASHION_MNIST_FILES;
    fs.writeFileSync(path.join(d, f.trainImages), img(60000));
    fs.writeFileSync(path.join(d, f.trainLabels), lab(60000));
    fs.writeFileSync(path.join(d, f.testImages), img(10000));
    fs.writeFileSync(path.join(d, f.testLabels), lab(10000));
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-fmcache-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    delete process.env.LOPT_NO_DECODE_CACHE;
    fs.mkdirSync(path.join(dir, 'data'));
    writeFiles(path.join(dir, 'data'), 0);
  });
  afterEach(() => {
    for (const [k, v] of [['XDG_CACHE_HOME', saved.cache], ['LOPT_NO_DECODE_CACHE', saved.off]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the resized arrays are written once and read back (a planted value is what is read); the same values as preprocessImages', () => {
    const data = path.join(dir, 'data');
    const first = preprocessedFashionMnist(data, [1, 1]);
    const raw = loadFashionMnistRaw(data);
    const want = preprocessImages(raw.train.images, 60000, 2, 2, [1, 1]);
    expect(Array.from(first.train.images.subarray(0, 50))).toEqual(Array.from(want.dataSync().subarray(0, 50)));
    want.dispose();
    expect(Array.from(first.test.labels.subarray(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    const cached = preprocessedFashionMnistCachePath(data, [1, 1])!;
    expect(cached.startsWith(path.join(dir, 'cache', 'lopt', 'fashion-mnist-preprocessed'))).toBe(true);
    const bytes = fs.readFileSync(cached);
    expect(bytes.length).toBe(20 + 4 * 70000 + 70000);
    bytes.writeFloatLE(0.25, 20); // the first training image's value
    fs.writeFileSync(cached, bytes);
    const again = preprocessedFashionMnist(data, [1, 1]);
    expect(again.train.images[0]).toBe(0.25);
    expect(Array.from(again.test.images.subarray(0, 20))).toEqual(Array.from(first.test.images.subarray(0, 20)));
    expect(Array.from(again.train.labels)).toEqual(Array.from(first.train.labels));
    // another image size is another entry
    expect(preprocessedFashionMnistCachePath(data, [2, 2])).not.toBe(cached);
  });

  test('a torn cache file is preprocessed again and rewritten; changed files get a new entry; LOPT_NO_DECODE_CACHE=1 writes none', () => {
    const data = path.join(dir, 'data');
    const first = preprocessedFashionMnist(data, [1, 1]);
    const cached = preprocessedFashionMnistCachePath(data, [1, 1])!;
    fs.writeFileSync(cached, fs.readFileSync(cached).subarray(0, 1000));
    expect(Array.from(preprocessedFashionMnist(data, [1, 1]).train.images.subarray(0, 30))).toEqual(Array.from(first.train.images.subarray(0, 30)));
    expect(fs.statSync(cached).size).toBe(20 + 4 * 70000 + 70000);
    // new files (other bytes, a later time) in another folder: another entry
    fs.mkdirSync(path.join(dir, 'data2'));
    writeFiles(path.join(dir, 'data2'), 3);
    expect(preprocessedFashionMnistCachePath(path.join(dir, 'data2'), [1, 1])).not.toBe(cached);
    process.env.LOPT_NO_DECODE_CACHE = '1';
    expect(preprocessedFashionMnistCachePath(path.join(dir, 'data2'), [1, 1])).toBeNull();
    expect(preprocessedFashionMnist(path.join(dir, 'data2'), [1, 1]).test.labels[0]).toBe(3);
    expect(fs.readdirSync(path.join(dir, 'cache', 'lopt', 'fashion-mnist-preprocessed'))).toEqual([path.basename(cached)]);
  });
});

describe('decoded IDX cache', () => {
  const saved = { cache: process.env.XDG_CACHE_HOME, off: process.env.LOPT_NO_DECODE_CACHE };
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-idxcache-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    delete process.env.LOPT_NO_DECODE_CACHE;
  });
  afterEach(() => {
    for (const [k, v] of [['XDG_CACHE_HOME', saved.cache], ['LOPT_NO_DECODE_CACHE', saved.off]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const images = (v: number) => encodeIdx(2051, [2, 2, 2], Uint8Array.from({ length: 8 }, (_, i) => i + v));

  test('a gzip file is decoded once: the cached bytes are read next time, and a changed source is decoded again', () => {
    const file = path.join(dir, 'x-images-idx3-ubyte.gz');
    fs.writeFileSync(file, images(0));
    expect(Array.from(readIdxFile(file, 2051).data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const cached = decodedIdxCachePath(file, fs.statSync(file))!;
    expect(cached.startsWith(path.join(dir, 'cache', 'lopt', 'idx-decoded'))).toBe(true);
    expect(fs.existsSync(cached)).toBe(true);
    // the cache is what is read: plant other (valid) bytes there
    const planted = Buffer.from(readIdxFile(file, 2051).data);
    planted[0] = 99;
    fs.writeFileSync(cached, Buffer.concat([zlibGunzip(images(0)).subarray(0, 16), planted]));
    expect(readIdxFile(file, 2051).data[0]).toBe(99);
    // a new source (other size or time) gets its own cache entry
    fs.writeFileSync(file, images(10));
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(Array.from(readIdxFile(file, 2051).data)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
  });

  test('a torn cache file is decoded again and rewritten; LOPT_NO_DECODE_CACHE=1 writes none', () => {
    const file = path.join(dir, 'y-images-idx3-ubyte.gz');
    fs.writeFileSync(file, images(3));
    readIdxFile(file, 2051);
    const cached = decodedIdxCachePath(file, fs.statSync(file))!;
    fs.writeFileSync(cached, Buffer.from([0, 0, 8, 3, 0]));
    expect(Array.from(readIdxFile(file, 2051).data)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(fs.statSync(cached).size).toBe(16 + 8);
    process.env.LOPT_NO_DECODE_CACHE = '1';
    const other = path.join(dir, 'z-images-idx3-ubyte.gz');
    fs.writeFileSync(other, images(5));
    expect(decodedIdxCachePath(other, fs.statSync(other))).toBeNull();
    expect(Array.from(readIdxFile(other, 2051).data)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(fs.readdirSync(path.join(dir, 'cache', 'lopt', 'idx-decoded')).filter((n) => n.startsWith('z-'))).toEqual([]);
  });
});

describe('resize: tf.image.resize (bilinear, half-pixel centers, no antialias) 28 -> 8', () => {
  test('hand-computed on a column ramp: x_in = (x + 0.5)·3.5 − 0.5', () => {
    // pixel value = column index c, so bilinear gives the sampled coordinate itself
    const img = new Uint8Array(28 * 28);
    for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) img[r * 28 + c] = c;
    const out = preprocessImages(img, 1, 28, 28, [8, 8]);
    expect(out.shape).toEqual([1, 8, 8, 1]);
    const row = Array.from(out.dataSync().slice(0, 8)).map((v) => v * 255);
    const want = [1.25, 4.75, 8.25, 11.75, 15.25, 18.75, 22.25, 25.75];
    row.forEach((v, i) => expect(v).toBeCloseTo(want[i], 3));
    // every row equal
    const all = out.dataSync();
    for (let r = 1; r < 8; r++) for (let c = 0; c < 8; c++) expect(all[r * 8 + c]).toBeCloseTo(all[c], 6);
  });

  test('hand-computed on a single bright pixel and a checkerboard', () => {
    // one pixel at (1, 1) = 255: output (0, 0) samples (1.25, 1.25) -> weight (1−0.25)² on (1, 1)
    const img = new Uint8Array(28 * 28);
    img[1 * 28 + 1] = 255;
    const out = preprocessImages(img, 1, 28, 28, [8, 8]).dataSync();
    expect(out[0]).toBeCloseTo(0.75 * 0.75, 5);
    expect(out[1]).toBeCloseTo(0, 6);
    // checkerboard (r + c) % 2 · 255: at (1.25, 1.25): 0.75² ·0 + 2·0.75·0.25·255 + 0.25²·0 over 255
    const cb = new Uint8Array(28 * 28);
    for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) cb[r * 28 + c] = ((r + c) % 2) * 255;
    const o2 = preprocessImages(cb, 1, 28, 28, [8, 8]).dataSync();
    expect(o2[0]).toBeCloseTo(2 * 0.75 * 0.25, 5);
    // (0, 1): rows 1.25 (1, 2), cols 4.75 (4, 5): w = [.75·.25, .75·.75, .25·.25, .25·.75] on values [1,0,0,1]
    expect(o2[1]).toBeCloseTo(0.75 * 0.25 + 0.25 * 0.75, 5);
  });
});

describe('TensorBatchStream', () => {
  const n = 10;
  const make = (seed = 0) =>
    new TensorBatchStream(
      () => ({ image: tf.range(0, n, 1, 'float32').reshape([n, 1]), label: tf.range(0, n, 1, 'int32') }),
      3,
      { image: { shape: [1], dtype: 'float32' }, label: { shape: [], dtype: 'int32' } },
      seed,
    );

  test('epochs are seeded permutations, remainder dropped, next([K,N]) in one gather', () => {
    const s = make(4);
    expect(s.batchesPerEpoch).toBe(3);
    const e0 = Array.from(permutation(random.foldIn(random.PRNGKey(4), 0), n)).slice(0, 9);
    const e1 = Array.from(permutation(random.foldIn(random.PRNGKey(4), 1), n)).slice(0, 3);
    const b = s.next([3]) as { image: tf.Tensor; label: tf.Tensor };
    expect(b.image.shape).toEqual([3, 3, 1]);
    expect(b.label.dtype).toBe('int32');
    expect(Array.from(b.label.dataSync())).toEqual(e0);
    const c = s.next([1, 1]) as { label: tf.Tensor };
    expect(c.label.shape).toEqual([1, 1, 3]);
    expect(Array.from(c.label.dataSync())).toEqual(e1);
    expect(s.getState()).toEqual({ seed: 4, epoch: 1, position: 1 });
    expect(s.abstractBatch()).toEqual({ image: { shape: [3, 1], dtype: 'float32' }, label: { shape: [3], dtype: 'int32' } });
  });

  test('with its size declared, the order needs no data: nextIndices and prefetch do not load it, and give the same indices', () => {
    let loads = 0;
    const load = () => {
      loads++;
      return { image: tf.range(0, n, 1, 'float32').reshape([n, 1]), label: tf.range(0, n, 1, 'int32') };
    };
    const abstract = { image: { shape: [1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
    const declared = new TensorBatchStream(load, 3, abstract, 5, n);
    const plain = make(5);
    declared.prefetch();
    expect(declared.batchesPerEpoch).toBe(3);
    for (let i = 0; i < 4; i++) expect(Array.from(declared.nextIndices(2))).toEqual(Array.from(plain.nextIndices(2)));
    expect(loads).toBe(0);
    const b = declared.gather(declared.nextIndices(1), [1]) as { label: tf.Tensor };
    expect(loads).toBe(1);
    expect(Array.from(b.label.dataSync())).toEqual(Array.from(plain.nextIndices(1)));
    tf.dispose(b as any);
    // a declared size the data does not have is an error when the data loads
    const wrong = new TensorBatchStream(load, 3, abstract, 5, n + 1);
    expect(() => wrong.next([1])).toThrow(/the split has 10 examples, but its stream was declared with 11/);
    // and a declared size too small for one batch at once
    expect(() => new TensorBatchStream(load, 3, abstract, 5, 2).nextIndices(1)).toThrow(/batch size 3 is larger than the split \(2 examples\)/);
  });

  test('nextIndices + gather (another thread with the same data) give exactly next([K, N])', () => {
    const a = make(2);
    const b = make(2);
    for (let i = 0; i < 3; i++) {
      const want = a.next([2, 2]) as { image: tf.Tensor; label: tf.Tensor };
      const got = b.gather(b.nextIndices(4), [2, 2]) as { image: tf.Tensor; label: tf.Tensor };
      expect(got.image.shape).toEqual([2, 2, 3, 1]);
      expect(Array.from(got.label.dataSync())).toEqual(Array.from(want.label.dataSync()));
      expect(Array.from(got.image.dataSync())).toEqual(Array.from(want.image.dataSync()));
    }
    expect(b.getState()).toEqual(a.getState());
    expect(() => b.gather(new Int32Array(5), [2])).toThrow('gather: 5 indices for shape [2] of batches of 3');
  });

  test('prefetch (the next epoch shuffled ahead) changes nothing the stream gives, across epochs and a setState', () => {
    const a = make(5);
    const b = make(5);
    for (let i = 0; i < 12; i++) {
      b.prefetch();
      if (i === 6) {
        // a resume into another epoch: the shuffle made ahead is for the wrong epoch and is not used
        a.setState({ seed: 5, epoch: 7, position: 2 });
        b.setState({ seed: 5, epoch: 7, position: 2 });
      }
      expect(Array.from(b.nextIndices(2))).toEqual(Array.from(a.nextIndices(2)));
      expect(b.getState()).toEqual(a.getState());
    }
  });

  test('state get/set resumes exactly', () => {
    const a = make(1);
    a.next([4]);
    const st = a.getState();
    const want = Array.from((a.next([2]) as { label: tf.Tensor }).label.dataSync());
    const b = make(1);
    b.setState(st);
    expect(Array.from((b.next([2]) as { label: tf.Tensor }).label.dataSync())).toEqual(want);
  });

  test('the radix sort orders by bits, ties in index order (as a stable comparison sort)', () => {
    const bits = Uint32Array.from([7, 0xffffffff, 3, 7, 0, 3, 0x80000000, 7, 0, 256]);
    const ref = Array.from(bits.keys()).sort((a, b) => bits[a] - bits[b] || a - b);
    expect(Array.from(stableOrderByBits(bits))).toEqual(ref);
    expect(ref).toEqual([4, 8, 2, 5, 0, 3, 7, 9, 6, 1]);
    // random keys with many ties (values < 16) over 5,000 entries
    const many = Uint32Array.from(random.randomBits(random.PRNGKey(3), 5000), (v) => v % 16);
    expect(Array.from(stableOrderByBits(many))).toEqual(Array.from(many.keys()).sort((a, b) => many[a] - many[b] || a - b));
  });

  test('permutation is a permutation and depends on the key', () => {
    const p = permutation(random.PRNGKey(0), 1000);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(random.PRNGKey(1), 1000))).not.toEqual(Array.from(p));
  });
});

test('host resize equals tfjs resizeBilinear(alignCorners=false, halfPixelCenters=true) for 28->8, 28->16, 28->32', () => {
  const n = 3;
  const img = Uint8Array.from(random.randintArray(random.PRNGKey(0), n * 784, 0, 256));
  for (const s of [8, 16, 32]) {
    const host = preprocessImages(img, n, 28, 28, [s, s]);
    const ref = tf.div(tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(img), [n, 28, 28, 1]), [s, s], false, true), 255);
    expect(tf.max(tf.abs(tf.sub(host, ref))).dataSync()[0]).toBeLessThan(1e-5);
  }
});
