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
 * the remainder. Splits that fit in memory (by default those whose shards inflate to at most 2 GiB:
 * all of imagenet8 and imagenet16, imagenet32's and imagenet64's validation and test splits) are
 * read whole into host memory as uint8 and shuffled per epoch (TensorBatchStream's permutation),
 * each batch preprocessed when drawn. Larger ones (imagenet32's train split, ~3.9 GB, and
 * imagenet64's, ~15.7 GB) are streamed as the reference's tf.data pipeline reads every split:
 * shards repeated in a shuffled order, 4 read at once, through a 10 000-example shuffle buffer
 * (`StreamingImageBatchStream`, `tfrecord_stream.ts`; its state carries the shard stream's cursor,
 * so a resume seeks there without replaying the stream); `opts.stream` or `LOPT_IMAGENET_STREAM`
 * chooses explicitly. Either way the batch order is lopt-ts's own (threefry keys, not TF's).
 *
 * The official image-net.org npz files (Chrabaszcz et al.'s box-resized ImageNet) can be converted
 * into this layout with `convertImagenetNpz` (`imagenet_npz.ts`, `lopt imagenet-npz`).
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
import { GzipFormatError, ShuffledRecordStream, type ShuffledRecordStreamOptions } from './tfrecord_stream';
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

/** One example of a shard: the `image` bytes (S·S·3) and the int32 `label`, checked; `where` names the record in errors. */
export function decodeImagenetExample(record: Uint8Array, size: number, where: string): { image: Uint8Array; label: number } {
  const px = size * size * 3;
  const ex = exampleBytesFeatures(record);
  if (!ex.image || ex.image.length !== px) throw new ImagenetFormatError(`${where} has no ${px}-byte image feature`);
  if (!ex.label || ex.label.length !== 4) throw new ImagenetFormatError(`${where} has no 4-byte label feature`);
  const label = Buffer.from(ex.label.buffer, ex.label.byteOffset, 4).readInt32LE(0);
  if (label < 0 || label >= 1000) throw new ImagenetFormatError(`${where}: label ${label} is out of range`);
  return { image: ex.image, label };
}

/** uint8 images `[n, S, S, 3]` and int32 labels of a split's shard files. */
export function readImagenetShards(files: string[], size: number): { images: Uint8Array; labels: Int32Array; count: number } {
  const px = size * size * 3;
  const records = files.flatMap((f) => readTfrecords(zlib.gunzipSync(fs.readFileSync(f)), f).map((r) => ({ r, f })));
  const images = new Uint8Array(records.length * px);
  const labels = new Int32Array(records.length);
  records.forEach(({ r, f }, k) => {
    const ex = decodeImagenetExample(r, size, `${f}: record ${k}`);
    images.set(ex.image, k * px);
    labels[k] = ex.label;
  });
  return { images, labels, count: records.length };
}

/** uint8 images `[count·B, S, S, 3]` and labels as a batch `{image: [...shape, B, H, W, 3] float32 in [0, 1], label: [...shape, B]}`. */
function imageBatch(imgs: Uint8Array, labels: Int32Array, shape: number[], B: number, size: number, imageSize: [number, number]): Batch {
  return tf.tidy(() => {
    const image = preprocessImages(imgs, labels.length, size, size, imageSize, 3);
    return {
      image: tf.reshape(image, [...shape, B, imageSize[0], imageSize[1], 3]),
      label: tf.reshape(tf.tensor1d(labels, 'int32'), [...shape, B]),
    };
  });
}

function imageAbstractBatch(B: number, imageSize: [number, number]): PyTree {
  return { image: { shape: [B, imageSize[0], imageSize[1], 3], dtype: 'float32' }, label: { shape: [B], dtype: 'int32' } };
}

const RAW = new Map<string, { images: Uint8Array; labels: Int32Array; count: number }>();

/**
 * A split kept on the host as uint8, served in batches shuffled per epoch (the permutation of
 * TensorBatchStream: `permutation(foldIn(PRNGKey(seed), epoch), n)`), preprocessed per batch.
 */
class HostImageBatchStream implements BatchStream {
  private raw: { images: Uint8Array; labels: Int32Array; count: number } | null = null;
  private perm: Int32Array | null = null;
  /** The next epoch's permutation, computed by `prefetch`. */
  private ahead: { seed: number; epoch: number; perm: Int32Array } | null = null;
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
      if (!this.perm) {
        const a = this.ahead;
        this.perm = a && a.seed === this.seed && a.epoch === this.epoch ? a.perm : permutation(random.foldIn(random.PRNGKey(this.seed), this.epoch), raw.count);
        this.ahead = null;
      }
      for (let j = 0; j < B; j++) {
        const src = this.perm[this.position * B + j];
        imgs.set(raw.images.subarray(src * px, (src + 1) * px), (c * B + j) * px);
        labels[c * B + j] = raw.labels[src];
      }
      this.position += 1;
    }
    return imageBatch(imgs, labels, shape, B, this.size, this.imageSize);
  }

  /** Computes the next epoch's shuffle ahead (a pure function of seed and epoch), as TensorBatchStream's `prefetch`. */
  prefetch(): void {
    const raw = this.ensure();
    const epoch = this.epoch + 1;
    if (this.ahead?.seed === this.seed && this.ahead.epoch === epoch) return;
    this.ahead = { seed: this.seed, epoch, perm: permutation(random.foldIn(random.PRNGKey(this.seed), epoch), raw.count) };
  }

  abstractBatch(): PyTree {
    return imageAbstractBatch(this.batchSize, this.imageSize);
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
 * The bytes a split's shards hold once inflated: each shard's gzip ISIZE trailer (its size mod
 * 2^32; at least the compressed size), summed.
 */
export function gzipShardBytes(files: string[]): number {
  let total = 0;
  for (const f of files) {
    const st = fs.statSync(f);
    let isize = 0;
    if (st.size >= 18) {
      const fd = fs.openSync(f, 'r');
      try {
        const b = Buffer.alloc(4);
        fs.readSync(fd, b, 0, 4, st.size - 4);
        isize = b.readUInt32LE(0);
      } finally {
        fs.closeSync(fd);
      }
    }
    total += Math.max(isize, st.size);
  }
  return total;
}

/** Splits whose shards inflate to more than this are streamed (`stream: 'auto'`): 2 GiB. */
export const IMAGENET_STREAM_THRESHOLD_BYTES = 2 * 1024 ** 3;

/** A malformed shard in a stream (bad gzip or CRC) as an ImagenetFormatError. */
function asFormatError(e: unknown): unknown {
  if (e instanceof RecordCorruptionError || e instanceof GzipFormatError) return new ImagenetFormatError(e.message);
  return e;
}

/** Options of {@link StreamingImageBatchStream}: the shard stream's, and where a resume that must replay says so. */
export interface StreamingImageBatchStreamOptions extends ShuffledRecordStreamOptions {
  /** Where to report a resume that replays the stream (default: a line on stderr). */
  log?: (line: string) => void;
}

type ImageExample = { image: Uint8Array; label: number };

/**
 * A split read as a stream (reference `make_python_iter` of `tfrecord_image_classification_datasets`):
 * the shards repeat forever in a shuffled order, 4 read at once, examples through a shuffle buffer
 * of `shuffleBufferSize` (10 000), batches of B (see `tfrecord_stream.ts`). Memory: the buffer
 * (10 000 images: 123 MB at 64x64) and one chunk per open shard. There are no epochs (`epoch` stays
 * 0); `position` counts batches. `getState` adds the shard stream's `cursor` (open shards, the
 * buffer's examples as (file, record), random state), and `setState` with it seeks straight there,
 * reading only the shards it names; a state without a usable cursor (an older checkpoint, or a
 * position edited away from its cursor's) replays the stream from its start to the position
 * (reading position·B examples, no tensors), and says so through `log` when it replays a fresh stream.
 */
export class StreamingImageBatchStream implements BatchStream {
  private stream: ShuffledRecordStream<ImageExample> | null = null;
  private position = 0;
  /** Examples the last `next` gave: how many `prefetch` draws. */
  private lastCount = 0;

  constructor(
    private readonly files: () => string[],
    private readonly size: number,
    private readonly imageSize: [number, number],
    private readonly batchSize: number,
    private seed: number,
    private readonly opts: StreamingImageBatchStreamOptions = {},
  ) {}

  private ensure(): ShuffledRecordStream<ImageExample> {
    if (!this.stream) {
      this.stream = new ShuffledRecordStream(this.files(), random.PRNGKey(this.seed), (record, file) => decodeImagenetExample(record, this.size, `${file}: a record`), this.opts);
    }
    return this.stream;
  }

  private draw(): ImageExample {
    const s = this.ensure();
    try {
      return s.next();
    } catch (e) {
      throw asFormatError(e);
    }
  }

  /** Records the shard stream has read since it was (re)opened: a seek reads only what its cursor names, a replay everything up to the position. */
  get recordsRead(): number {
    return this.stream?.recordsRead ?? 0;
  }

  next(shape: number[] = []): Batch {
    const B = this.batchSize;
    const n = shape.reduce((a, b) => a * b, 1) * B;
    const px = this.size * this.size * 3;
    const imgs = new Uint8Array(n * px);
    const labels = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const ex = this.draw();
      imgs.set(ex.image, j * px);
      labels[j] = ex.label;
    }
    this.position += n / B;
    this.lastCount = n;
    return imageBatch(imgs, labels, shape, B, this.size, this.imageSize);
  }

  /**
   * Reads and decodes ahead as many examples as the last `next` gave (while the caller's threads
   * work); the batches and the position are unchanged. An error met here is thrown by the `next`
   * that reaches it.
   */
  prefetch(): void {
    if (this.lastCount > 0) this.ensure().readAhead(this.lastCount);
  }

  abstractBatch(): PyTree {
    return imageAbstractBatch(this.batchSize, this.imageSize);
  }

  getState(): StreamState {
    const cursor = this.stream?.cursor();
    return cursor ? { seed: this.seed, epoch: 0, position: this.position, cursor } : { seed: this.seed, epoch: 0, position: this.position };
  }

  setState(s: StreamState): void {
    if (s.seed === this.seed && s.position === this.position) return;
    let why = 'the state has no stream cursor (a checkpoint written before lopt-ts saved one)';
    if (s.cursor !== undefined) {
      this.close();
      this.seed = s.seed;
      const stream = this.ensure();
      const mismatch = stream.mismatch(s.cursor);
      if (mismatch === null && s.cursor.drawn === s.position * this.batchSize) {
        try {
          stream.seek(s.cursor);
        } catch (e) {
          this.close();
          throw asFormatError(e);
        }
        this.position = s.position;
        return;
      }
      why = mismatch ?? `its cursor is at example ${s.cursor.drawn}, not at batch ${s.position} (${s.position * this.batchSize} examples)`;
    }
    if (s.seed !== this.seed || s.position < this.position) {
      this.close();
      this.seed = s.seed;
    }
    if (s.position > this.position && this.position === 0) {
      (this.opts.log ?? ((l: string) => process.stderr.write(l + '\n')))(
        `streamed split (seed ${s.seed}): replaying ${s.position} batches (${s.position * this.batchSize} examples) from the start to resume at batch ${s.position}: ${why}`,
      );
    }
    for (; this.position < s.position; this.position++) for (let j = 0; j < this.batchSize; j++) this.draw();
  }

  /** Closes the open shards and drops what was drawn ahead (the next batch starts the stream over from position 0). */
  close(): void {
    this.stream?.close();
    this.stream = null;
    this.position = 0;
    this.lastCount = 0;
  }
}

/** How {@link imagenetDatasets} reads its splits. */
export interface ImagenetDatasetsOptions {
  /** The `imagenet2012_<S>` folder itself (default: found by {@link findImagenetDir}). */
  dir?: string;
  /**
   * `true`: stream every split from its shards; `false`: read each split whole into memory;
   * `'auto'` (default): stream the splits whose shards inflate to more than `streamThresholdBytes`.
   * The environment variable `LOPT_IMAGENET_STREAM` (`1` / `0` / `auto`) overrides the default.
   */
  stream?: boolean | 'auto';
  /** Default {@link IMAGENET_STREAM_THRESHOLD_BYTES}. */
  streamThresholdBytes?: number;
  /** Streamed splits: examples in the shuffle buffer (reference `shuffle_buffer_size`, 10 000). */
  shuffleBufferSize?: number;
  /** Streamed splits: where a resume that has to replay the stream says so (default stderr; not part of the datasets' cache key). */
  log?: (line: string) => void;
}

function streamMode(opts: ImagenetDatasetsOptions): boolean | 'auto' {
  if (opts.stream !== undefined) return opts.stream;
  const env = process.env.LOPT_IMAGENET_STREAM;
  if (env === '1' || env === 'true') return true;
  if (env === '0' || env === 'false') return false;
  return 'auto';
}

/**
 * One split's stream: in memory ({@link HostImageBatchStream}) or streamed
 * ({@link StreamingImageBatchStream}), decided on the first batch when `stream` is `'auto'`.
 */
class ImagenetSplitStream implements BatchStream {
  private inner: BatchStream | null = null;
  private pending: StreamState | null = null;

  constructor(
    private readonly makeInner: () => BatchStream,
    private readonly B: number,
    private readonly imageSize: [number, number],
    private readonly seed: number,
  ) {}

  private ensure(): BatchStream {
    if (!this.inner) {
      this.inner = this.makeInner();
      if (this.pending) this.inner.setState(this.pending);
      this.pending = null;
    }
    return this.inner;
  }

  next(shape?: number[]): Batch {
    return this.ensure().next(shape);
  }

  /** The inner stream's `prefetch`, once it exists (before the first batch there is nothing to read ahead). */
  prefetch(): void {
    this.inner?.prefetch?.();
  }

  abstractBatch(): PyTree {
    return imageAbstractBatch(this.B, this.imageSize);
  }

  getState(): StreamState {
    return this.inner ? this.inner.getState() : (this.pending ?? { seed: this.seed, epoch: 0, position: 0 });
  }

  setState(s: StreamState): void {
    if (this.inner) this.inner.setState(s);
    else this.pending = { ...s };
  }
}

/**
 * `imagenet<S>_datasets(batch_size, image_size=(S, S))`: cached per arguments, so all tasks share
 * one stream per split; 1000 classes. The files are looked at on the first `next()` of each split
 * (a missing folder fails there, naming what it looked for); `opts.dir` names the
 * `imagenet2012_<S>` folder itself. A split too large for memory (`opts.stream`, by default those
 * inflating to over 2 GiB: imagenet32's and imagenet64's train splits) is streamed from its shards
 * with the reference's shuffle buffer; the others are read whole and shuffled per epoch.
 */
export function imagenetDatasets(size: ImagenetSize, batchSize: number, imageSize: [number, number] = [size, size], opts: ImagenetDatasetsOptions = {}): Datasets {
  const mode = streamMode(opts);
  const threshold = opts.streamThresholdBytes ?? IMAGENET_STREAM_THRESHOLD_BYTES;
  const key = `imagenet${size}|${batchSize}|${imageSize.join('x')}|${opts.dir ?? ''}|${mode}|${threshold}|${opts.shuffleBufferSize ?? ''}`;
  return cachedDatasets(key, () => {
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [
        s,
        new ImagenetSplitStream(
          () => {
            const dir = opts.dir ?? findImagenetDir(size);
            const files = imagenetShards(dir, s);
            const streamed = mode === 'auto' ? gzipShardBytes(files) > threshold : mode;
            if (streamed) return new StreamingImageBatchStream(() => files, size, imageSize, batchSize, i, { shuffleBufferSize: opts.shuffleBufferSize, log: opts.log });
            return new HostImageBatchStream(
              () => {
                const rawKey = `${dir}|${s}`;
                let raw = RAW.get(rawKey);
                if (!raw) {
                  raw = readImagenetShards(files, size);
                  RAW.set(rawKey, raw);
                }
                return raw;
              },
              size,
              imageSize,
              batchSize,
              i,
            );
          },
          batchSize,
          imageSize,
          i,
        ),
      ]),
    ) as unknown as Record<SplitName, BatchStream>;
    return new SplitDatasets(streams, { num_classes: 1000, name: `imagenet${size}`, image_size: imageSize, batch_size: batchSize });
  });
}
