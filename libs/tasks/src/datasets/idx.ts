/**
 * IDX files (the MNIST / Fashion-MNIST format), optionally gzip-compressed.
 *
 * Header: 4-byte magic (0x00 0x00 dtype ndim; 2051 = uint8 rank 3 images, 2049 = uint8 rank 1
 * labels), then ndim big-endian uint32 dimensions, then the data.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

/** IDX magic number of a uint8 rank-3 array (MNIST-style images `[n, h, w]`). */
export const IDX_IMAGES_MAGIC = 2051;
/** IDX magic number of a uint8 rank-1 array (MNIST-style labels `[n]`). */
export const IDX_LABELS_MAGIC = 2049;

/**
 * Thrown for an IDX file that cannot be read as expected: short or truncated, bad magic, an unsupported
 * dtype, bad gzip, or the wrong rank or example count.
 */
export class IdxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdxFormatError';
  }
}

/** A parsed IDX file: its magic number, dimensions and raw uint8 data (row-major). */
export interface IdxArray {
  magic: number;
  shape: number[];
  data: Uint8Array;
}

/** Parse an (uncompressed) IDX buffer of unsigned bytes; `expectMagic` is checked when given. */
export function parseIdx(buf: Uint8Array, expectMagic?: number, what = 'IDX data'): IdxArray {
  if (buf.length < 4) throw new IdxFormatError(`${what}: file too short for an IDX header (${buf.length} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  if (expectMagic !== undefined && magic !== expectMagic) {
    throw new IdxFormatError(`${what}: bad magic number ${magic}, expected ${expectMagic}`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) throw new IdxFormatError(`${what}: bad magic number ${magic} (first two bytes must be 0)`);
  if (buf[2] !== 0x08) throw new IdxFormatError(`${what}: unsupported IDX dtype 0x${buf[2].toString(16)} (only unsigned bytes, 0x08)`);
  const ndim = buf[3];
  const headerLen = 4 + 4 * ndim;
  if (buf.length < headerLen) throw new IdxFormatError(`${what}: file too short for a ${ndim}-d IDX header (${buf.length} bytes)`);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, b) => a * b, 1);
  const have = buf.length - headerLen;
  if (have < size) {
    throw new IdxFormatError(`${what}: file is short: header says ${shape.join('x')} = ${size} bytes of data, found ${have}`);
  }
  return { magic, shape, data: buf.subarray(headerLen, headerLen + size) };
}

/** Whether the file starts with the gzip magic (reads two bytes). */
function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Where the gunzipped copy of a gzip IDX file is kept: `$XDG_CACHE_HOME/lopt/idx-decoded/` (default
 * `~/.cache`), named by the source's absolute path, size and modification time, so a changed
 * source is decoded again; null when `LOPT_NO_DECODE_CACHE=1`.
 */
export function decodedIdxCachePath(file: string, stat: fs.Stats): string | null {
  if (process.env.LOPT_NO_DECODE_CACHE === '1') return null;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const id = createHash('sha1').update(`${path.resolve(file)}|${stat.size}|${stat.mtimeMs}`).digest('hex').slice(0, 16);
  return path.join(base, 'lopt', 'idx-decoded', `${path.basename(file).replace(/\.gz$/, '')}-${id}.idx`);
}

/**
 * Read an IDX file (gunzipped when it starts with the gzip magic). A gzip file's decoded bytes are
 * kept in a cache file ({@link decodedIdxCachePath}) and read from there next time: gunzipping
 * Fashion-MNIST's 60,000 training images takes ~0.5 s, and every process and branch thread of a
 * run reads them; the cached copy, ~20 ms. A cache that cannot be read or written is not used.
 */
export function readIdxFile(file: string, expectMagic?: number): IdxArray {
  if (!isGzip(file)) return parseIdx(fs.readFileSync(file), expectMagic, file);
  const cached = decodedIdxCachePath(file, fs.statSync(file));
  if (cached && fs.existsSync(cached)) {
    try {
      return parseIdx(fs.readFileSync(cached), expectMagic, file);
    } catch {
      // a torn or foreign cache file: decode the source again (and rewrite it below)
    }
  }
  let buf: Buffer;
  try {
    buf = zlib.gunzipSync(fs.readFileSync(file));
  } catch (e) {
    throw new IdxFormatError(`${file}: not a valid gzip file (${(e as Error).message})`);
  }
  const parsed = parseIdx(buf, expectMagic, file);
  if (cached) writeCacheFile(cached, buf);
  return parsed;
}

/**
 * Writes a cache file whole or not at all (a temporary file renamed into place: concurrent readers
 * never see half a file). A read-only or full cache folder is not an error: the caller computes
 * the contents again next time, as without the cache.
 */
export function writeCacheFile(file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/** Read an image file and its label file, checking magics, ranks and that the counts agree. */
export function readIdxImagesAndLabels(
  imagesPath: string,
  labelsPath: string,
  expectCount?: number,
): { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number } {
  const im = readIdxFile(imagesPath, IDX_IMAGES_MAGIC);
  const lb = readIdxFile(labelsPath, IDX_LABELS_MAGIC);
  if (im.shape.length !== 3) throw new IdxFormatError(`${imagesPath}: images must be rank 3, got [${im.shape.join(', ')}]`);
  if (lb.shape.length !== 1) throw new IdxFormatError(`${labelsPath}: labels must be rank 1, got [${lb.shape.join(', ')}]`);
  const [count, height, width] = im.shape;
  if (lb.shape[0] !== count) {
    throw new IdxFormatError(`${imagesPath} has ${count} images but ${labelsPath} has ${lb.shape[0]} labels`);
  }
  if (expectCount !== undefined && count !== expectCount) {
    throw new IdxFormatError(`${imagesPath}: expected ${expectCount} examples, found ${count}`);
  }
  return { images: im.data, labels: lb.data, count, height, width };
}

/** Write a gzip IDX file of unsigned bytes (used to build test fixtures). */
export function encodeIdx(magic: number, shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt32BE(magic, 0);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return zlib.gzipSync(Buffer.concat([header, Buffer.from(data)]));
}
