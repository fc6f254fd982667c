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
 *
 * Resuming (lopt-ts's own; the reference's iterators are not checkpointed): a stream's
 * {@link RecordStreamCursor} names, per open shard, its file and the records read from it; the
 * examples in the shuffle buffer (and any read ahead) by (file, record number); and how many random
 * numbers each shuffle has drawn. `seek` rebuilds the stream there by reading only the shards those
 * name (each up to the last record needed), so a resume reads O(buffer + open shards) records
 * however far the stream had gone, and gives the same examples as the uninterrupted stream.
 */
import * as fs from 'fs';
import { Gunzip } from 'fflate';
import * as path from 'path';
import { crc32c, random, RecordCorruptionError, RecordSplitter, type PRNGKey } from '@lopt/core';

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
  /** Records returned so far (the number of the next one). */
  recordsRead = 0;

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
    this.recordsRead++;
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

  /** Integers drawn so far. */
  get draws(): number {
    return this.block === 0 ? 0 : (this.block - 1) * 1024 + this.i;
  }

  /** Continues as a fresh instance would after `draws` integers (one block of bits computed). */
  seek(draws: number): void {
    if (!(Number.isSafeInteger(draws) && draws >= 0)) throw new RangeError(`KeyedRandomInts.seek: ${draws} is not a count of draws`);
    if (draws === 0) {
      this.bits = new Uint32Array(0);
      this.block = 0;
      this.i = 0;
      return;
    }
    const b = Math.ceil(draws / 1024) - 1;
    this.bits = random.randomBits(random.foldIn(this.key, b), 1024);
    this.block = b + 1;
    this.i = draws - b * 1024;
  }
}

/**
 * `tf.data.Dataset.shuffle(bufferSize)` over a pull source: the buffer is filled to `bufferSize`,
 * then each element drawn is a uniformly chosen slot, refilled from the source; once the source
 * is exhausted a drawn slot is filled with the last one (the buffer drains). `null` when empty.
 */
export class ShuffleBuffer<T> {
  private readonly buf: T[] = [];
  private sourceEnded = false;

  constructor(
    private readonly source: () => T | null,
    private readonly bufferSize: number,
    private readonly rng: KeyedRandomInts,
  ) {
    if (!(bufferSize >= 1)) throw new RangeError(`shuffle buffer size must be at least 1, got ${bufferSize}`);
  }

  private pull(): T | null {
    if (this.sourceEnded) return null;
    const x = this.source();
    if (x === null) this.sourceEnded = true;
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

  /** The buffered elements in slot order (the order `restore` takes them in). */
  contents(): readonly T[] {
    return this.buf;
  }

  /** Whether the source has ended (the buffer is draining). */
  get exhausted(): boolean {
    return this.sourceEnded;
  }

  /** Replaces the buffer by `items` (slot order, as `contents` gave them); the random state is the caller's (its KeyedRandomInts). */
  restore(items: T[], exhausted = false): void {
    if (items.length > this.bufferSize) throw new RangeError(`ShuffleBuffer.restore: ${items.length} items for a buffer of ${this.bufferSize}`);
    this.buf.length = 0;
    for (const x of items) this.buf.push(x);
    this.sourceEnded = exhausted;
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

  /** The next record (with the file it came from and its number in that file), or null when every file has been read. */
  next(): { record: Uint8Array; file: string; index: number } | null {
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
      return { record, file: reader.file, index: reader.recordsRead - 1 };
    }
    return null;
  }

  /** Where the interleave stands: per slot the open shard and the records read from it, the next slot, the empty shards in a row. */
  state(): { slots: ({ file: string; records: number } | null)[]; cursor: number; emptyRun: number } {
    return { slots: this.slots.map((r) => (r ? { file: r.file, records: r.recordsRead } : null)), cursor: this.cursor, emptyRun: this.emptyRun };
  }

  /** Closes the open shards and continues from `readers` (one per slot, each already at its place), `cursor` and `emptyRun`. */
  restore(readers: (GzipRecordReader | null)[], cursor: number, emptyRun: number): void {
    if (readers.length !== this.slots.length) throw new RangeError(`InterleavedRecords.restore: ${readers.length} readers for ${this.slots.length} slots`);
    if (!(Number.isInteger(cursor) && cursor >= 0 && cursor < this.slots.length)) throw new RangeError(`InterleavedRecords.restore: slot ${cursor} of ${this.slots.length}`);
    this.close();
    readers.forEach((r, k) => (this.slots[k] = r));
    this.cursor = cursor;
    this.emptyRun = emptyRun;
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
 * Where a {@link ShuffledRecordStream} stands, as JSON (saved in checkpoints; `seek` continues
 * from it). Files are numbers into the stream's file list, which `shards` and `shardsCrc` identify.
 */
export interface RecordStreamCursor {
  /** Format version (1). */
  version: 1;
  /** Files in the stream's list. */
  shards: number;
  /** CRC-32C of the files' base names joined by newlines: the cursor only fits the same list. */
  shardsCrc: number;
  /** Examples the stream has given (`next` calls). */
  drawn: number;
  /** The shuffled file order: files taken from the endless list, its buffer (file numbers, slot order), random integers drawn. */
  fileOrder: { taken: number; buffer: number[]; draws: number };
  /** Per interleave slot: `[file, records read from it]` of its open shard, or null. */
  slots: ([number, number] | null)[];
  /** The interleave's next slot and its count of empty shards opened in a row. */
  cursor: number;
  emptyRun: number;
  /** The example shuffle buffer in slot order (`file[i]`, `record[i]`: where example i was read) and its random integers drawn. */
  examples: { file: number[]; record: number[]; draws: number };
  /** Examples read ahead (`readAhead`), given before the buffer's: where each was read. */
  ahead: { file: number[]; record: number[] };
}

/** An example with where it was read: file number and record number in that file. */
interface Located<T> {
  value: T;
  file: number;
  record: number;
}

/** CRC-32C of the base names of `files` joined by newlines (identifies a shard list in a cursor). */
export function shardListCrc(files: string[]): number {
  return crc32c(Buffer.from(files.map((f) => path.basename(f)).join('\n'), 'utf8'));
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * An endless stream of decoded examples from GZIP TFRecord shards: the files repeat forever in an
 * order shuffled through a buffer of 2·#files (key `foldIn(key, 0)`), 4 at a time interleaved, and
 * the decoded examples pass a shuffle buffer (key `foldIn(key, 1)`). `decode` turns a record into
 * an example (and may throw for a malformed one). `cursor()` / `seek()` save and restore where it
 * stands without replaying it.
 */
export class ShuffledRecordStream<T> {
  private readonly records: InterleavedRecords;
  private readonly examples: ShuffleBuffer<Located<T>>;
  private readonly fileOrder: ShuffleBuffer<number>;
  private readonly fileRng: KeyedRandomInts;
  private readonly exampleRng: KeyedRandomInts;
  private readonly fileIndex = new Map<string, number>();
  private readonly cycle: number;
  private readonly bufferSize: number;
  private taken = 0;
  private drawn = 0;
  private ahead: Located<T>[] = [];
  private aheadAt = 0;
  private aheadError: unknown = null;
  private read = 0;

  constructor(
    private readonly files: string[],
    key: PRNGKey,
    private readonly decode: (record: Uint8Array, file: string) => T,
    private readonly opts: ShuffledRecordStreamOptions = {},
  ) {
    if (files.length === 0) throw new Error('ShuffledRecordStream: no files');
    files.forEach((f, i) => {
      if (!this.fileIndex.has(f)) this.fileIndex.set(f, i);
    });
    const endless = () => this.taken++ % files.length;
    this.fileRng = new KeyedRandomInts(random.foldIn(key, 0));
    this.fileOrder = new ShuffleBuffer<number>(endless, 2 * files.length, this.fileRng);
    this.cycle = Math.max(1, opts.cycleLength ?? 4);
    // every file is opened within a few turns of the 2·#files buffer: a long run of empty shards means no records at all
    this.records = new InterleavedRecords(
      () => {
        const f = this.fileOrder.next();
        return f === null ? null : files[f];
      },
      this.cycle,
      opts.chunkBytes,
      8 * files.length + this.cycle,
    );
    this.bufferSize = opts.shuffleBufferSize ?? 10000;
    this.exampleRng = new KeyedRandomInts(random.foldIn(key, 1));
    this.examples = new ShuffleBuffer<Located<T>>(
      () => {
        const r = this.records.next();
        if (r === null) return null;
        this.read++;
        return { value: decode(r.record, r.file), file: this.fileIndex.get(r.file)!, record: r.index };
      },
      this.bufferSize,
      this.exampleRng,
    );
  }

  private drawLocated(): Located<T> {
    const x = this.examples.next();
    if (x === null) throw new Error('ShuffledRecordStream: the files hold no records');
    return x;
  }

  /** The next example (never null: the file list repeats forever); examples read ahead come first. */
  next(): T {
    let x: Located<T>;
    if (this.aheadAt < this.ahead.length) {
      x = this.ahead[this.aheadAt++];
      if (this.aheadAt === this.ahead.length) {
        this.ahead = [];
        this.aheadAt = 0;
      }
    } else if (this.aheadError !== null) {
      const e = this.aheadError;
      this.aheadError = null;
      throw e;
    } else x = this.drawLocated();
    this.drawn++;
    return x.value;
  }

  /**
   * Reads and decodes examples ahead until `count` wait (the examples `next` gives are unchanged).
   * An error met here is kept and thrown by the `next` that reaches it.
   */
  readAhead(count: number): void {
    try {
      while (this.aheadError === null && this.ahead.length - this.aheadAt < count) this.ahead.push(this.drawLocated());
    } catch (e) {
      this.aheadError = e;
    }
  }

  /** Examples read ahead and not yet given. */
  get queued(): number {
    return this.ahead.length - this.aheadAt;
  }

  /** Records this stream has read from its shards (drawing and seeking). */
  get recordsRead(): number {
    return this.read;
  }

  /** Examples given by `next` since the stream began (a seek sets it to the cursor's). */
  get examplesDrawn(): number {
    return this.drawn;
  }

  /** Where the stream stands, for `seek`; null while an error read ahead waits to be thrown (the stream is then past a bad shard). */
  cursor(): RecordStreamCursor | null {
    if (this.aheadError !== null || this.examples.exhausted) return null;
    const inter = this.records.state();
    const slots = inter.slots.map((s) => (s ? ([this.fileIndex.get(s.file)!, s.records] as [number, number]) : null));
    const buf = this.examples.contents();
    const ahead = this.ahead.slice(this.aheadAt);
    return {
      version: 1,
      shards: this.files.length,
      shardsCrc: shardListCrc(this.files),
      drawn: this.drawn,
      fileOrder: { taken: this.taken, buffer: [...this.fileOrder.contents()], draws: this.fileRng.draws },
      slots,
      cursor: inter.cursor,
      emptyRun: inter.emptyRun,
      examples: { file: buf.map((x) => x.file), record: buf.map((x) => x.record), draws: this.exampleRng.draws },
      ahead: { file: ahead.map((x) => x.file), record: ahead.map((x) => x.record) },
    };
  }

  /** Why `cursor` cannot continue this stream (another file list, or not a cursor at all), or null if it can. */
  mismatch(cursor: unknown): string | null {
    const c = cursor as RecordStreamCursor;
    if (!c || typeof c !== 'object' || c.version !== 1) return `not a version-1 stream cursor`;
    if (c.shards !== this.files.length || c.shardsCrc !== shardListCrc(this.files)) {
      return `it was saved over another shard list (${c.shards} files, names' CRC ${c.shardsCrc}; now ${this.files.length} files, CRC ${shardListCrc(this.files)})`;
    }
    return null;
  }

  /** Checks a cursor's fields (as read from a checkpoint), throwing a RangeError naming the first bad one. */
  private check(c: RecordStreamCursor): void {
    const bad = (what: string) => new RangeError(`stream cursor: ${what}`);
    const n = this.files.length;
    const fileNo = (f: unknown) => isCount(f) && f < n;
    const pairs = (o: { file: unknown; record: unknown }, what: string, max: number) => {
      if (!o || !Array.isArray(o.file) || !Array.isArray(o.record) || o.file.length !== o.record.length) throw bad(`${what} must hold equal file and record lists`);
      if (o.file.length > max) throw bad(`${what} holds ${o.file.length} examples, more than ${max}`);
      if (!o.file.every(fileNo) || !o.record.every(isCount)) throw bad(`${what} names a file outside 0..${n - 1} or a negative record`);
    };
    if (!isCount(c.drawn)) throw bad('drawn');
    const fo = c.fileOrder;
    if (!fo || !isCount(fo.taken) || !isCount(fo.draws) || !Array.isArray(fo.buffer) || fo.buffer.length > 2 * n || !fo.buffer.every(fileNo)) throw bad('fileOrder');
    if (!Array.isArray(c.slots) || c.slots.length !== this.cycle) throw bad(`slots must be ${this.cycle} entries`);
    for (const s of c.slots) if (s !== null && !(Array.isArray(s) && s.length === 2 && fileNo(s[0]) && isCount(s[1]))) throw bad(`slot ${JSON.stringify(s)}`);
    if (!(isCount(c.cursor) && c.cursor < this.cycle) || !isCount(c.emptyRun)) throw bad('cursor / emptyRun');
    pairs(c.examples, 'examples', this.bufferSize);
    if (!isCount(c.examples.draws)) throw bad('examples.draws');
    pairs(c.ahead, 'ahead', Infinity);
  }

  /**
   * Continues from `cursor` (from `cursor()` of a stream over the same files, key and options):
   * the next examples are those the saved stream would have given. Reads only the shards the
   * cursor names: each open shard up to its place, each other shard up to the last buffered record
   * it holds. Throws (leaving the stream closed) if the cursor does not fit or a shard is shorter
   * than it says.
   */
  seek(cursor: RecordStreamCursor): void {
    const why = this.mismatch(cursor);
    if (why) throw new Error(`ShuffledRecordStream.seek: ${why}`);
    this.check(cursor);
    this.close();
    // what to fill: for file f and record r, the examples (buffer slots, then read-ahead) read from there
    const want = new Map<number, Map<number, Located<T>[]>>();
    const place = (file: number, record: number): Located<T> => {
      const x = { value: undefined as unknown as T, file, record };
      let byRecord = want.get(file);
      if (!byRecord) want.set(file, (byRecord = new Map()));
      const list = byRecord.get(record);
      if (list) list.push(x);
      else byRecord.set(record, [x]);
      return x;
    };
    const buffer = cursor.examples.file.map((f, i) => place(f, cursor.examples.record[i]));
    const ahead = cursor.ahead.file.map((f, i) => place(f, cursor.ahead.record[i]));
    const scan = (reader: GzipRecordReader, file: number, upTo: number) => {
      const byRecord = want.get(file);
      for (let r = reader.recordsRead; r < upTo; r++) {
        const record = reader.next();
        if (record === null) throw new Error(`stream cursor: ${reader.file} holds ${r} records, the cursor names record ${upTo - 1}`);
        this.read++;
        const targets = byRecord?.get(r);
        if (targets) {
          const value = this.decode(record, reader.file);
          for (const x of targets) x.value = value;
          byRecord!.delete(r);
        }
      }
      if (byRecord && byRecord.size === 0) want.delete(file);
    };
    const readers: (GzipRecordReader | null)[] = [];
    try {
      for (const s of cursor.slots) {
        if (!s) {
          readers.push(null);
          continue;
        }
        const reader = new GzipRecordReader(this.files[s[0]], this.opts.chunkBytes);
        readers.push(reader);
        scan(reader, s[0], s[1]);
      }
      for (const [file, byRecord] of [...want]) {
        const reader = new GzipRecordReader(this.files[file], this.opts.chunkBytes);
        let last = 0;
        for (const r of byRecord.keys()) last = Math.max(last, r);
        try {
          scan(reader, file, last + 1);
        } finally {
          reader.close();
        }
      }
    } catch (e) {
      for (const r of readers) r?.close();
      throw e;
    }
    this.taken = cursor.fileOrder.taken;
    this.fileOrder.restore([...cursor.fileOrder.buffer]);
    this.fileRng.seek(cursor.fileOrder.draws);
    this.records.restore(readers, cursor.cursor, cursor.emptyRun);
    this.examples.restore(buffer);
    this.exampleRng.seek(cursor.examples.draws);
    this.ahead = ahead;
    this.aheadAt = 0;
    this.drawn = cursor.drawn;
  }

  /** Closes the open shards and drops what was read ahead. */
  close(): void {
    this.records.close();
    this.ahead = [];
    this.aheadAt = 0;
    this.aheadError = null;
  }
}
