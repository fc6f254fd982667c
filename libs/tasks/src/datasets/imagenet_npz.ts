/**
 * The official downsampled ImageNet (image-net.org `Imagenet{8,16,32,64}_train_npz`, `_val_npz`;
 * Chrabaszcz, Loshchilov & Hutter 2017, box-resized) converted into the layout that
 * `imagenetDatasets` reads (`imagenet.ts`): `imagenet2012_<S>/<split>.tfrecords-NNNNN-of-MMMMM`,
 * GZIP TFRecords of `tf.train.Example {image: S·S·3 uint8 HWC, label: int32}`.
 *
 * Input: `.npz` files (zip archives of `.npy` arrays, stored or deflated, ZIP64 headers as numpy
 * writes them) holding `data` uint8 `[n, 3·S·S]` (channel-planar: all R, then G, then B, each
 * row-major) and `labels` int `[n]` (1-based); an extra `mean` is ignored. A `.zip` holding `.npz`
 * files (the download itself) is accepted too: its npz entries are extracted to a temporary folder
 * first. What is done to each example is what TFDS's `imagenet_resized` builder (the TFDS builder
 * of these same files) does: `reshape(image, (3, S, S)).transpose(1, 2, 0)` and `label - 1`.
 *
 * Labels: these files number the classes in the ILSVRC2012 devkit's `map_clsloc.txt` order
 * (`n02119789 1 kit_fox`, ...), not in the sorted-synset order of TFDS `imagenet2012`, which the
 * reference's own `imagenet2012_<S>` files (made from TFDS `imagenet2012` by
 * `make_resized_image_beam.py`) use. With `clsloc` (the text of `map_clsloc.txt`) each label is
 * mapped to its synset's rank among the sorted synsets, i.e. to the reference's numbering; without
 * it the labels stay in the files' order (minus one). The images differ from the reference's anyway
 * (box resize of the originals vs. the reference's `tf.image.resize`, bilinear).
 *
 * Splits: `test` is the validation npz files (50 000 examples); `train`, `inner_valid` and
 * `outer_valid` are the training npz files in order, the last `outerValid` examples going to
 * `outer_valid` and the `innerValid` before them to `inner_valid` (10 000 each by default; the
 * reference's own split sizes are set by flags of its beam script that it does not record).
 *
 * Everything streams: a pass over each npz reads its labels, a second pass its images, and shards
 * of `shardSize` examples are written as they fill, so memory stays at one shard.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { Unzip, UnzipInflate, type UnzipFile } from 'fflate';
import { encodeRecords } from '@lopt/core';
import type { SplitName } from '../base';
import { encodeExample, imagenetFolderName, type ImagenetSize } from './imagenet';

/** An npz / npy file that is not what the converter expects (the message says what and where). */
export class NpzFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NpzFormatError';
  }
}

/** A parsed `.npy` header: dtype string (e.g. `|u1`, `<i8`), shape, and where the data starts. */
export interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the array data in the `.npy` file. */
  dataOffset: number;
}

/** The header of a `.npy` file (format versions 1, 2 and 3), or null if `bytes` does not hold all of it yet. */
export function parseNpyHeader(bytes: Uint8Array, where = 'npy'): NpyHeader | null {
  if (bytes.length < 10) return null;
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (magic.some((m, i) => bytes[i] !== m)) throw new NpzFormatError(`${where}: not a .npy array (bad magic)`);
  const major = bytes[6];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let len: number;
  let start: number;
  if (major === 1) {
    len = b.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) return null;
    len = b.readUInt32LE(8);
    start = 12;
  } else throw new NpzFormatError(`${where}: unsupported .npy format version ${major}`);
  if (bytes.length < start + len) return null;
  const h = b.subarray(start, start + len).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([^']*)'/.exec(h)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(h)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(h)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new NpzFormatError(`${where}: unreadable .npy header ${JSON.stringify(h)}`);
  const shape = shapeText
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0)
    .map((x) => Number(x.replace(/L$/, '')));
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset: start + len };
}

/** Integer values of a little-endian (or byte-sized) numpy integer array's bytes. */
function npyIntegers(descr: string, data: Uint8Array, where: string): number[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const m = /^([<|=])([iu])([1248])$/.exec(descr);
  if (!m) throw new NpzFormatError(`${where}: labels of dtype ${descr}; expected a little-endian integer type`);
  const size = Number(m[3]);
  const signed = m[2] === 'i';
  const n = Math.floor(b.length / size);
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const o = k * size;
    if (size === 1) out[k] = signed ? b.readInt8(o) : b.readUInt8(o);
    else if (size === 2) out[k] = signed ? b.readInt16LE(o) : b.readUInt16LE(o);
    else if (size === 4) out[k] = signed ? b.readInt32LE(o) : b.readUInt32LE(o);
    else out[k] = Number(signed ? b.readBigInt64LE(o) : b.readBigUInt64LE(o));
  }
  return out;
}

/**
 * Streams the zip entry `entry` of `file` through `onData` (its inflated bytes, in order) and
 * returns whether it was found. Other entries are inflated and dropped; reading stops once the
 * entry has ended.
 */
export function streamZipEntry(file: string, entry: string, onData: (chunk: Uint8Array) => void, chunkBytes = 1 << 20): boolean {
  const fd = fs.openSync(file, 'r');
  let found = false;
  let finished = false;
  let failure: Error | null = null;
  try {
    const unzip = new Unzip((f: UnzipFile) => {
      const wanted = f.name === entry;
      if (wanted) found = true;
      f.ondata = (err, data, final) => {
        if (err) failure ??= err;
        else if (wanted) {
          if (data.length) onData(data);
          if (final) finished = true;
        }
      };
      f.start();
    });
    unzip.register(UnzipInflate);
    const buf = Buffer.allocUnsafe(chunkBytes);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      unzip.push(new Uint8Array(buf.subarray(0, n)), n === 0);
      if (failure) throw failure;
      if (n === 0 || finished) break;
    }
  } catch (e) {
    if (e instanceof NpzFormatError) throw e;
    throw new NpzFormatError(`${file}: cannot read zip entry ${entry}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
  return found;
}

/** The 1-based `labels` array of an npz file. */
export function readNpzLabels(file: string): number[] {
  const parts: Uint8Array[] = [];
  if (!streamZipEntry(file, 'labels.npy', (c) => parts.push(c))) throw new NpzFormatError(`${file}: no labels array (labels.npy)`);
  const bytes = Buffer.concat(parts);
  const h = parseNpyHeader(bytes, `${file}: labels.npy`);
  if (!h) throw new NpzFormatError(`${file}: labels.npy is cut short`);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const values = npyIntegers(h.descr, bytes.subarray(h.dataOffset), `${file}: labels.npy`);
  if (values.length !== count) throw new NpzFormatError(`${file}: labels.npy holds ${values.length} values, its header says ${count}`);
  return values;
}

/**
 * Streams the `data` array of an npz file as images: `onImage(k, hwc)` for each row k, the row
 * turned from channel-planar `[3, S, S]` into `[S, S, 3]`. Returns the number of rows.
 */
export function streamNpzImages(file: string, size: number, onImage: (k: number, hwc: Uint8Array) => void): number {
  const row = 3 * size * size;
  const plane = size * size;
  let head: Uint8Array = new Uint8Array(0);
  let header: NpyHeader | null = null;
  let pending: Uint8Array = new Uint8Array(0);
  let k = 0;
  const hwc = new Uint8Array(row);
  const emit = (chw: Uint8Array) => {
    for (let p = 0; p < plane; p++) {
      hwc[3 * p] = chw[p];
      hwc[3 * p + 1] = chw[plane + p];
      hwc[3 * p + 2] = chw[2 * plane + p];
    }
    onImage(k++, hwc);
  };
  const found = streamZipEntry(file, 'data.npy', (chunk) => {
    let c = chunk;
    if (!header) {
      head = Buffer.concat([head, c]);
      header = parseNpyHeader(head, `${file}: data.npy`);
      if (!header) return;
      const h = header;
      if (h.descr !== '|u1' && h.descr !== '<u1' && h.descr !== 'u1') throw new NpzFormatError(`${file}: data.npy has dtype ${h.descr}; expected uint8`);
      if (h.fortranOrder) throw new NpzFormatError(`${file}: data.npy is in Fortran order`);
      if (h.shape.length !== 2 || h.shape[1] !== row) throw new NpzFormatError(`${file}: data.npy has shape (${h.shape.join(', ')}); expected (n, ${row}) for ${size}x${size} images`);
      c = head.subarray(h.dataOffset);
    }
    if (pending.length) {
      const need = row - pending.length;
      if (c.length < need) {
        pending = Buffer.concat([pending, c]);
        return;
      }
      emit(Buffer.concat([pending, c.subarray(0, need)]));
      c = c.subarray(need);
      pending = new Uint8Array(0);
    }
    let o = 0;
    for (; o + row <= c.length; o += row) emit(c.subarray(o, o + row));
    if (o < c.length) pending = new Uint8Array(c.subarray(o));
  });
  if (!found) throw new NpzFormatError(`${file}: no data array (data.npy)`);
  const h = header as NpyHeader | null;
  if (!h) throw new NpzFormatError(`${file}: data.npy is cut short`);
  if (pending.length || k !== h.shape[0]) throw new NpzFormatError(`${file}: data.npy holds ${k} full rows, its header says ${h.shape[0]}`);
  return k;
}

/**
 * `map_clsloc.txt` (lines `<synset> <1-based index> <name>`) as a table from the files' 0-based
 * labels to the 0-based rank of each synset among the sorted synsets (TFDS `imagenet2012`'s labels).
 */
export function clslocToSortedSynsets(text: string): Int32Array {
  const rows = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => {
      const [synset, index] = l.split(/\s+/);
      return { synset, index: Number(index) };
    });
  if (rows.length !== 1000 || rows.some((r) => !/^n\d{8}$/.test(r.synset) || !(r.index >= 1 && r.index <= 1000))) {
    throw new NpzFormatError('map_clsloc.txt: expected 1000 lines "<synset nXXXXXXXX> <index 1..1000> <name>"');
  }
  const sorted = rows.map((r) => r.synset).sort();
  const table = new Int32Array(1000).fill(-1);
  for (const r of rows) table[r.index - 1] = sorted.indexOf(r.synset);
  if (new Set(table).size !== 1000 || table.includes(-1)) throw new NpzFormatError('map_clsloc.txt: the indices or synsets repeat');
  return table;
}

/** Options of {@link convertImagenetNpz}. */
export interface ConvertImagenetNpzOptions {
  /** Image size S (8, 16, 32 or 64); the files' rows must be 3·S·S bytes. */
  size: ImagenetSize;
  /** The training npz files (or zips of them), in order. */
  train: string[];
  /** The validation npz files (or zips of them): the `test` split. */
  val: string[];
  /** Where `imagenet2012_<S>/` is written (created if missing). */
  outDir: string;
  /** Examples of the training files held out as `inner_valid` (default 10 000). */
  innerValid?: number;
  /** Examples of the training files held out as `outer_valid` (default 10 000). */
  outerValid?: number;
  /** Examples per shard (default 10 000). */
  shardSize?: number;
  /** The text of `map_clsloc.txt`: map labels to the sorted-synset order (the reference's); see the module comment. */
  clsloc?: string;
  /** Called after each shard is written. */
  onShard?: (file: string, examples: number) => void;
}

/** What {@link convertImagenetNpz} wrote. */
export interface ConvertImagenetNpzResult {
  folder: string;
  counts: Record<SplitName, number>;
  files: string[];
}

/**
 * Extracts the `.npz` entries of a zip into `dir` in one pass over the archive (each entry written
 * as it inflates), returning their paths in archive order and the names of all entries.
 */
function extractNpzEntries(zipFile: string, dir: string): { npz: string[]; names: string[] } {
  const npz: string[] = [];
  const names: string[] = [];
  const open: number[] = [];
  let failure: Error | null = null;
  const fd = fs.openSync(zipFile, 'r');
  try {
    const unzip = new Unzip((f: UnzipFile) => {
      names.push(f.name);
      if (!f.name.endsWith('.npz')) {
        f.ondata = () => {};
        f.start();
        return;
      }
      const dest = path.join(dir, `${npz.length}_${path.basename(f.name)}`);
      npz.push(dest);
      const out = fs.openSync(dest, 'w');
      open.push(out);
      f.ondata = (err, data, final) => {
        if (err) failure ??= err;
        else {
          if (data.length) fs.writeSync(out, data);
          if (final) {
            fs.closeSync(out);
            open.splice(open.indexOf(out), 1);
          }
        }
      };
      f.start();
    });
    unzip.register(UnzipInflate);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      unzip.push(new Uint8Array(buf.subarray(0, n)), n === 0);
      if (failure) throw failure;
      if (n === 0) break;
    }
  } catch (e) {
    throw new NpzFormatError(`${zipFile}: not a readable zip archive: ${(e as Error).message}`);
  } finally {
    for (const o of open) fs.closeSync(o);
    fs.closeSync(fd);
  }
  return { npz, names };
}

/** `.npz` paths for the inputs: a `.zip` holding npz files (the download) is extracted into `tmp`; a `.zip` holding `data.npy` is an npz itself. */
function npzInputs(files: string[], tmp: () => string): string[] {
  return files.flatMap((f) => {
    if (!f.endsWith('.zip')) return [f];
    const { npz, names } = extractNpzEntries(f, tmp());
    if (npz.length) return npz;
    if (names.includes('data.npy')) return [f];
    throw new NpzFormatError(`${f}: neither .npz files nor data.npy inside`);
  });
}

/**
 * Converts image-net.org's downsampled ImageNet npz files into `<outDir>/imagenet2012_<S>/`
 * (see the module comment for the splits, labels and layout). Existing shards of the four splits
 * in that folder are replaced.
 */
export function convertImagenetNpz(opts: ConvertImagenetNpzOptions): ConvertImagenetNpzResult {
  const S = opts.size;
  if (![8, 16, 32, 64].includes(S)) throw new RangeError(`size must be 8, 16, 32 or 64, got ${S}`);
  const innerValid = opts.innerValid ?? 10000;
  const outerValid = opts.outerValid ?? 10000;
  const shardSize = opts.shardSize ?? 10000;
  if (!(shardSize >= 1)) throw new RangeError(`shardSize must be at least 1, got ${shardSize}`);
  const remap = opts.clsloc !== undefined ? clslocToSortedSynsets(opts.clsloc) : null;
  let tmpDir: string | null = null;
  const tmp = () => (tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-imagenet-npz-')));
  try {
    const train = npzInputs(opts.train, tmp);
    const val = npzInputs(opts.val, tmp);
    // pass 1: labels (and so the counts)
    const trainLabels = train.map(readNpzLabels);
    const valLabels = val.map(readNpzLabels);
    const nTrain = trainLabels.reduce((a, l) => a + l.length, 0);
    const nTest = valLabels.reduce((a, l) => a + l.length, 0);
    const trainCount = nTrain - innerValid - outerValid;
    if (trainCount < 1) throw new RangeError(`the training files hold ${nTrain} examples: too few to hold out ${innerValid} + ${outerValid}`);
    const counts: Record<SplitName, number> = { train: trainCount, inner_valid: innerValid, outer_valid: outerValid, test: nTest };

    const folder = path.join(opts.outDir, imagenetFolderName(S));
    fs.mkdirSync(folder, { recursive: true });
    for (const f of fs.readdirSync(folder)) if (/^(train|inner_valid|outer_valid|test)\.tfrecords/.test(f)) fs.unlinkSync(path.join(folder, f));
    const written: string[] = [];

    /** Writes one split's examples as they come, `shardSize` per shard. */
    const splitWriter = (split: SplitName) => {
      const shards = Math.max(1, Math.ceil(counts[split] / shardSize));
      let shard = 0;
      let records: Buffer[] = [];
      const flush = () => {
        const name = `${split}.tfrecords-${String(shard).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}`;
        const file = path.join(folder, name);
        fs.writeFileSync(file, zlib.gzipSync(encodeRecords(records)));
        written.push(file);
        opts.onShard?.(file, records.length);
        records = [];
        shard++;
      };
      return {
        add(image: Uint8Array, label: number) {
          const l = Buffer.alloc(4);
          l.writeInt32LE(label, 0);
          records.push(encodeExample({ image, label: l }));
          if (records.length === shardSize) flush();
        },
        end() {
          if (records.length || shard === 0) flush();
        },
      };
    };
    const label0 = (l: number, where: string) => {
      if (!(Number.isInteger(l) && l >= 1 && l <= 1000)) throw new NpzFormatError(`${where}: label ${l} is not in 1..1000`);
      return remap ? remap[l - 1] : l - 1;
    };

    // pass 2: images
    const w = { train: splitWriter('train'), inner_valid: splitWriter('inner_valid'), outer_valid: splitWriter('outer_valid'), test: splitWriter('test') };
    let g = 0;
    train.forEach((f, i) => {
      const n = streamNpzImages(f, S, (k, hwc) => {
        const split = g < trainCount ? 'train' : g < trainCount + innerValid ? 'inner_valid' : 'outer_valid';
        w[split].add(hwc, label0(trainLabels[i][k], `${f}: example ${k}`));
        g++;
      });
      if (n !== trainLabels[i].length) throw new NpzFormatError(`${f}: ${n} images but ${trainLabels[i].length} labels`);
    });
    val.forEach((f, i) => {
      const n = streamNpzImages(f, S, (k, hwc) => w.test.add(hwc, label0(valLabels[i][k], `${f}: example ${k}`)));
      if (n !== valLabels[i].length) throw new NpzFormatError(`${f}: ${n} images but ${valLabels[i].length} labels`);
    });
    for (const s of Object.values(w)) s.end();
    return { folder, counts, files: written };
  } finally {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
