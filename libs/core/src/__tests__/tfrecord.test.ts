/** TFRecord framing (tfrecord.ts): the CRC-32C check vector, TensorFlow's mask, framing, and the streaming splitter. */
import { crc32c, decodeRecords, encodeRecord, encodeRecords, maskedCrc32c, RecordCorruptionError, RecordSplitter } from '../tfrecord';

describe('CRC-32C and TFRecord framing', () => {
  it('matches the CRC-32C check vector', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii')) >>> 0).toBe(0xe3069283);
  });

  it('masks as TensorFlow does', () => {
    const crc = 0xe3069283;
    const expected = ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) % 2 ** 32;
    expect(maskedCrc32c(Buffer.from('123456789', 'ascii'))).toBe(expected);
  });

  it('frames records with length, masked CRCs and data', () => {
    const data = Buffer.from('hello');
    const rec = encodeRecord(data);
    expect(rec.length).toBe(8 + 4 + 5 + 4);
    expect(Number(rec.readBigUInt64LE(0))).toBe(5);
    expect(rec.readUInt32LE(8)).toBe(maskedCrc32c(rec.subarray(0, 8)));
    expect(rec.subarray(12, 17).toString()).toBe('hello');
    expect(rec.readUInt32LE(17)).toBe(maskedCrc32c(data));
    const two = Buffer.concat([rec, encodeRecord(Buffer.from(''))]);
    const back = decodeRecords(two);
    expect(back.map((b) => Buffer.from(b).toString())).toEqual(['hello', '']);
  });
});

describe('RecordSplitter', () => {
  const records = ['', 'a', 'hello world', 'x'.repeat(1000)].map((s) => Buffer.from(s));
  const file = encodeRecords(records);

  it('gives the records of a stream cut at every chunk size, as decodeRecords does', () => {
    expect(decodeRecords(file).map((r) => Buffer.from(r).toString())).toEqual(records.map(String));
    for (const size of [1, 2, 7, 12, 13, 16, 100, file.length]) {
      const s = new RecordSplitter('test');
      const out: Uint8Array[] = [];
      for (let off = 0; off < file.length; off += size) out.push(...s.push(file.subarray(off, off + size)));
      s.end();
      expect(out.map((r) => Buffer.from(r).toString())).toEqual(records.map(String));
    }
  });

  it('names the offset of a corrupt record and of a stream cut inside a record', () => {
    const bad = Buffer.from(file);
    const second = encodeRecord(records[0]).length; // record 1 starts here
    bad[second + 12] ^= 1; // its data byte
    const s = new RecordSplitter('shard');
    expect(() => s.push(bad)).toThrow(new RecordCorruptionError(`shard: data CRC mismatch in record at offset ${second}`, second));
    const cut = new RecordSplitter('shard');
    cut.push(file.subarray(0, file.length - 3));
    expect(() => cut.end()).toThrow(/truncated record at offset \d+/);
  });
});
