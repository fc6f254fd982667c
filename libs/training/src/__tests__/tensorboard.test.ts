import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  SummaryWriter,
  readEventFile,
  listEventFiles,
  scalarsByTag,
  makeHistogram,
  decodeRecords,
  RecordCorruptionError,
  DT_STRING,
} from '../tensorboard';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-tb-'));
}

describe('SummaryWriter', () => {
  it('names the file as TensorFlow does and writes file_version first', () => {
    const dir = tmpdir();
    const w = new SummaryWriter(dir);
    w.close();
    const name = path.basename(w.path);
    expect(name).toMatch(new RegExp(`^events\\.out\\.tfevents\\.\\d+\\.${os.hostname().replace(/\./g, '\\.')}\\.${process.pid}\\.\\d+$`));
    expect(listEventFiles(dir)).toEqual([w.path]);
    const events = readEventFile(w.path);
    expect(events).toHaveLength(1);
    expect(events[0].file_version).toBe('brain.Event:2');
    expect(events[0].wall_time).toBeGreaterThan(1.6e9);
  });

  it('round-trips scalars, histograms and text', () => {
    const dir = tmpdir();
    const w = new SummaryWriter(dir, { flushSeconds: 0 });
    w.scalar('loss', 1.5, 0);
    w.scalar('loss', 0.25, 10);
    w.scalar('loss', 0, 20);
    w.scalars({ 'meta/grad_norm': 3, 'meta/lr': 1e-3 }, 2 ** 40);
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    w.histogram('theta', values, 5, 20);
    w.text('config', '# Config\n\n| a | b |\n|---|---|\n| 1 | 2 |', 7);
    w.close();

    const events = readEventFile(w.path);
    expect(events).toHaveLength(1 + 6);
    const scalars = scalarsByTag(events);
    expect(scalars.get('loss')!.map((p) => [p.step, p.value])).toEqual([
      [0, 1.5],
      [10, 0.25],
      [20, 0],
    ]);
    expect(scalars.get('meta/grad_norm')![0]).toMatchObject({ step: 2 ** 40, value: 3 });
    expect(scalars.get('meta/lr')![0].value).toBeCloseTo(1e-3, 8);

    const h = events[5].summary!.value[0];
    expect(events[5].step).toBe(5);
    expect(h.tag).toBe('theta');
    const histo = h.histo!;
    expect(histo.num).toBe(1000);
    expect(histo.min).toBeCloseTo(Math.min(...values), 5);
    expect(histo.max).toBeCloseTo(Math.max(...values), 5);
    expect(histo.sum).toBeCloseTo(values.reduce((a, b) => a + b, 0), 3);
    expect(histo.bucket.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(histo.bucket).toHaveLength(21);
    expect(histo.bucket_limit).toHaveLength(21);
    expect(histo.bucket[0]).toBe(0);
    expect(histo.bucket_limit[0]).toBeCloseTo(histo.min, 5);
    expect(histo.bucket_limit[20]).toBeCloseTo(histo.max, 5);

    const t = events[6].summary!.value[0];
    expect(events[6].step).toBe(7);
    expect(t.tag).toBe('config');
    expect(t.metadata!.plugin_data!.plugin_name).toBe('text');
    expect(t.tensor!.dtype).toBe(DT_STRING);
    expect(t.tensor!.tensor_shape!.dim).toEqual([]);
    expect(Buffer.from(t.tensor!.string_val![0]).toString('utf8')).toContain('| 1 | 2 |');
  });

  it('buffers until flush and appends to the same file', () => {
    const dir = tmpdir();
    const w = new SummaryWriter(dir, { flushSeconds: 0, maxQueue: 1000 });
    const sizeAfterOpen = fs.statSync(w.path).size;
    w.scalar('a', 1, 1);
    expect(fs.statSync(w.path).size).toBe(sizeAfterOpen);
    w.flush();
    const afterFlush = fs.statSync(w.path).size;
    expect(afterFlush).toBeGreaterThan(sizeAfterOpen);
    w.scalar('a', 2, 2);
    w.close();
    expect(readEventFile(w.path).map((e) => e.step)).toEqual([0, 1, 2]);
    expect(() => w.scalar('a', 3, 3)).toThrow(/closed/);
    w.close(); // idempotent
  });

  it("scalarsByTag drops what a killed run logged past the step a resumed run's SessionLog.START names, as TensorBoard does", () => {
    const dir = tmpdir();
    const killed = new SummaryWriter(dir, { flushSeconds: 0 });
    for (let s = 0; s < 6; s++) killed.scalars({ loss: 10 + s, other: s }, s);
    killed.close(); // its steps 3..5 came after its last checkpoint (step 3)
    const resumed = new SummaryWriter(dir, { flushSeconds: 0 });
    resumed.sessionStart(3);
    for (let s = 3; s < 5; s++) resumed.scalar('loss', 100 + s, s);
    resumed.close();
    const byTag = scalarsByTag(listEventFiles(dir).flatMap((f) => readEventFile(f)));
    expect(byTag.get('loss')!.map((p) => [p.step, p.value])).toEqual([[0, 10], [1, 11], [2, 12], [3, 103], [4, 104]]);
    expect(byTag.get('other')!.map((p) => p.step)).toEqual([0, 1, 2]); // every tag, not only those logged again
  });

  it('flushes by queue length', () => {
    const w = new SummaryWriter(tmpdir(), { flushSeconds: 0, maxQueue: 3 });
    for (let i = 0; i < 3; i++) w.scalar('x', i, i);
    expect(readEventFile(w.path)).toHaveLength(4);
    w.close();
  });

  it('two writers in one directory get distinct files', () => {
    const dir = tmpdir();
    const a = new SummaryWriter(dir);
    const b = new SummaryWriter(dir);
    a.close();
    b.close();
    expect(a.path).not.toBe(b.path);
    expect(listEventFiles(dir)).toHaveLength(2);
  });

  it('rejects bad steps', () => {
    const w = new SummaryWriter(tmpdir());
    expect(() => w.scalar('x', 1, -1)).toThrow(/step/);
    expect(() => w.scalar('x', 1, 1.5)).toThrow(/step/);
    w.close();
  });

  it('detects a corrupted byte and names the offset', () => {
    const w = new SummaryWriter(tmpdir());
    w.scalar('loss', 1, 1);
    w.scalar('loss', 2, 2);
    w.close();
    const buf = fs.readFileSync(w.path);
    const records = decodeRecords(buf);
    const secondStart = 12 + records[0].length + 4;
    // Flip one byte inside the second record's data.
    const bad = Buffer.from(buf);
    bad[secondStart + 12 + 2] ^= 0xff;
    fs.writeFileSync(w.path, bad);
    expect(() => readEventFile(w.path)).toThrow(RecordCorruptionError);
    expect(() => readEventFile(w.path)).toThrow(new RegExp(`data CRC mismatch in record at offset ${secondStart}`));
    // A corrupted length field is caught by the length CRC.
    const badLen = Buffer.from(buf);
    badLen[secondStart] ^= 0x01;
    fs.writeFileSync(w.path, badLen);
    expect(() => readEventFile(w.path)).toThrow(new RegExp(`length CRC mismatch in record at offset ${secondStart}`));
    // A truncated file is reported too.
    fs.writeFileSync(w.path, buf.subarray(0, buf.length - 3));
    expect(() => readEventFile(w.path)).toThrow(/truncated/);
  });
});

describe('makeHistogram', () => {
  it('handles constant, empty and non-finite input', () => {
    const c = makeHistogram([2, 2, 2], 30);
    expect(c.num).toBe(3);
    expect(c.bucket.reduce((a, b) => a + b, 0)).toBe(3);
    expect(c.min).toBe(2);
    expect(c.max).toBe(2);
    const e = makeHistogram([], 30);
    expect(e.num).toBe(0);
    const n = makeHistogram([1, NaN, Infinity, 3], 4);
    expect(n.num).toBe(2);
    expect(n.bucket.reduce((a, b) => a + b, 0)).toBe(2);
    // buckets are ascending and each limit is the right edge of its bucket
    for (let i = 1; i < n.bucket_limit.length; i++) expect(n.bucket_limit[i]).toBeGreaterThan(n.bucket_limit[i - 1]);
  });

  it('trims empty end buckets but keeps counts', () => {
    const h = makeHistogram([0, 0, 0, 10], 10);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(4);
    expect(h.bucket[0]).toBe(0);
    expect(h.bucket[1]).toBe(3);
    expect(h.bucket[h.bucket.length - 1]).toBe(1);
  });
});
