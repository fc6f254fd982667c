/**
 * Language-model datasets (reference `tasks/datasets/language.py`): every example is one text
 * record (an lm1b sentence, a Wikipedia article, a fortune), tokenized, cropped or padded with 0
 * to `sequenceLength + 1` tokens (`_crop_or_pad`), and turned into `obs = t[:-1]`,
 * `target = t[1:]` (`create_lm_obs_target`); batches `{obs, target}` are `[B, L]` int32.
 *
 * Vocabularies:
 * - bytes (seqio `ByteVocabulary`, the ByT5 one): id = UTF-8 byte + 3 (0 pad, 1 EOS, 2 UNK;
 *   `encode_tf` adds no EOS), vocab_size 259.
 * - 32k (seqio `SentencePieceVocabulary` of `gs://t5-data/vocabs/cc_all.32000`, 100 extra ids):
 *   vocab_size 32100. The 32k datasets read the corpus tokenized ahead of training: one example
 *   per line, its ids separated by spaces (`train.ids`, `test.ids`), as `lopt tokenize <corpus>
 *   --model sentencepiece.model` writes them from the text files (sentencepiece.ts).
 *
 * Splits, as the reference (TFDS percent slices, boundaries `round(pct·n/100)`):
 * with a test file: train = `train[2%:]`, inner_valid = `train[0%:1%]`, outer_valid =
 * `train[1%:2%]`, test = the test file; without one: train = `train[3%:]`, the others
 * `train[0:1%]`, `[1%:2%]`, `[2%:3%]`.
 *
 * Corpora (looked for under `$LOPT_DATA_DIR` and `~/.cache/lopt`; only Tiny Shakespeare, about
 * 1 MB, is downloaded into the cache when missing; lm1b and wikipedia_en are prepared once with
 * `lopt data`, lm1b.ts and wikipedia.ts):
 * - `lm1b/train.txt`, `lm1b/test.txt`: one sentence per line (the lm1b datasets), in TFDS's stored
 *   order as `lopt data lm1b` writes them;
 * - `wikipedia_en/train.jsonl` (one JSON record per article, its newlines kept) or
 *   `wikipedia_en/train.txt` (one article per line): the wikipedia_en datasets, no test split;
 * - `tiny_shakespeare/input.txt`: paragraphs (blank-line separated speeches) are the examples;
 * - `fortunes` (lopt-ts's offline default): the English fortune cookies of the Debian package
 *   `fortunes` (BSD licence), `/usr/share/games/fortunes/*`, one record per `%`-separated fortune,
 *   put in a fixed shuffled order (`permutation(PRNGKey(0), n)`) before the percent slices, so
 *   that every split has every topic file.
 *
 * Order within a split: the reference streams with `shuffle(10·B)` from an unseeded TFDS order;
 * lopt-ts serves each epoch in a seeded permutation (key `foldIn(PRNGKey(seed), epoch)`, as the
 * image datasets), so runs are repeatable. Examples live on the host as byte ranges of one buffer
 * (a few bytes per example beyond the text), or, for a file over 1 GiB, of the file itself (read by
 * example when a batch is gathered), and only the batches become tensors.
 */
import * as buffer from 'buffer';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random, type PyTree } from '@lopt/core';
import { SPLITS, type Batch, type BatchStream, type Datasets, type SplitName } from '../base';
import { permutation } from './batch_streams';
import { cachedDatasets } from './cache';
import { downloadFiles } from './download';
import { DatasetNotFoundError } from './fashion_mnist';
import { SplitDatasets, type StreamState } from './splits';

// ---- vocabularies ----

/** Size of seqio's `ByteVocabulary`: 256 byte values plus 3 special ids (pad 0, EOS 1, UNK 2). */
export const BYTE_VOCAB_SIZE = 259;
/** Number of special ids before the byte ids in the byte vocabulary (byte b has id b + 3). */
export const BYTE_NUM_SPECIAL = 3;
/**
 * Size of the T5 `cc_all.32000` sentencepiece vocabulary with its 100 extra ids (the reference's `32k`
 * datasets).
 */
export const SENTENCEPIECE_32K_VOCAB_SIZE = 32100;
/**
 * A language dataset's vocabulary: `bytes` (seqio ByteVocabulary) or `32k` (sentencepiece, read
 * pre-tokenized).
 */
export type VocabName = 'bytes' | '32k';

/** seqio `ByteVocabulary.encode`: UTF-8 bytes + 3 (no EOS). */
export function encodeBytes(text: string | Uint8Array): Int32Array {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  const out = new Int32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] + BYTE_NUM_SPECIAL;
  return out;
}

/** seqio `ByteVocabulary.decode`: drops ids outside the 256 byte ids, invalid UTF-8 ignored. */
export function decodeBytes(ids: ArrayLike<number>): string {
  const bytes: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const b = ids[i] - BYTE_NUM_SPECIAL;
    if (b >= 0 && b < 256) bytes.push(b);
  }
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(Uint8Array.from(bytes)).replace(/\uFFFD/g, '');
}

/** `_crop_or_pad(value, size, pad_token)`: the first `size` ids, or the ids padded with `pad` to `size`. */
export function cropOrPad(ids: ArrayLike<number>, size: number, pad = 0): Int32Array {
  const out = new Int32Array(size).fill(pad);
  const n = Math.min(size, ids.length);
  for (let i = 0; i < n; i++) out[i] = ids[i];
  return out;
}

/** One example's `{obs, target}` for sequence length L: crop/pad to L+1, then shift by one. */
export function lmExample(ids: ArrayLike<number>, sequenceLength: number): { obs: Int32Array; target: Int32Array } {
  const t = cropOrPad(ids, sequenceLength + 1, 0);
  return { obs: t.slice(0, sequenceLength), target: t.slice(1) };
}

// ---- corpora: examples as byte ranges of one buffer, or of a file ----

/**
 * Bytes read by range from somewhere other than memory: a large corpus file (lm1b's 4.3 GB
 * `train.txt`, a Wikipedia export of many GB) is indexed once and its examples read when a batch
 * gathers them.
 */
export interface ByteSource {
  /** The bytes `[start, end)`. */
  read(start: number, end: number): Uint8Array;
}

/** A {@link ByteSource} over a file kept open for reading (positioned reads, no file pointer). */
export class FileByteSource implements ByteSource {
  private readonly fd: number;
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'r');
  }
  read(start: number, end: number): Uint8Array {
    const out = Buffer.allocUnsafe(end - start);
    for (let off = 0; off < out.length; ) {
      const n = fs.readSync(this.fd, out, off, out.length - off, start + off);
      if (n <= 0) throw new Error(`${this.file} is shorter than when it was indexed (changed while in use?)`);
      off += n;
    }
    return out;
  }
}

/**
 * The text of one JSON Lines record: the line is a JSON string, or an object whose `text` field
 * is one (the form `lopt data wikipedia_en` keeps, and TFDS's `{title, text}` exported as JSON).
 */
export function jsonRecordText(line: Uint8Array): string {
  const v: unknown = JSON.parse(new TextDecoder().decode(line));
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string') return (v as { text: string }).text;
  throw new Error(`a JSON Lines corpus record must be a string or an object with a string 'text'; got ${new TextDecoder().decode(line.subarray(0, 80))}`);
}

/**
 * Text examples as `[start, end)` byte ranges of `bytes` (in memory, or a {@link ByteSource}); with
 * `json`, each range is a JSON Lines record ({@link jsonRecordText}) and an example is its text's
 * UTF-8 bytes.
 */
export class TextExamples {
  constructor(
    readonly bytes: Uint8Array | ByteSource,
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    readonly json = false,
  ) {
    if (starts.length !== ends.length) throw new Error('TextExamples: starts and ends differ in length');
  }
  get length(): number {
    return this.starts.length;
  }
  example(i: number): Uint8Array {
    const raw = this.bytes instanceof Uint8Array ? this.bytes.subarray(this.starts[i], this.ends[i]) : this.bytes.read(this.starts[i], this.ends[i]);
    return this.json ? new TextEncoder().encode(jsonRecordText(raw)) : raw;
  }
  text(i: number): string {
    return new TextDecoder().decode(this.example(i));
  }
  /** The examples `lo..hi-1`. */
  slice(lo: number, hi: number): TextExamples {
    return new TextExamples(this.bytes, this.starts.slice(lo, hi), this.ends.slice(lo, hi), this.json);
  }
  /** The examples in the order `idx`. */
  reorder(idx: ArrayLike<number>): TextExamples {
    const s = new Float64Array(idx.length);
    const e = new Float64Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      s[i] = this.starts[idx[i]];
      e[i] = this.ends[idx[i]];
    }
    return new TextExamples(this.bytes, s, e, this.json);
  }
  static fromTexts(texts: string[]): TextExamples {
    return splitRecords(new TextEncoder().encode(texts.map((t) => t.replace(/\n/g, ' ')).join('\n')), 'lines');
  }
}

/**
 * How a corpus file splits into examples: one per line, per blank-line separated paragraph, or per
 * `%`-separated fortune (see {@link splitRecords}).
 */
export type RecordFormat = 'lines' | 'paragraphs' | 'fortunes';

/**
 * The records of a text buffer: `lines` (one per non-empty line), `paragraphs` (runs of non-empty
 * lines, separated by blank lines; inner newlines kept) or `fortunes` (`%` lines separate records;
 * the newline before a `%` belongs to no record). Empty records are dropped; `\r` before `\n` too.
 */
export function splitRecords(bytes: Uint8Array, format: RecordFormat): TextExamples {
  const starts: number[] = [];
  const ends: number[] = [];
  const NL = 10;
  const CR = 13;
  // line ranges first
  const lines: Array<[number, number]> = [];
  let s = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === NL) {
      let e = i;
      if (e > s && bytes[e - 1] === CR) e -= 1;
      if (i < bytes.length || e > s) lines.push([s, e]);
      s = i + 1;
    }
  }
  const isSep = (l: [number, number]) =>
    format === 'fortunes' ? l[1] - l[0] === 1 && bytes[l[0]] === 37 /* % */ : l[1] === l[0];
  if (format === 'lines') {
    for (const [a, b] of lines) {
      if (b > a) {
        starts.push(a);
        ends.push(b);
      }
    }
  } else {
    let start = -1;
    let end = -1;
    const flush = () => {
      if (start >= 0 && end > start) {
        starts.push(start);
        ends.push(end);
      }
      start = -1;
    };
    for (const l of lines) {
      if (isSep(l)) {
        flush();
        continue;
      }
      if (start < 0) start = l[0];
      end = l[1];
    }
    flush();
  }
  return new TextExamples(bytes, Float64Array.from(starts), Float64Array.from(ends));
}

/** A Float64Array that grows (doubling), for indexes of unknown length. */
class GrowableF64 {
  private a = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = v;
  }
  done(): Float64Array {
    return this.a.slice(0, this.length);
  }
}

/**
 * The `lines` records of a file ({@link splitRecords}'s rules: one per non-empty line, a `\r`
 * before the `\n` not part of it), found by reading the file in 16 MB pieces: the index of a
 * corpus too large to hold in memory.
 */
export function indexFileLines(file: string): { starts: Float64Array; ends: Float64Array } {
  const starts = new GrowableF64();
  const ends = new GrowableF64();
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(16 << 20);
  let pos = 0; // file offset of buf[0]
  let lineStart = 0;
  let prev = -1; // the byte before the current one
  const close = (nl: number) => {
    const end = prev === 13 && nl > lineStart ? nl - 1 : nl;
    if (end > lineStart) {
      starts.push(lineStart);
      ends.push(end);
    }
  };
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const c = buf[i];
        if (c === 10) {
          close(pos + i);
          lineStart = pos + i + 1;
        }
        prev = c;
      }
      pos += n;
    }
    close(pos);
  } finally {
    fs.closeSync(fd);
  }
  return { starts: starts.done(), ends: ends.done() };
}

/** Python's `round` (half to even), as TFDS uses for percent-slice boundaries. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** TFDS `split[lo%:hi%]` of n examples: `[round(lo·n/100), round(hi·n/100))`. */
export function percentSlice(n: number, lo: number, hi: number): [number, number] {
  return [roundHalfEven((lo * n) / 100), roundHalfEven((hi * n) / 100)];
}

/** The four splits of `language.py`'s `_make_datasets`. */
export function languageSplits(train: TextExamples, test: TextExamples | null): Record<SplitName, TextExamples> {
  const n = train.length;
  const cut = (lo: number, hi: number) => train.slice(...percentSlice(n, lo, hi));
  if (test) return { train: cut(2, 100), inner_valid: cut(0, 1), outer_valid: cut(1, 2), test };
  return { train: cut(3, 100), inner_valid: cut(0, 1), outer_valid: cut(1, 2), test: cut(2, 3) };
}

// ---- where the corpora are ----

/**
 * The text corpora lopt-ts reads: the reference's lm1b, wikipedia_en and tiny_shakespeare, and the offline
 * fortunes.
 */
export type CorpusName = 'lm1b' | 'wikipedia_en' | 'tiny_shakespeare' | 'fortunes';
/** Every {@link CorpusName}. */
export const CORPUS_NAMES: readonly CorpusName[] = ['lm1b', 'wikipedia_en', 'tiny_shakespeare', 'fortunes'];

/** Where the Debian package `fortunes` installs its fortune files. */
export const SYSTEM_FORTUNES_DIR = '/usr/share/games/fortunes';

interface CorpusSpec {
  folder: string;
  format: RecordFormat;
  /** Files per vocabulary: train, and test when the corpus has one. */
  files: Record<VocabName, { train: string; test?: string }>;
  /** Where the text files can be downloaded from (base URLs, tried in order), for a small corpus. */
  download?: readonly string[];
  /** Other file names tried, in order, after `files` (a JSON Lines form first: it keeps newlines). */
  altFiles?: Partial<Record<VocabName, Array<{ train: string; test?: string }>>>;
  /** How to make the files, for the not-found error. */
  prepare?: string;
}

/** The source TFDS `tiny_shakespeare` reads (Karpathy's char-rnn data, about 1 MB). */
export const TINY_SHAKESPEARE_URLS: readonly string[] = ['https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/'];

const CORPORA: Record<Exclude<CorpusName, 'fortunes'>, CorpusSpec> = {
  lm1b: {
    folder: 'lm1b',
    format: 'lines',
    files: { bytes: { train: 'train.txt', test: 'test.txt' }, '32k': { train: 'train.ids', test: 'test.ids' } },
    prepare: '`lopt data lm1b` downloads the One Billion Word tarball TFDS uses and writes them in TFDS order (add --model FILE for the 32k files)',
  },
  wikipedia_en: {
    folder: 'wikipedia_en',
    format: 'lines',
    files: { bytes: { train: 'train.jsonl' }, '32k': { train: 'train.ids' } },
    altFiles: { bytes: [{ train: 'train.txt' }] },
    prepare:
      '`lopt data wikipedia_en --from EXPORT` writes them from an export of TFDS wikipedia/20201201.en (JSON Lines, one {"text": ...} per article, or plain text, one article per line); docs/datasets.md shows the Python lines that export it',
  },
  tiny_shakespeare: { folder: 'tiny_shakespeare', format: 'paragraphs', files: { bytes: { train: 'input.txt' }, '32k': { train: 'input.ids' } }, download: TINY_SHAKESPEARE_URLS },
};

function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lopt');
}

/** Roots searched for `<folder>/<file>`: `$LOPT_DATA_DIR`, then `~/.cache/lopt`. */
export function languageSearchRoots(): string[] {
  const roots: string[] = [];
  if (process.env.LOPT_DATA_DIR) roots.push(process.env.LOPT_DATA_DIR);
  roots.push(cacheRoot());
  return roots;
}

/** The fortune files of a fortunes directory: every plain file but the `.dat` indexes and `.u8` links, by name. */
export function fortuneFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => !f.endsWith('.dat') && !f.endsWith('.u8') && !f.startsWith('.'))
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

/** Directories searched for the fortunes, in order. */
export function fortunesSearchDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.LOPT_DATA_DIR) dirs.push(path.join(process.env.LOPT_DATA_DIR, 'fortunes'));
  dirs.push(SYSTEM_FORTUNES_DIR, path.join(cacheRoot(), 'fortunes'));
  return dirs;
}

/**
 * The first of `dirs` holding fortune files; throws {@link DatasetNotFoundError} naming the directories and
 * the package to install when none does.
 */
export function findFortunesDir(dirs: string[] = fortunesSearchDirs()): string {
  for (const d of dirs) if (fortuneFiles(d).length > 0) return d;
  throw new DatasetNotFoundError(
    `fortunes corpus not found: looked for fortune files (records separated by '%' lines) in ${dirs.join(', ')}. ` +
      `Install the Debian package (sudo apt-get install fortunes), or put such files in $LOPT_DATA_DIR/fortunes.`,
  );
}

/** A corpus's folder, record format and file names per vocabulary (for writers of its files, such as `tokenizeCorpus`). */
export function corpusLayout(corpus: Exclude<CorpusName, 'fortunes'>): { folder: string; format: RecordFormat; files: Record<VocabName, { train: string; test?: string }> } {
  const spec = CORPORA[corpus];
  if (!spec) throw new Error(`unknown language corpus '${corpus}'; allowed: ${Object.keys(CORPORA).join(', ')}`);
  return spec;
}

/** `{train, test}` paths of a corpus for a vocabulary; a clear error naming folder and files when absent. */
export function findCorpusFiles(
  corpus: Exclude<CorpusName, 'fortunes'>,
  vocab: VocabName,
  roots: string[] = languageSearchRoots(),
  opts: { download?: boolean; baseUrls?: readonly string[] } = {},
): { train: string; test?: string } {
  const spec = CORPORA[corpus];
  const want = spec.files[vocab];
  const choices = [want, ...(spec.altFiles?.[vocab] ?? [])];
  const inRoot = (r: string) => {
    const dir = path.join(r, spec.folder);
    for (const c of choices) {
      const train = path.join(dir, c.train);
      const test = c.test ? path.join(dir, c.test) : undefined;
      if (fs.existsSync(train) && (!test || fs.existsSync(test))) return { train, test };
    }
    return null;
  };
  for (const r of roots) {
    const found = inRoot(r);
    if (found) return found;
  }
  // a small corpus's text is downloaded into the cache (unless download is false or LOPT_NO_DOWNLOAD=1)
  let why = '';
  const urls = opts.baseUrls ?? spec.download;
  if (vocab === 'bytes' && urls && (opts.download ?? process.env.LOPT_NO_DOWNLOAD !== '1')) {
    try {
      downloadFiles(path.join(cacheRoot(), spec.folder), [want.train, ...(want.test ? [want.test] : [])], urls);
      const found = inRoot(cacheRoot());
      if (found) return found;
      why = ' (download finished without the files)';
    } catch (e) {
      why = ` (${(e as Error).message})`;
    }
  }
  const names = choices.map((c) => `${spec.folder}/{${[c.train, c.test].filter(Boolean).join(', ')}}`).join(' or ');
  const how =
    vocab === 'bytes'
      ? spec.format === 'lines'
        ? spec.altFiles?.bytes
          ? '.jsonl: one JSON record per line, a string or an object with a string "text"; .txt: UTF-8 text, one example per line'
          : 'UTF-8 text, one example per line'
        : 'UTF-8 text, examples separated by blank lines'
      : `token ids of the T5 cc_all.32000 sentencepiece model (+100 extra ids), one example per line, ids separated by spaces; \`lopt tokenize ${corpus} --model sentencepiece.model\` writes them from the text files`;
  throw new DatasetNotFoundError(
    `${corpus} (${vocab}) not found: looked for ${names} (${how}) under ${roots.join(', ')}${why}. ` +
      (spec.prepare ? `${spec.prepare}. ` : '') +
      `Put the files in $LOPT_DATA_DIR/${spec.folder}/, or use the offline corpus 'fortunes' (Debian package fortunes).`,
  );
}

/**
 * A file's bytes in one buffer, also past the 2 GiB that `fs.readFileSync` refuses (lm1b's
 * `train.txt` is about 4.3 GB): read in 1 GiB pieces into a buffer of the file's size, up to Node's
 * largest buffer (4 GiB).
 */
export function readWholeFile(file: string): Buffer {
  const size = fs.statSync(file).size;
  if (size < 2 ** 31 - 1) return fs.readFileSync(file);
  if (size > buffer.constants.MAX_LENGTH) {
    throw new RangeError(`${file} has ${size} bytes, more than the ${buffer.constants.MAX_LENGTH} one buffer can hold in this Node; use a shorter corpus file`);
  }
  const out = Buffer.allocUnsafe(size);
  const fd = fs.openSync(file, 'r');
  try {
    for (let off = 0; off < size; ) {
      const n = fs.readSync(fd, out, off, Math.min(2 ** 30, size - off), off);
      if (n <= 0) throw new Error(`${file} ended at ${off} of ${size} bytes while being read`);
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** Files larger than this (bytes) are indexed and read by example, not held in memory (line formats only). */
export const IN_MEMORY_CORPUS_LIMIT = 1 << 30;

/**
 * The examples of one corpus file: `.jsonl` files are JSON Lines records (see {@link jsonRecordText});
 * a file in a line format larger than `inMemoryLimit` is indexed ({@link indexFileLines}) and
 * read by example through a {@link FileByteSource}, any other is read whole.
 */
export function readCorpusFile(file: string, format: RecordFormat, inMemoryLimit = IN_MEMORY_CORPUS_LIMIT): TextExamples {
  const json = file.endsWith('.jsonl');
  if (json && format !== 'lines') throw new Error(`${file}: a JSON Lines corpus has one record per line (format 'lines', not '${format}')`);
  if (format === 'lines' && fs.statSync(file).size > inMemoryLimit) {
    const { starts, ends } = indexFileLines(file);
    return new TextExamples(new FileByteSource(file), starts, ends, json);
  }
  const b = readWholeFile(file);
  const ex = splitRecords(new Uint8Array(b.buffer, b.byteOffset, b.length), format);
  return json ? new TextExamples(ex.bytes, ex.starts, ex.ends, true) : ex;
}

const RAW = new Map<string, { train: TextExamples; test: TextExamples | null }>();

/** A corpus's train (and test) examples, read once per process. */
export function loadCorpus(corpus: CorpusName, vocab: VocabName): { train: TextExamples; test: TextExamples | null } {
  const key = `${corpus}|${vocab}|${process.env.LOPT_DATA_DIR ?? ''}`;
  let raw = RAW.get(key);
  if (raw) return raw;
  if (corpus === 'fortunes') {
    if (vocab !== 'bytes') throw new Error(`the fortunes corpus is byte-level only; vocab '${vocab}' is not available for it (allowed: bytes)`);
    const dir = findFortunesDir();
    const bytes = Buffer.concat(fortuneFiles(dir).flatMap((f) => [fs.readFileSync(path.join(dir, f)), Buffer.from('\n%\n')]));
    const all = splitRecords(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), 'fortunes');
    raw = { train: all.reorder(permutation(random.PRNGKey(0), all.length)), test: null };
  } else {
    const files = findCorpusFiles(corpus, vocab);
    const read = (f: string) => readCorpusFile(f, vocab === '32k' ? 'lines' : CORPORA[corpus].format);
    raw = { train: read(files.train), test: files.test ? read(files.test) : null };
  }
  RAW.set(key, raw);
  return raw;
}

/** Parse one pre-tokenized example (`"12 7 391"`), checking every id is below the vocab size. */
export function parseIds(bytes: Uint8Array, vocabSize: number): Int32Array {
  const out: number[] = [];
  let cur = -1;
  for (let i = 0; i <= bytes.length; i++) {
    const c = i < bytes.length ? bytes[i] : 32;
    if (c >= 48 && c <= 57) cur = (cur < 0 ? 0 : cur * 10) + (c - 48);
    else if (c === 32 || c === 9 || c === 10 || c === 13) {
      if (cur >= 0) {
        if (cur >= vocabSize) throw new RangeError(`token id ${cur} is not below the vocab size ${vocabSize}`);
        out.push(cur);
      }
      cur = -1;
    } else throw new Error(`pre-tokenized example holds '${String.fromCharCode(c)}': expected ids separated by spaces`);
  }
  return Int32Array.from(out);
}

// ---- the batch stream ----

/**
 * Batches `{obs, target}` `[B, L]` int32 of one split, in a seeded permutation per epoch
 * (`floor(n / B)` batches; the remainder of an epoch is dropped, as `batch(drop_remainder=True)`).
 * Examples are tokenized when gathered; the split is loaded on first use.
 */
export class TextBatchStream implements BatchStream {
  private examples: TextExamples | null = null;
  private perm: Int32Array | null = null;
  private epoch = 0;
  private position = 0;

  constructor(
    private readonly load: () => TextExamples,
    readonly batchSize: number,
    readonly sequenceLength: number,
    private readonly tokenize: (bytes: Uint8Array) => Int32Array,
    private seed = 0,
  ) {}

  private ensure(): TextExamples {
    if (this.examples) return this.examples;
    const ex = this.load();
    if (Math.floor(ex.length / this.batchSize) < 1) {
      throw new Error(`batch size ${this.batchSize} is larger than the split (${ex.length} examples)`);
    }
    this.examples = ex;
    return ex;
  }

  get numExamples(): number {
    return this.ensure().length;
  }

  nextIndices(count: number): Int32Array {
    const n = this.ensure().length;
    const B = this.batchSize;
    const per = Math.floor(n / B);
    const idx = new Int32Array(count * B);
    for (let c = 0; c < count; c++) {
      if (this.position >= per) {
        this.epoch += 1;
        this.position = 0;
        this.perm = null;
      }
      this.perm ??= permutation(random.foldIn(random.PRNGKey(this.seed), this.epoch), n);
      idx.set(this.perm.subarray(this.position * B, (this.position + 1) * B), c * B);
      this.position += 1;
    }
    return idx;
  }

  next(shape: number[] = []): Batch {
    return this.gather(this.nextIndices(shape.reduce((a, b) => a * b, 1)), shape);
  }

  gather(idx: Int32Array, shape: number[] = []): Batch {
    const ex = this.ensure();
    const L = this.sequenceLength;
    if (idx.length !== shape.reduce((a, b) => a * b, 1) * this.batchSize) {
      throw new RangeError(`gather: ${idx.length} indices for shape [${shape}] of batches of ${this.batchSize}`);
    }
    const obs = new Int32Array(idx.length * L);
    const target = new Int32Array(idx.length * L);
    for (let i = 0; i < idx.length; i++) {
      const e = lmExample(this.tokenize(ex.example(idx[i])), L);
      obs.set(e.obs, i * L);
      target.set(e.target, i * L);
    }
    const outShape = [...shape, this.batchSize, L];
    return { obs: tf.tensor(obs, outShape, 'int32'), target: tf.tensor(target, outShape, 'int32') };
  }

  abstractBatch(): PyTree {
    const leaf = { shape: [this.batchSize, this.sequenceLength], dtype: 'int32' as tf.DataType };
    return { obs: leaf, target: { ...leaf } };
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

// ---- the datasets ----

/** Vocabulary size of a {@link VocabName}: 259 for bytes, 32100 for 32k. */
export function vocabSizeOf(vocab: VocabName): number {
  return vocab === 'bytes' ? BYTE_VOCAB_SIZE : SENTENCEPIECE_32K_VOCAB_SIZE;
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

/**
 * `_make_datasets(corpus, vocab, batch_size, sequence_length)`, cached per argument tuple (as
 * `@base.dataset_lru_cache`). `extra_info.vocab_size` is known without reading the corpus, so a
 * task can be built and initialised before (or without) its data; the first batch loads it.
 */
export function languageDatasets(corpus: CorpusName, vocab: VocabName, batchSize: number, sequenceLength: number): Datasets {
  if (!CORPUS_NAMES.includes(corpus)) throw new Error(`unknown language corpus '${corpus}'; allowed: ${CORPUS_NAMES.join(', ')}`);
  if (vocab !== 'bytes' && vocab !== '32k') throw new Error(`unknown vocab '${vocab}'; allowed: bytes, 32k`);
  checkPositiveInt('batchSize', batchSize);
  checkPositiveInt('sequenceLength', sequenceLength);
  return cachedDatasets(`language|${corpus}|${vocab}|${batchSize}|${sequenceLength}`, () => {
    const vocabSize = vocabSizeOf(vocab);
    const tokenize = vocab === 'bytes' ? (b: Uint8Array) => encodeBytes(b) : (b: Uint8Array) => parseIds(b, vocabSize);
    let splits: Record<SplitName, TextExamples> | null = null;
    const split = (s: SplitName) => () => {
      if (!splits) {
        const raw = loadCorpus(corpus, vocab);
        splits = languageSplits(raw.train, raw.test);
      }
      return splits[s];
    };
    const streams = Object.fromEntries(
      SPLITS.map((s, i) => [s, new TextBatchStream(split(s), batchSize, sequenceLength, tokenize, i)]),
    ) as Record<SplitName, TextBatchStream>;
    return new SplitDatasets(streams, { vocab_size: vocabSize, vocab, name: `${corpus}_${vocab}`, batch_size: batchSize, sequence_length: sequenceLength });
  });
}

/** The reference's dataset functions (and lopt-ts's offline one) by name. */
export const LANGUAGE_DATASET_FUNCTIONS = {
  lm1b_32k_datasets: ['lm1b', '32k'],
  lm1b_bytes_datasets: ['lm1b', 'bytes'],
  wikipedia_en_32k_datasets: ['wikipedia_en', '32k'],
  wikipedia_en_bytes_datasets: ['wikipedia_en', 'bytes'],
  tiny_shakespeare_bytes_datasets: ['tiny_shakespeare', 'bytes'],
  fortunes_bytes_datasets: ['fortunes', 'bytes'],
} as const satisfies Record<string, readonly [CorpusName, VocabName]>;
/** A key of {@link LANGUAGE_DATASET_FUNCTIONS}, e.g. `lm1b_bytes_datasets`. */
export type LanguageDatasetFunction = keyof typeof LANGUAGE_DATASET_FUNCTIONS;

/** Datasets by the reference's function name, e.g. `lm1b_bytes_datasets(128, 32)`. */
export function languageDatasetsByName(name: string, batchSize: number, sequenceLength: number): Datasets {
  const f = (LANGUAGE_DATASET_FUNCTIONS as Record<string, readonly [CorpusName, VocabName]>)[name];
  if (!f) throw new Error(`unknown language dataset '${name}'; allowed: ${Object.keys(LANGUAGE_DATASET_FUNCTIONS).join(', ')}`);
  return languageDatasets(f[0], f[1], batchSize, sequenceLength);
}
