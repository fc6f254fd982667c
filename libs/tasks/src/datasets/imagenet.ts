/**
 * Downsampled ImageNet (reference `tasks/datasets/image.py`: `imagenet8_datasets`,
 * `imagenet16_datasets`, `imagenet32_datasets`, `imagenet64_datasets`, loaded by
 * `tasks/datasets/base.py`, `tfrecord_image_classification_datasets`).
 *
 * Files: the reference's own, as `tasks/datasets/beam/make_resized_image_beam.py` writes them:
 * `imagenet2012_<S>/<split>.tfrecords*` for the splits `train`, `inner_valid`, `outer_valid` and
 * `test` (any number of shards per split, e.g. `train.tfrecords-00000-of-00010`), each a
 * GZIP-compressed TFRecord file of `tf.train.Example`s with two bytes features: `image` (S·S·3
 * uint8, row-major, channels last) and `label` (one little-endian int32, 0..999). The folder
 * `imagenet2012_<S>` is looked for under `$LOPT_DATA_DIR`, then `$TFDS_DATA_DIR` (where the
 * reference reads it; default `~/tensorflow_datasets`), then `~/.cache/lopt`. ImageNet cannot be
 * downloaded without an account, so there is no download; a missing folder fails on the first batch
 * with an error naming the folders and files looked for. `encodeImagenetTfrecords` writes the same
 * format (tests make their fixtures with it).
 *
 * Preprocessing as the reference: `tf.image.resize` (bilinear, half-pixel centers) when
 * `imageSize` differs from S, cast float32, `/255`; labels int32; batches of `batchSize`, dropping
 * the remainder. The reference shuffles the shard order and then through a 10 000-example buffer;
 * lopt-ts shuffles each whole split per epoch (TensorBatchStream's permutation), so the batch order
 * differs. A split is read whole into host memory as uint8 (imagenet16's train split: ~1 GB;
 * imagenet32's: ~3.9 GB, near Node's buffer limit; imagenet64's does not fit, only a subset of shards
 * in the folder would) and each batch is preprocessed when it is drawn.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { decodeRecords, encodeRecords, random, RecordCorruptionError, type PyTree } from '@lopt/core';
import { SPLITS, type Batch, type BatchStream, type Datasets, type SplitName } from '../base';
import { permutation } from './batch_streams';
import { cachedDatasets } from './cache';
import { DatasetNotFoundError } from './fashion_mnist';
import { preprocessImages } from './image_preprocessing';
import { SplitDatasets, type StreamState } from './splits';

/** The downsampled ImageNet sizes the reference names (`imagenet2012_<S>`). */
export type ImagenetSize = 8 | 16 | 32 | 64;

/** The reference's folder name for size S. */
export function imagenetFolderName(size: ImagenetSize): string {
  return `imagenet2012_${size}`;
}

/** A downsampled-ImageNet file that is not the expected GZIP TFRecord of tf.train.Examples (bad CRC, truncation, wrong sizes). */
export class ImagenetFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImagenetFormatError';
  }
}

/** Directories searched for `imagenet2012_<S>/`, in order. */
export function imagenetSearchDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.LOPT_DATA_DIR) dirs.push(process.env.LOPT_DATA_DIR);
  dirs.push(process.env.TFDS_DATA_DIR || path.join(os.homedir(), 'tensorflow_datasets'));
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  dirs.push(path.join(cache, 'lopt'));
  return dirs;
}

/** The shard files of one split in `folder` (`<split>.tfrecords*`, sorted). */
export function imagenetShards(folder: string, split: SplitName): string[] {
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((f) => f.startsWith(`${split}.tfrecords`))
    .sort()
    .map((f) => path.join(folder, f));
}

/** The `imagenet2012_<S>` folder holding shards of every split, or a DatasetNotFoundError naming what was looked for. */
export function findImagenetDir(size: ImagenetSize, dirs: string[] = imagenetSearchDirs()): string {
  const name = imagenetFolderName(size);
  for (const d of dirs) {
    const folder = path.join(d, name);
    if (SPLITS.every((s) => imagenetShards(folder, s).length > 0)) return folder;
  }
  throw new DatasetNotFoundError(
    `imagenet${size} not found: looked for ${name}/{${SPLITS.map((s) => `${s}.tfrecords*`).join(', ')}} in ${dirs.join(', ')}. ` +
      `These are the reference's GZIP TFRecord files of tf.train.Example {image: ${size}x${size}x3 uint8 bytes, label: int32 bytes} ` +
      `(made by learned_optimization/tasks/datasets/beam/make_resized_image_beam.py, one run per split); ` +
      `put the ${name}/ folder in a directory named by LOPT_DATA_DIR (ImageNet is not downloaded automatically).`,
  );
}

// ---- TFRecord + tf.train.Example ---------------------------------------------------------------

/** The records of an (uncompressed) TFRecord byte stream (@lopt/core's framing, CRCs checked), a bad one as an ImagenetFormatError. */
export function readTfrecords(buf: Uint8Array, what = 'TFRecord data'): Uint8Array[] {
  try {
    return decodeRecords(buf, what);
  } catch (e) {
    if (e instanceof RecordCorruptionError) throw new ImagenetFormatError(e.message);
    throw e;
  }
}

function readVarint(b: Uint8Array, pos: { i: number }): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos.i >= b.length) throw new ImagenetFormatError('truncated varint in a tf.train.Example');
    const x = b[pos.i++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return v;
    mul *= 128;
  }
}

/** The length-delimited fields of a protobuf message, as (field number, bytes); other wire types are skipped. */
function protoFields(b: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  const pos = { i: 0 };
  while (pos.i < b.length) {
    const tag = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2) {
      const len = readVarint(b, pos);
      out.push([field, b.subarray(pos.i, pos.i + len)]);
      pos.i += len;
    } else if (wire === 0) readVarint(b, pos);
    else if (wire === 1) pos.i += 8;
    else if (wire === 5) pos.i += 4;
    else throw new ImagenetFormatError(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

/** The bytes features of a serialised `tf.train.Example` (first value of each BytesList). */
export function exampleBytesFeatures(example: Uint8Array): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [f, features] of protoFields(example)) {
    if (f !== 1) continue; // Example.features
    for (const [g, entry] of protoFields(features)) {
      if (g !== 1) continue; // Features.feature (map entry)
      let key = '';
      let value: Uint8Array | null = null;
      for (const [h, v] of protoFields(entry)) {
        if (h === 1) key = Buffer.from(v).toString('utf8');
        else if (h === 2) {
          for (const [k, list] of protoFields(v)) {
            if (k !== 1) continue; // Feature.bytes_list
            const vals = protoFields(list).filter(([m]) => m === 1);
            if (vals.length) value = vals[0][1];
          }
        }
      }
      if (value) out[key] = value;
    }
  }
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lenField(field: number, data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...varint(field * 8 + 2), ...varint(data.length)]), data]);
}

/** A serialised `tf.train.Example` with the given bytes features. */
export function encodeExample(features: Record<string, Uint8Array>): Buffer {
  const entries = Object.entries(features).map(([k, v]) => {
    const feature = lenField(1, lenField(1, v)); // Feature{bytes_list: BytesList{value: [v]}}
    return lenField(1, Buffer.concat([lenField(1, Buffer.from(k, 'utf8')), lenField(2, feature)]));
  });
  return lenField(1, Buffer.concat(entries));
}

/** A GZIP TFRecord shard in the reference's format: images `[n, S, S, 3]` uint8 (channels last), labels int32. */
export function encodeImagenetTfrecords(images: Uint8Array, labels: ArrayLike<number>, size: number): Buffer {
  const px = size * size * 3;
  if (images.length !== labels.length * px) throw new RangeError(`${labels.length} labels need ${labels.length * px} image bytes, got ${images.length}`);
  const records = Array.from(labels, (l, k) => {
    const label = Buffer.alloc(4);
    label.writeInt32LE(l, 0);
    return encodeExample({ image: images.subarray(k * px, (k + 1) * px), label });
  });
  return zlib.gzipSync(encodeRecords(records));
}

/** uint8 images `[n, S, S, 3]` and int32 labels of a split's shard files. */
export function readImagenetShards(files: string[], size: number): { images: Uint8Array; labels: Int32Array; count: number } {
  const px = size * size * 3;
  const records = files.flatMap((f) => readTfrecords(zlib.gunzipSync(fs.readFileSync(f)), f).map((r) => ({ r, f })));
  const images = new Uint8Array(records.length * px);
  const labels = new Int32Array(records.length);
  records.forEach(({ r, f }, k) => {
    const ex = exampleBytesFeatures(r);
    if (!ex.image || ex.image.length !== px) throw new ImagenetFormatError(`${f}: record ${k} has no ${px}-byte image feature`);
    if (!ex.label || ex.label.length !== 4) throw new ImagenetFormatError(`${f}: record ${k} has no 4-byte label feature`);
    images.set(ex.image, k * px);
    labels[k] = Buffer.from(ex.label).readInt32LE(0);
    if (labels[k] < 0 || labels[k] >= 1000) throw new ImagenetFormatError(`${f}: label ${labels[k]} of record ${k} is out of range`);
  });
  return { images, labels, count: records.length };
}

const RAW = new Map<string, { images: Uint8Array; labels: Int32Array; count: number }>();

/**
 * A split kept on the host as uint8, served in batches shuffled per epoch (the permutation of
 * TensorBatchStream: `permutation(foldIn(PRNGKey(seed), epoch), n)`), preprocessed per batch.
 */
class HostImageBatchStream implements BatchStream {
  private raw: { images: Uint8Array; labels: Int32Array; count: number } | null = null;
  private perm: Int32Array | null = null;
  private epoch = 0;
  private position = 0;

  constructor(
    private readonly load: () => { images: Uint8Array; labels: Int32Array; count: number },
    private readonly size: number,
    private readonly imageSize: [number, number],
    private readonly batchSize: number,
    private seed: number,
  ) {}

  private ensure() {
    if (!this.raw) {
      this.raw = this.load();
      if (Math.floor(this.raw.count / this.batchSize) < 1) throw new Error(`batch size ${this.batchSize} is larger than the split (${this.raw.count} examples)`);
    }
    return this.raw;
  }

  next(shape: number[] = []): Batch {
    const raw = this.ensure();
    const B = this.batchSize;
    const count = shape.reduce((a, b) => a * b, 1);
    const per = Math.floor(raw.count / B);
    const px = this.size * this.size * 3;
    const imgs = new Uint8Array(count * B * px);
    const labels = new Int32Array(count * B);
    for (let c = 0; c < count; c++) {
      if (this.position >= per) {
        this.epoch += 1;
        this.position = 0;
        this.perm = null;
      }
      this.perm ??= permutation(random.foldIn(random.PRNGKey(this.seed), this.epoch), raw.count);
      for (let j = 0; j < B; j++) {
        const src = this.perm[this.position * B + j];
        imgs.set(raw.images.subarray(src * px, (src + 1) * px), (c * B + j) * px);
        labels[c * B + j] = raw.labels[src];
      }
      this.position += 1;
    }
    return tf.tidy(() => {
      const image = preprocessImages(imgs, count * B, this.size, this.size, this.imageSize, 3);
      return {
        image: tf.reshape(image, [...shape, B, this.imageSize[0], this.imageSize[1], 3]),
        label: tf.reshape(tf.tensor1d(labels, 'int32'), [...shape, B]),
      };
    });
  }

  abstractBatch(): PyTree {
    return { image: { shape: [this.batchSize, this.imageSize[0], this.imageSize[1], 3], dtype: 'float32' }, label: { shape: [this.batchSize], dtype: 'int32' } };
  }

  getState(): StreamState {
    return { seed: this.seed, epoch: this.epoch, position: this.position };
  }

  setState(s: StreamState): void {
    if (s.seed !== this.seed || s.epoch !== this.epoch) this.perm = null;
    this.seed = s.seed;
    this.epoch = s.epoch;
    this.position = s.position;
  }
}

/**
 * `imagenet<S>_datasets(batch_size, image_size=(S, S))`: cached per arguments, so all tasks share
 * one stream per split; 1000 classes. The files are read on the first `next()` of each split (a
 * missing folder fails there, naming what it looked for); `opts.dir` names the `imagenet2012_<S>`
 * folder itself.
 */
export function imagenetDatasets(size: ImagenetSize, batchSize: number, imageSize: [number, number] = [size, size], opts: { dir?: string } = {}): Datasets {
  return cachedDatasets(`imagenet${size}|${batchSize}|${imageSize.join('x')}|${opts.dir ?? ''}`, () => {
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [
        s,
        new HostImageBatchStream(
          () => {
            const dir = opts.dir ?? findImagenetDir(size);
            const key = `${dir}|${s}`;
            let raw = RAW.get(key);
            if (!raw) {
              raw = readImagenetShards(imagenetShards(dir, s), size);
              RAW.set(key, raw);
            }
            return raw;
          },
          size,
          imageSize,
          batchSize,
          i,
        ),
      ]),
    ) as unknown as Record<SplitName, BatchStream>;
    return new SplitDatasets(streams, { num_classes: 1000, name: `imagenet${size}`, image_size: imageSize, batch_size: batchSize });
  });
}
