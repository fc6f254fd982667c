/**
 * TFRecord framing, shared by TensorBoard event files (@lopt/training) and the reference's dataset
 * shards (downsampled ImageNet in @lopt/tasks). Each record is
 *   uint64 LE length | uint32 LE masked CRC-32C(length bytes) | data | uint32 LE masked CRC-32C(data)
 * with mask(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
 */
import { crc32c as awsCrc32c } from '@aws-crypto/crc32c';

/** CRC-32C (Castagnoli) of `data` as an unsigned 32-bit number (`@aws-crypto/crc32c`). */
export const crc32c: (data: Uint8Array) => number = awsCrc32c;

/** TFRecord's masked CRC-32C of `data`: `((crc >>> 15) | (crc << 17)) + 0xa282ead8`, unsigned 32-bit. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames one record. */
export function encodeRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** Frames every record and concatenates them: a whole TFRecord file's bytes. */
export function encodeRecords(records: Uint8Array[]): Buffer {
  return Buffer.concat(records.map(encodeRecord));
}

/** A TFRecord whose length or data checksum is wrong, or that is cut short; `offset` is where it starts. */
export class RecordCorruptionError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'RecordCorruptionError';
  }
}

/** Splits a buffer of framed records, checking every CRC; throws naming the byte offset of a bad record. */
export function decodeRecords(buf: Uint8Array, source = 'buffer'): Uint8Array[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 12) {
      throw new RecordCorruptionError(`${source}: truncated record header at offset ${off}`, off);
    }
    const lenBig = b.readBigUInt64LE(off);
    const lenCrc = b.readUInt32LE(off + 8);
    if (maskedCrc32c(b.subarray(off, off + 8)) !== lenCrc) {
      throw new RecordCorruptionError(`${source}: length CRC mismatch in record at offset ${off}`, off);
    }
    const len = Number(lenBig);
    if (off + 12 + len + 4 > b.length) {
      throw new RecordCorruptionError(`${source}: truncated record data at offset ${off} (length ${len})`, off);
    }
    const data = b.subarray(off + 12, off + 12 + len);
    const dataCrc = b.readUInt32LE(off + 12 + len);
    if (maskedCrc32c(data) !== dataCrc) {
      throw new RecordCorruptionError(`${source}: data CRC mismatch in record at offset ${off}`, off);
    }
    out.push(new Uint8Array(data));
    off += 12 + len + 4;
  }
  return out;
}

/**
 * Splits a TFRecord byte stream that arrives in chunks (a gunzip stream of a shard too big to hold
 * whole): `push` returns the records completed by each chunk, `end` checks that nothing is left
 * over. CRCs are checked as in `decodeRecords`; offsets in errors count from the stream's start.
 */
export class RecordSplitter {
  private pending: Buffer = Buffer.alloc(0);
  private consumed = 0;

  constructor(private readonly source = 'stream') {}

  /** Appends `chunk` and returns the records it completes, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    const out: Uint8Array[] = [];
    let off = 0;
    while (this.pending.length - off >= 12) {
      const len = Number(this.pending.readBigUInt64LE(off));
      if (maskedCrc32c(this.pending.subarray(off, off + 8)) !== this.pending.readUInt32LE(off + 8)) {
        throw new RecordCorruptionError(`${this.source}: length CRC mismatch in record at offset ${this.consumed + off}`, this.consumed + off);
      }
      if (this.pending.length - off < 12 + len + 4) break;
      const data = this.pending.subarray(off + 12, off + 12 + len);
      if (maskedCrc32c(data) !== this.pending.readUInt32LE(off + 12 + len)) {
        throw new RecordCorruptionError(`${this.source}: data CRC mismatch in record at offset ${this.consumed + off}`, this.consumed + off);
      }
      out.push(new Uint8Array(data));
      off += 12 + len + 4;
    }
    this.consumed += off;
    this.pending = this.pending.subarray(off);
    return out;
  }

  /** The stream ended: throws if it stopped inside a record. */
  end(): void {
    if (this.pending.length) {
      throw new RecordCorruptionError(`${this.source}: truncated record at offset ${this.consumed} (${this.pending.length} bytes left over)`, this.consumed);
    }
  }
}
