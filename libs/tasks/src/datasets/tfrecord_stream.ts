/**
 * Streaming GZIP TFRecord shards, for splits too large to hold in memory (downsampled ImageNet's
 * imagenet32 / imagenet64 train splits). Mirrors the input pipeline of the reference's
 * `tasks/datasets/base.py`, `tfrecord_image_classification_datasets`, `make_python_iter`:
 *
 *   filenames.repeat(-1).shuffle(2 · #files)                       -> {@link ShuffleBuffer} over an endless file list
 *   TFRecordDataset(files, "GZIP", num_parallel_reads=4)            -> {@link InterleavedRecords}: 4 open shards, round robin
 *   .map(parse).shuffle(shuffle_buffer_size=10000)                  -> {@link ShuffleBuffer} of decoded examples
 *   .batch(batch_size, drop_remainder=True)                        -> the caller draws B examples per batch
 *
 * Everything is synchronous (a `BatchStream.next()` is): a shard is read a chunk at a time with
 * `fs.readSync`, inflated by fflate's streaming `Gunzip` and split into records by @lopt/core's
 * `RecordSplitter` (CRCs checked). Randomness comes from threefry keys (not TF's Philox), so the
 * order is lopt-ts's own, reproducible from the seed.
 */
import * as fs from 'fs';
import { Gunzip } from 'fflate';
import { random, RecordCorruptionError, RecordSplitter, type PRNGKey } from '@lopt/core';

/** Bytes read from a shard per `fs.readSync` call. */
export const STREAM_CHUNK_BYTES = 1 << 20;

/** A shard whose gzip data cannot be inflated (the message names the file). */
export class GzipFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GzipFormatError';
  }
}

/**
 * The records of one GZIP-compressed TFRecord file, in order, read and inflated a chunk at a time
 * (memory: one chunk and the records it completes). The file is closed at its end or by `close()`.
 */
export class GzipRecordReader {
  private fd: number | null;
  private queue: Uint8Array[] = [];
  private qi = 0;
  private readonly splitter: RecordSplitter;
  private readonly gunzip: Gunzip;
  private done = false;

  constructor(
    readonly file: string,
    private readonly chunkBytes = STREAM_CHUNK_BYTES,
  ) {
    this.fd = fs.openSync(file, 'r');
    this.splitter = new RecordSplitter(file);
    this.gunzip = new Gunzip((data) => {
      for (const r of this.splitter.push(data)) this.queue.push(r);
    });
  }

  /** The next record, or null after the last one. Throws on bad gzip data or a bad record (`RecordCorruptionError`). */
  next(): Uint8Array | null {
    while (this.qi >= this.queue.length) {
      if (this.done) return null;
      this.queue = [];
      this.qi = 0;
      const chunk = Buffer.allocUnsafe(this.chunkBytes);
      const n = fs.readSync(this.fd!, chunk, 0, chunk.length, null);
      try {
        if (n === 0) {
          this.done = true;
          this.close();
          this.gunzip.push(new Uint8Array(0), true);
          this.splitter.end();
        } else {
          this.gunzip.push(chunk.subarray(0, n), false);
        }
      } catch (e) {
        this.done = true;
        this.close();
        if (e instanceof RecordCorruptionError) throw e;
        throw new GzipFormatError(`${this.file}: not valid gzip data (${(e as Error).message})`);
      }
    }
    return this.queue[this.qi++];
  }

  /** Closes the file (further `next()` calls return what was already inflated, then null). */
  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/**
 * Uniform random integers from a threefry key: blocks of `randomBits(foldIn(key, block), 1024)`,
 * each integer `bits mod m` (the bias, m / 2^32, is below 3e-6 for buffers of 10 000).
 */
export class KeyedRandomInts {
  private bits: Uint32Array = new Uint32Array(0);
  private i = 0;
  private block = 0;

  constructor(private readonly key: PRNGKey) {}

  /** A random integer in [0, m). */
  below(m: number): number {
    if (this.i >= this.bits.length) {
      this.bits = random.randomBits(random.foldIn(this.key, this.block++), 1024);
      this.i = 0;
    }
    return this.bits[this.i++] % m;
  }
}

/**
 * `tf.data.Dataset.shuffle(bufferSize)` over a pull source: the buffer is filled to `bufferSize`,
 * then each element drawn is a uniformly chosen slot, refilled from the source; once the source
 * is exhausted a drawn slot is filled with the last one (the buffer drains). `null` when empty.
 */
export class ShuffleBuffer<T> {
  private readonly buf: T[] = [];
  private exhausted = false;

  constructor(
    private readonly source: () => T | null,
    private readonly bufferSize: number,
    private readonly rng: KeyedRandomInts,
  ) {
    if (!(bufferSize >= 1)) throw new RangeError(`shuffle buffer size must be at least 1, got ${bufferSize}`);
  }

  private pull(): T | null {
    if (this.exhausted) return null;
    const x = this.source();
    if (x === null) this.exhausted = true;
    return x;
  }

  /** The next element, or null when the source and the buffer are both empty. */
  next(): T | null {
    while (this.buf.length < this.bufferSize) {
      const x = this.pull();
      if (x === null) break;
      this.buf.push(x);
    }
    if (this.buf.length === 0) return null;
    const j = this.rng.below(this.buf.length);
    const out = this.buf[j];
    const x = this.pull();
    if (x !== null) this.buf[j] = x;
    else {
      this.buf[j] = this.buf[this.buf.length - 1];
      this.buf.pop();
    }
    return out;
  }
}

/**
 * `TFRecordDataset(files, num_parallel_reads=cycleLength)`: up to `cycleLength` shards open at
 * once, one record from each in turn; a shard that ends is replaced, in its slot, by the next file
 * of `files` (the endless, shuffled file order). Endless while `nextFile` is.
 */
export class InterleavedRecords {
  private readonly slots: (GzipRecordReader | null)[];
  private cursor = 0;
  private emptyRun = 0;

  /** `maxEmptyRun`: shards opened in a row without a record before giving up (files that hold no records). */
  constructor(
    private readonly nextFile: () => string | null,
    cycleLength: number,
    private readonly chunkBytes = STREAM_CHUNK_BYTES,
    private readonly maxEmptyRun = Infinity,
  ) {
    this.slots = new Array(Math.max(1, cycleLength)).fill(null);
  }

  /** The next record (with the file it came from), or null when every file has been read. */
  next(): { record: Uint8Array; file: string } | null {
    for (let tries = 0; tries <= this.slots.length; ) {
      const k = this.cursor;
      let reader = this.slots[k];
      if (!reader) {
        const f = this.nextFile();
        if (f === null) {
          // no more files: move on; stop after one turn of empty slots
          this.cursor = (k + 1) % this.slots.length;
          tries++;
          continue;
        }
        if (++this.emptyRun > this.maxEmptyRun) throw new Error(`no records in ${this.maxEmptyRun} shards opened in a row (last: ${f})`);
        reader = new GzipRecordReader(f, this.chunkBytes);
        this.slots[k] = reader;
      }
      const record = reader.next();
      if (record === null) {
        this.slots[k] = null; // the next file opens in this slot
        continue;
      }
      this.cursor = (k + 1) % this.slots.length;
      this.emptyRun = 0;
      return { record, file: reader.file };
    }
    return null;
  }

  /** Closes every open shard. */
  close(): void {
    for (const r of this.slots) r?.close();
    this.slots.fill(null);
  }
}

/** Options of {@link ShuffledRecordStream}. */
export interface ShuffledRecordStreamOptions {
  /** Examples in the shuffle buffer (the reference's `shuffle_buffer_size`, default 10 000). */
  shuffleBufferSize?: number;
  /** Shards read at once (the reference's `num_parallel_reads`, default 4). */
  cycleLength?: number;
  /** Bytes per read (default {@link STREAM_CHUNK_BYTES}). */
  chunkBytes?: number;
}

/**
 * An endless stream of decoded examples from GZIP TFRecord shards: the files repeat forever in an
 * order shuffled through a buffer of 2·#files (key `foldIn(key, 0)`), 4 at a time interleaved, and
 * the decoded examples pass a shuffle buffer (key `foldIn(key, 1)`). `decode` turns a record into
 * an example (and may throw for a malformed one).
 */
export class ShuffledRecordStream<T> {
  private readonly records: InterleavedRecords;
  private readonly examples: ShuffleBuffer<T>;

  constructor(files: string[], key: PRNGKey, decode: (record: Uint8Array, file: string) => T, opts: ShuffledRecordStreamOptions = {}) {
    if (files.length === 0) throw new Error('ShuffledRecordStream: no files');
    let f = 0;
    const endless = () => files[f++ % files.length];
    const fileOrder = new ShuffleBuffer<string>(endless, 2 * files.length, new KeyedRandomInts(random.foldIn(key, 0)));
    const cycle = opts.cycleLength ?? 4;
    // every file is opened within a few turns of the 2·#files buffer: a long run of empty shards means no records at all
    this.records = new InterleavedRecords(() => fileOrder.next(), cycle, opts.chunkBytes, 8 * files.length + cycle);
    this.examples = new ShuffleBuffer<T>(
      () => {
        const r = this.records.next();
        return r === null ? null : decode(r.record, r.file);
      },
      opts.shuffleBufferSize ?? 10000,
      new KeyedRandomInts(random.foldIn(key, 1)),
    );
  }

  /** The next example (never null: the file list repeats forever). */
  next(): T {
    const x = this.examples.next();
    if (x === null) throw new Error('ShuffledRecordStream: the files hold no records');
    return x;
  }

  /** Closes the open shards. */
  close(): void {
    this.records.close();
  }
}
