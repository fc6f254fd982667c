/**
 * Streamed TFRecord shards (datasets/tfrecord_stream.ts) and downsampled ImageNet's streamed splits
 * (StreamingImageBatchStream in datasets/imagenet.ts), on shards written here (round trip).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { encodeRecords, random, RecordCorruptionError } from '@lopt/core';
import { clearDatasetCache } from '../datasets/cache';
import { encodeImagenetTfrecords, gzipShardBytes, ImagenetFormatError, imagenetDatasets, imagenetShards, readImagenetShards, StreamingImageBatchStream } from '../datasets/imagenet';
import { GzipFormatError, GzipRecordReader, InterleavedRecords, KeyedRandomInts, ShuffleBuffer, ShuffledRecordStream, type RecordStreamCursor } from '../datasets/tfrecord_stream';
import type { StreamState } from '../datasets/splits';
import { useTestBackend } from './helpers';

beforeAll(async () => {
  await useTestBackend();
});
afterEach(() => clearDatasetCache());

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-imagenet-stream-'));

/** A gzip TFRecord file of the given records (each a short byte string). */
function writeRecords(file: string, records: string[]): void {
  fs.writeFileSync(file, zlib.gzipSync(encodeRecords(records.map((r) => Buffer.from(r)))));
}

const text = (r: Uint8Array | null | undefined) => (r ? Buffer.from(r).toString() : null);

describe('tfrecord_stream', () => {
  test('GzipRecordReader reads a shard in small chunks: the records in order, then null; bad gzip or a bad CRC throws', () => {
    const dir = tmp();
    const records = Array.from({ length: 50 }, (_, k) => `record-${k}-${'x'.repeat(k * 7)}`);
    writeRecords(path.join(dir, 'a.gz'), records);
    const r = new GzipRecordReader(path.join(dir, 'a.gz'), 13);
    const got: string[] = [];
    for (let x = r.next(); x !== null; x = r.next()) got.push(text(x)!);
    expect(got).toEqual(records);
    expect(r.next()).toBeNull();

    fs.writeFileSync(path.join(dir, 'b.gz'), Buffer.from('this is not gzip data at all'));
    expect(() => new GzipRecordReader(path.join(dir, 'b.gz')).next()).toThrow(GzipFormatError);
    const raw = encodeRecords([Buffer.from('hello'), Buffer.from('world')]);
    raw[12 + 5 + 4 + 12 + 1] ^= 1; // a data byte of the second record
    fs.writeFileSync(path.join(dir, 'c.gz'), zlib.gzipSync(raw));
    const c = new GzipRecordReader(path.join(dir, 'c.gz'), 4);
    expect(() => {
      while (c.next() !== null);
    }).toThrow(RecordCorruptionError);
    // a shard cut short inside a record
    fs.writeFileSync(path.join(dir, 'd.gz'), zlib.gzipSync(encodeRecords([Buffer.from('hello')]).subarray(0, 14)));
    expect(() => new GzipRecordReader(path.join(dir, 'd.gz')).next()).toThrow(/truncated record/);
  });

  test('ShuffleBuffer: size 1 keeps the order; a buffer as large as the source draws a permutation, reproducible from the key', () => {
    const src = (n: number) => {
      let i = 0;
      return () => (i < n ? i++ : null);
    };
    const drain = (b: ShuffleBuffer<number>) => {
      const out: number[] = [];
      for (let x = b.next(); x !== null; x = b.next()) out.push(x);
      return out;
    };
    const key = random.PRNGKey(3);
    expect(drain(new ShuffleBuffer(src(20), 1, new KeyedRandomInts(key)))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const a = drain(new ShuffleBuffer(src(200), 50, new KeyedRandomInts(key)));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 200 }, (_, i) => i));
    // an element can leave the buffer only after it entered: position k holds an element < k + 50
    a.forEach((x, k) => expect(x).toBeLessThan(k + 50));
    expect(drain(new ShuffleBuffer(src(200), 50, new KeyedRandomInts(key)))).toEqual(a);
    expect(drain(new ShuffleBuffer(src(200), 50, new KeyedRandomInts(random.PRNGKey(4))))).not.toEqual(a);
  });

  test('InterleavedRecords: one record from each open shard in turn; an ended shard is replaced in its slot', () => {
    const dir = tmp();
    writeRecords(path.join(dir, 'A.gz'), ['a0', 'a1', 'a2']);
    writeRecords(path.join(dir, 'B.gz'), ['b0']);
    writeRecords(path.join(dir, 'C.gz'), ['c0', 'c1']);
    const files = ['A', 'B', 'C'].map((f) => path.join(dir, `${f}.gz`));
    let i = 0;
    const inter = new InterleavedRecords(() => files[i++] ?? null, 2, 5);
    const got: string[] = [];
    for (let r = inter.next(); r !== null; r = inter.next()) got.push(text(r.record)!);
    expect(got).toEqual(['a0', 'b0', 'a1', 'c0', 'a2', 'c1']);
    // endless empty shards: an error instead of a hang
    writeRecords(path.join(dir, 'E.gz'), []);
    const empty = new InterleavedRecords(() => path.join(dir, 'E.gz'), 4, 1024, 10);
    expect(() => empty.next()).toThrow(/no records in 10 shards/);
  });
});

/** n images of size S whose bytes encode the label (k · 37 + 11) mod 1000, in `shards` files of `split`. */
function writeSplit(folder: string, split: string, size: number, n: number, shards: number) {
  fs.mkdirSync(folder, { recursive: true });
  const px = size * size * 3;
  const labels = Array.from({ length: n }, (_, k) => (k * 37 + 11) % 1000);
  const images = new Uint8Array(n * px).map((_, j) => (labels[Math.floor(j / px)] + 5 * (j % px)) % 256);
  const per = Math.ceil(n / shards);
  for (let s = 0; s < shards; s++) {
    const a = s * per;
    const b = Math.min(n, a + per);
    fs.writeFileSync(path.join(folder, `${split}.tfrecords-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}`), encodeImagenetTfrecords(images.subarray(a * px, b * px), labels.slice(a, b), size));
  }
  return { images, labels };
}

function imagenetFolder(size: number, trainCount: number) {
  const folder = path.join(tmp(), `imagenet2012_${size}`);
  const train = writeSplit(folder, 'train', size, trainCount, 5);
  for (const s of ['inner_valid', 'outer_valid', 'test']) writeSplit(folder, s, size, 6, 1);
  return { folder, train };
}

type ImageBatch = { image: tf.Tensor; label: tf.Tensor };

function labelsOf(b: ImageBatch): number[] {
  return Array.from(b.label.dataSync());
}

describe('streamed ImageNet splits', () => {
  test('batches match the shard examples; the stream repeats the shards endlessly; no tensors leak', () => {
    const { folder, train } = imagenetFolder(8, 40);
    const ds = imagenetDatasets(8, 8, [8, 8], { dir: folder, stream: true, shuffleBufferSize: 16 });
    const s = ds.split('train');
    expect(s.abstractBatch()).toEqual({ image: { shape: [8, 8, 8, 3], dtype: 'float32' }, label: { shape: [8], dtype: 'int32' } });
    const before = tf.memory().numTensors;
    const counts = new Map<number, number>();
    for (let b = 0; b < 15; b++) {
      const x = s.next() as ImageBatch;
      expect(x.image.shape).toEqual([8, 8, 8, 3]);
      const img = x.image.dataSync();
      labelsOf(x).forEach((l, j) => {
        const k = train.labels.indexOf(l);
        expect(k).toBeGreaterThanOrEqual(0);
        for (let i = 0; i < 192; i++) expect(img[j * 192 + i]).toBeCloseTo(train.images[k * 192 + i] / 255, 6);
        counts.set(l, (counts.get(l) ?? 0) + 1);
      });
      tf.dispose(Object.values(x));
    }
    // 120 examples drawn from 40: every example, each about 3 times (the shards repeat)
    expect(counts.size).toBe(40);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(6);
    // no epochs: position counts batches (and the shard stream's cursor stands at its 120 examples)
    expect(s.getState()).toMatchObject({ seed: 0, epoch: 0, position: 15, cursor: { drawn: 120 } });
    // stacked batches
    const st = s.next([2, 3]) as ImageBatch;
    expect(st.image.shape).toEqual([2, 3, 8, 8, 8, 3]);
    expect(st.label.shape).toEqual([2, 3, 8]);
    tf.dispose(Object.values(st));
    expect(s.getState().position).toBe(21);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('reproducible from the seed; setState replays to a position; another seed, another order', () => {
    const { folder } = imagenetFolder(8, 30);
    const logs: string[] = [];
    const opts = { dir: folder, stream: true, shuffleBufferSize: 10, log: (l: string) => logs.push(l) } as const;
    const draw = (n: number) => {
      clearDatasetCache();
      const s = imagenetDatasets(8, 5, [4, 4], opts).split('train');
      return Array.from({ length: n }, () => {
        const x = s.next() as ImageBatch;
        const l = labelsOf(x);
        tf.dispose(Object.values(x));
        return l;
      });
    };
    const a = draw(8);
    expect(draw(8)).toEqual(a);
    // resume at position 5 in a fresh stream, and rewind an advanced one
    clearDatasetCache();
    const s = imagenetDatasets(8, 5, [4, 4], opts).split('train');
    s.setState({ seed: 0, epoch: 0, position: 5 });
    const x = s.next() as ImageBatch;
    expect(labelsOf(x)).toEqual(a[5]);
    s.setState({ seed: 0, epoch: 0, position: 2 });
    const y = s.next() as ImageBatch;
    expect(labelsOf(y)).toEqual(a[2]);
    tf.dispose([...Object.values(x), ...Object.values(y)]);
    // another seed, another order
    s.setState({ seed: 7, epoch: 0, position: 0 });
    const z = s.next() as ImageBatch;
    expect(labelsOf(z)).not.toEqual(a[0]);
    tf.dispose(Object.values(z));
    // positions given without a cursor were replayed (the fresh stream's, and the rewind's)
    expect(logs.map((l) => l.match(/replaying \d+ batches/)?.[0])).toEqual(['replaying 5 batches', 'replaying 2 batches']);
  });

  test('prefetch reads ahead without changing the batches or the position, streamed and in memory; an error met ahead is thrown by the next batch', () => {
    const { folder } = imagenetFolder(8, 30);
    const logs: string[] = [];
    for (const stream of [true, false]) {
      const run = (prefetch: boolean) => {
        clearDatasetCache();
        const s = imagenetDatasets(8, 4, [4, 4], { dir: folder, stream, shuffleBufferSize: 10, log: (l) => logs.push(l) }).split('train');
        s.prefetch?.(); // before the first batch: nothing to do
        const out: number[][] = [];
        for (let b = 0; b < 12; b++) {
          const x = s.next(b % 3 === 0 ? [2] : []) as ImageBatch;
          out.push(labelsOf(x));
          tf.dispose(Object.values(x));
          if (prefetch) {
            const { cursor: _, ...st } = s.getState();
            s.prefetch!();
            // (a streamed split's cursor now lists the examples read ahead: the same place, said another way)
            expect({ ...s.getState(), cursor: undefined }).toEqual({ ...st, cursor: undefined });
          }
        }
        // resuming after a prefetch gives the batch after the saved position
        const st = s.getState();
        const y = s.next() as ImageBatch;
        s.setState({ ...st, position: st.position - 1 });
        const z = s.next() as ImageBatch;
        const w = s.next() as ImageBatch;
        expect(labelsOf(w)).toEqual(labelsOf(y));
        out.push(labelsOf(z));
        tf.dispose([y, z, w].flatMap((b) => Object.values(b)));
        return out;
      };
      expect(run(true)).toEqual(run(false));
    }
    // the streamed rewind above moved the position away from its state's cursor: replayed, and said so
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(/replaying \d+ batches .*its cursor is at example \d+, not at batch \d+/);
    // shards cut short: prefetch keeps the error, the next batch throws it
    const files = fs.readdirSync(folder).filter((f) => f.startsWith('train')).map((f) => path.join(folder, f));
    clearDatasetCache();
    const s = imagenetDatasets(8, 2, [4, 4], { dir: folder, stream: true, shuffleBufferSize: 1 }).split('train');
    tf.dispose(Object.values(s.next() as ImageBatch));
    for (const f of files) fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 100));
    let thrown: unknown = null;
    for (let b = 0; b < 30 && thrown === null; b++) {
      expect(() => s.prefetch!()).not.toThrow();
      try {
        tf.dispose(Object.values(s.next() as ImageBatch));
      } catch (e) {
        thrown = e;
      }
    }
    expect(thrown).toBeInstanceOf(ImagenetFormatError);
  });

  test("'auto' streams only splits above the threshold; false reads them whole; a corrupt shard is an ImagenetFormatError", () => {
    const { folder } = imagenetFolder(8, 20);
    const files = fs.readdirSync(folder).filter((f) => f.startsWith('train')).map((f) => path.join(folder, f));
    const bytes = gzipShardBytes(files);
    expect(readImagenetShards(files, 8).count).toBe(20);
    expect(bytes).toBe(files.reduce((t, f) => t + zlib.gunzipSync(fs.readFileSync(f)).length, 0));
    const epochAfter = (opts: Parameters<typeof imagenetDatasets>[3]) => {
      clearDatasetCache();
      const s = imagenetDatasets(8, 5, [4, 4], opts).split('train');
      for (let b = 0; b < 6; b++) tf.dispose(Object.values(s.next() as ImageBatch));
      return s.getState().epoch;
    };
    // 20 examples, 4 batches per epoch in memory: 6 batches reach epoch 1; streamed there are no epochs
    expect(epochAfter({ dir: folder, stream: 'auto', streamThresholdBytes: bytes - 1 })).toBe(0);
    expect(epochAfter({ dir: folder, stream: 'auto', streamThresholdBytes: bytes })).toBe(1);
    expect(epochAfter({ dir: folder, stream: false })).toBe(1);
    expect(epochAfter({ dir: folder })).toBe(1);

    const gz = fs.readFileSync(files[2]);
    const raw = zlib.gunzipSync(gz);
    raw[40] ^= 0xff;
    fs.writeFileSync(files[2], zlib.gzipSync(raw));
    clearDatasetCache();
    const s = imagenetDatasets(8, 5, [4, 4], { dir: folder, stream: true }).split('train');
    expect(() => {
      for (let b = 0; b < 10; b++) tf.dispose(Object.values(s.next() as ImageBatch));
    }).toThrow(ImagenetFormatError);
  });
});

describe('resuming a stream from its cursor (no replay)', () => {
  /** Shards of different lengths (one of a single record), records "s<shard>-r<record>". */
  function shards(lengths: number[]): string[] {
    const dir = tmp();
    return lengths.map((n, f) => {
      const file = path.join(dir, `shard-${f}.gz`);
      writeRecords(file, Array.from({ length: n }, (_, r) => `s${f}-r${r}`));
      return file;
    });
  }
  const opts = { shuffleBufferSize: 8, cycleLength: 3, chunkBytes: 64 };
  const open = (files: string[], seed = 1) => new ShuffledRecordStream(files, random.PRNGKey(seed), (r) => text(r)!, opts);
  const take = (s: ShuffledRecordStream<string>, n: number) => Array.from({ length: n }, () => s.next());

  test('KeyedRandomInts.seek(n) continues as after n draws, across its 1024-integer blocks', () => {
    for (const n of [0, 1, 1023, 1024, 1025, 3000]) {
      const a = new KeyedRandomInts(random.PRNGKey(9));
      for (let i = 0; i < n; i++) a.below(1000);
      expect(a.draws).toBe(n);
      const b = new KeyedRandomInts(random.PRNGKey(9));
      b.seek(n);
      expect(b.draws).toBe(n);
      expect(Array.from({ length: 1100 }, () => b.below(77))).toEqual(Array.from({ length: 1100 }, () => a.below(77)));
    }
  });

  test('stop after k examples, save the cursor as JSON, seek a new stream there: the same examples as the uninterrupted stream, for every k (mid-shard, at shard ends, across epochs)', () => {
    const lengths = [7, 11, 1, 9, 13];
    const files = shards(lengths);
    const N = 150;
    const all = take(open(files), N + 40);
    let atShardEnd = 0;
    let emptySlot = 0;
    for (let k = 0; k <= N; k++) {
      const a = open(files);
      expect(take(a, k)).toEqual(all.slice(0, k));
      if (k % 4 === 1) a.readAhead(5); // examples read ahead travel in the cursor
      const c = JSON.parse(JSON.stringify(a.cursor())) as RecordStreamCursor;
      a.close();
      expect(c.drawn).toBe(k);
      // a shard read to its end but not yet replaced, or a slot whose shard ended (the next file opens there)
      if (c.slots.some((sl) => sl !== null && sl[1] === lengths[sl[0]])) atShardEnd++;
      if (c.slots.some((sl) => sl === null) && k > 0) emptySlot++;
      const b = open(files);
      b.seek(c);
      expect(b.examplesDrawn).toBe(k);
      expect({ k, rest: take(b, 40) }).toEqual({ k, rest: all.slice(k, k + 40) });
      b.close();
    }
    // 150 examples of 41 records: past several epochs of the shard list, and across shard boundaries
    expect(atShardEnd).toBeGreaterThan(5);
    expect(emptySlot + atShardEnd).toBeGreaterThan(5);
  });

  test('a seek reads the shards the cursor names, not the stream up to its position (a replay would read every example drawn)', () => {
    const lengths = [20, 20, 20, 20, 20, 20];
    const files = shards(lengths);
    const a = open(files, 3);
    take(a, 5000); // 41 passes over the 120 records
    expect(a.recordsRead).toBeGreaterThanOrEqual(5000);
    const c = a.cursor()!;
    const after = take(a, 30);
    const b = open(files, 3);
    b.seek(c);
    // at most every shard once (buffered examples) plus each open slot's shard: 6·20 + 3·20
    expect(b.recordsRead).toBeLessThanOrEqual(180);
    expect(take(b, 30)).toEqual(after);
  });

  test('a cursor over another shard list is refused; a malformed one is a RangeError; a shard shorter than the cursor says is an error', () => {
    const files = shards([5, 6, 7]);
    const a = open(files);
    take(a, 30);
    const c = a.cursor()!;
    const other = open(files.slice(0, 2));
    expect(other.mismatch(c)).toMatch(/another shard list/);
    expect(() => other.seek(c)).toThrow(/another shard list/);
    expect(open(files).mismatch({ version: 2 })).toMatch(/not a version-1 stream cursor/);
    expect(() => open(files).seek({ ...c, slots: c.slots.slice(1) })).toThrow(RangeError);
    expect(() => open(files).seek({ ...c, examples: { ...c.examples, file: c.examples.file.map(() => 3) } })).toThrow(/names a file outside 0..2/);
    const long = { ...c, examples: { ...c.examples, record: c.examples.record.map(() => 99) } };
    expect(() => open(files).seek(long)).toThrow(/holds \d+ records, the cursor names record 98|holds \d+ records, the cursor names record 99/);
  });

  /** n images of size 8 in 4 shards of a train split, through StreamingImageBatchStream (B = 3, buffer 16). */
  function streamed(folder: string, log?: (l: string) => void) {
    return new StreamingImageBatchStream(() => imagenetShards(folder, 'train'), 8, [4, 4], 3, 0, { shuffleBufferSize: 16, cycleLength: 2, log });
  }
  const batch = (s: StreamingImageBatchStream, shape: number[] = []) => {
    const x = s.next(shape) as ImageBatch;
    const out = { label: labelsOf(x), image: Array.from(x.image.dataSync()) };
    tf.dispose(Object.values(x));
    return out;
  };

  test('streamed ImageNet split: a state file written at batch k (after a prefetch) resumes with the batches of the uninterrupted run; an old state without a cursor replays, saying so', () => {
    const folder = path.join(tmp(), 'imagenet2012_8');
    writeSplit(folder, 'train', 8, 50, 4);
    const all = (() => {
      const s = streamed(folder);
      return Array.from({ length: 60 }, () => batch(s));
    })();
    const stateFile = path.join(tmp(), 'state.json');
    for (const k of [1, 7, 16, 41]) {
      const logs: string[] = [];
      const a = streamed(folder, (l) => logs.push(l));
      for (let b = 0; b < k; b++) expect(batch(a)).toEqual(all[b]);
      a.prefetch();
      fs.writeFileSync(stateFile, JSON.stringify(a.getState()));
      a.close();
      const st = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as StreamState;
      expect(st).toMatchObject({ seed: 0, epoch: 0, position: k, cursor: { drawn: 3 * k } });
      expect(st.cursor!.ahead.file).toHaveLength(3); // the prefetched batch is in the cursor, not lost
      const b = streamed(folder, (l) => logs.push(l));
      b.setState(st);
      expect(b.getState().position).toBe(k);
      expect(b.recordsRead).toBeLessThanOrEqual(50 + 2 * 13); // every shard at most once, plus the open ones
      const got = Array.from({ length: 60 - k }, () => batch(b));
      expect({ k, got }).toEqual({ k, got: all.slice(k) });
      expect(logs).toEqual([]);
      // the same position without a cursor (a checkpoint from before): replayed, with a log line naming why
      const c = streamed(folder, (l) => logs.push(l));
      c.setState({ seed: 0, epoch: 0, position: k });
      expect(c.recordsRead).toBeGreaterThanOrEqual(3 * k);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toContain(`replaying ${k} batches (${3 * k} examples)`);
      expect(logs[0]).toContain('no stream cursor');
      expect(batch(c)).toEqual(all[k]);
      b.close();
      c.close();
    }
    // far into the stream (2000 batches = 120 passes over the shards) a resume still reads at most the shards once and the open ones
    const far = streamed(folder, () => {});
    far.setState({ seed: 0, epoch: 0, position: 2000 });
    const farState = far.getState();
    const want = batch(far);
    const resumed = streamed(folder);
    resumed.setState(JSON.parse(JSON.stringify(farState)));
    expect(resumed.recordsRead).toBeLessThanOrEqual(50 + 2 * 13);
    expect(batch(resumed)).toEqual(want);
    // a cursor saved over other shards falls back to replaying, saying why
    const logs: string[] = [];
    fs.renameSync(path.join(folder, imagenetShards(folder, 'train').map((f) => path.basename(f))[3]), path.join(folder, 'train.tfrecords-renamed'));
    const moved = streamed(folder, (l) => logs.push(l));
    moved.setState(JSON.parse(JSON.stringify(farState)));
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/replaying 2000 batches .*another shard list/);
    moved.close();
    far.close();
    resumed.close();
  });

  test('through imagenetDatasets: the split resumes from a JSON round trip of its state in a fresh datasets object', () => {
    const { folder } = imagenetFolder(8, 40);
    const o = { dir: folder, stream: true, shuffleBufferSize: 12, log: () => {} } as const;
    const s = imagenetDatasets(8, 4, [4, 4], o).split('train');
    for (let b = 0; b < 9; b++) tf.dispose(Object.values(s.next() as ImageBatch));
    const st = JSON.parse(JSON.stringify(s.getState())) as StreamState;
    const want = [labelsOf(s.next([2]) as ImageBatch), labelsOf(s.next() as ImageBatch)];
    clearDatasetCache();
    const t = imagenetDatasets(8, 4, [4, 4], o).split('train');
    t.setState(st); // before the first batch: kept until the stream opens
    expect(t.getState()).toEqual(st);
    const got = [labelsOf(t.next([2]) as ImageBatch), labelsOf(t.next() as ImageBatch)];
    expect(got).toEqual(want);
  });
});
