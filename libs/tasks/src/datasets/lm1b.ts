/**
 * Preparing the lm1b corpus (`lopt data lm1b`) the way TFDS builds `lm1b` 1.1.0, which the
 * reference's `lm1b_bytes_datasets` / `lm1b_32k_datasets` load (reference
 * `tasks/datasets/language.py`; TFDS `datasets/lm1b/lm1b_dataset_builder.py`):
 *
 * - source: the One Billion Word benchmark tarball ({@link LM1B_URL}; 1,792,209,805 bytes, the
 *   sha256 in TFDS's `checksums.tsv`), downloaded with resume and checked;
 * - train = every `training-monolingual.tokenized.shuffled/news.en-*` shard, test = every
 *   `heldout-monolingual.tokenized.shuffled/news.en.heldout-*` shard; one example per line of a
 *   shard (Python text-mode lines: `\n`, `\r\n` or `\r` end a line), its text `line.strip()`;
 * - order: TFDS stores a split sorted by the md5 of `<split name><key>` (its `hashing.Hasher`, the
 *   split name as salt) with key `"<shard file name>_<line index>"`, and the reference's percent
 *   slices (`train[0%:1%]`, ...) are taken in that stored order. The files written here are in
 *   the same order, so each slice holds the same sentences as the reference's.
 *
 * The archive is read once as a stream (gunzip, then `tar-stream`'s extract: ustar, GNU and pax
 * names); each split's examples go
 * to 256 bucket files by the first byte of their hash (TFDS's own shuffler does the same with
 * 1000 buckets), and each bucket is then sorted in memory and appended to `train.txt` / `test.txt`
 * (one example per line, the layout `language.ts` reads), so memory stays at about one bucket
 * (~16 MB for lm1b's train split). Files are written whole (temp name, then rename).
 *
 * What differs from TFDS: an example whose text is empty after `strip()` is kept by TFDS (an empty
 * string) but cannot be a line of `train.txt` (empty lines are no examples); such examples are
 * dropped and counted in the report and in `lm1b/prepared.json`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { createHash } from 'crypto';
import { downloadResumable, sha256File } from './download';
import { corpusLayout, languageSearchRoots } from './language';
import { pipeline, type Readable } from 'stream';
import { extract as tarExtract } from 'tar-stream';

/**
 * Calls `onFile(name, content)` for every regular file of a tar stream, in archive order (tar-stream's
 * extract: ustar prefixes, GNU and pax long names; a corrupt or truncated archive rejects).
 */
export async function forEachTarFile(input: Readable, onFile: (name: string, content: Buffer) => void): Promise<void> {
  const ex = tarExtract();
  const piped = new Promise<void>((resolve, reject) => pipeline(input, ex, (e) => (e ? reject(e) : resolve())));
  piped.catch(() => undefined); // surfaces through the iteration below, or at the await at the end
  for await (const entry of ex) {
    if (entry.header.type !== 'file') {
      entry.resume();
      continue;
    }
    const parts: Buffer[] = [];
    for await (const chunk of entry) parts.push(chunk as Buffer);
    onFile(entry.header.name, Buffer.concat(parts));
  }
  await piped;
}

/** The tarball TFDS `lm1b` downloads (the One Billion Word benchmark, r13 output). */
export const LM1B_URL = 'http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz';
/** Size (bytes) and sha256 of {@link LM1B_URL}, as TFDS's `datasets/lm1b/checksums.tsv` records them. */
export const LM1B_ARCHIVE_CHECKSUM = { size: 1792209805, sha256: '01ba60381110baf7f189dfd2b8374de371e8c9a340835793f190bdae9e90a34e' } as const;
/** Examples per split of TFDS `lm1b` 1.1.0 (its catalog), for comparison with what was prepared. */
export const LM1B_TFDS_EXAMPLES = { train: 30301028, test: 306688 } as const;

const TOP = '1-billion-word-language-modeling-benchmark-r13output';
/** archive path → split, as TFDS's two globs (`news.en-*`, `news.en.heldout-*`) */
function lm1bSplitOf(name: string): 'train' | 'test' | null {
  const n = name.replace(/^\.\//, '');
  if (/^1-billion-word-language-modeling-benchmark-r13output\/training-monolingual\.tokenized\.shuffled\/news\.en-[^/]*$/.test(n)) return 'train';
  if (/^1-billion-word-language-modeling-benchmark-r13output\/heldout-monolingual\.tokenized\.shuffled\/news\.en\.heldout-[^/]*$/.test(n)) return 'test';
  return null;
}

// Python's str.isspace() characters, which str.strip() removes from both ends
const PY_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
  0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Python's `str.strip()` (no argument): Unicode whitespace off both ends. */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && PY_SPACE.has(s.charCodeAt(a))) a++;
  while (b > a && PY_SPACE.has(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

/**
 * The lines of a text as Python's text-mode file iteration gives them (universal newlines: `\n`,
 * `\r\n` and `\r` each end a line; a last line without an ending counts when not empty), without
 * their line endings.
 */
export function pyTextLines(text: string): string[] {
  const out: string[] = [];
  let s = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) {
      out.push(text.slice(s, i));
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      s = i + 1;
    }
  }
  if (s < text.length) out.push(text.slice(s));
  return out;
}

/** TFDS's stable order key of an example: md5(salt + key), salt the split name (`hashing.Hasher`). */
export function tfdsOrderHash(split: string, key: string): Buffer {
  return createHash('md5').update(split, 'utf8').update(key, 'utf8').digest();
}

/**
 * Examples written in TFDS's stored order ({@link tfdsOrderHash} ascending), through bucket files
 * on disk: `add` them in any order, then `finish` writes one example per line.
 */
export class HashOrderedWriter {
  private readonly fds: (number | null)[];
  private readonly bufs: Buffer[][];
  private readonly sizes: number[];
  /** Examples added, and of them those whose text is empty (not written). */
  readonly counts = { examples: 0, empty: 0 };

  constructor(
    private readonly dir: string,
    private readonly split: string,
    private readonly numBuckets = 256,
  ) {
    if (numBuckets < 1 || numBuckets > 256) throw new Error('HashOrderedWriter: 1 to 256 buckets');
    fs.mkdirSync(dir, { recursive: true });
    this.fds = new Array<number | null>(numBuckets).fill(null);
    this.bufs = Array.from({ length: numBuckets }, () => []);
    this.sizes = new Array<number>(numBuckets).fill(0);
  }

  /** Adds the example `text` with TFDS key `key`. */
  add(key: string, text: string): void {
    this.counts.examples += 1;
    if (text === '') {
      this.counts.empty += 1;
      return;
    }
    const h = tfdsOrderHash(this.split, key);
    const b = Math.floor((h[0] * this.numBuckets) / 256); // by the hash's top bits: buckets stay in order
    const body = Buffer.from(text, 'utf8');
    const head = Buffer.allocUnsafe(20);
    h.copy(head, 0);
    head.writeUInt32LE(body.length, 16);
    this.bufs[b].push(head, body);
    this.sizes[b] += 20 + body.length;
    if (this.sizes[b] >= 256 << 10) this.flush(b); // at most 64 MB waiting in memory over 256 buckets
  }

  private flush(b: number): void {
    if (this.sizes[b] === 0) return;
    this.fds[b] ??= fs.openSync(path.join(this.dir, `${this.split}-${String(b).padStart(3, '0')}.bucket`), 'w');
    fs.writeSync(this.fds[b]!, Buffer.concat(this.bufs[b]));
    this.bufs[b] = [];
    this.sizes[b] = 0;
  }

  /** Writes every example, sorted by hash, one per line into `file` (whole: temp name, then rename); removes the buckets. */
  finish(file: string, log?: (line: string) => void): { examples: number; empty: number; written: number } {
    const tmp = `${file}.tmp`;
    const out = fs.openSync(tmp, 'w');
    let written = 0;
    const pending: Buffer[] = [];
    let pendingSize = 0;
    const NL = Buffer.from('\n');
    for (let b = 0; b < this.numBuckets; b++) {
      this.flush(b);
      const fd = this.fds[b];
      if (fd === null) continue;
      fs.closeSync(fd);
      const bucketFile = path.join(this.dir, `${this.split}-${String(b).padStart(3, '0')}.bucket`);
      const data = fs.readFileSync(bucketFile);
      const recs: Array<[number, number]> = []; // [record offset, text length]
      for (let o = 0; o < data.length; ) {
        const len = data.readUInt32LE(o + 16);
        recs.push([o, len]);
        o += 20 + len;
      }
      recs.sort((x, y) => data.compare(data, y[0], y[0] + 16, x[0], x[0] + 16)); // x's hash against y's
      for (let i = 0; i < recs.length; i++) {
        if (i > 0 && data.compare(data, recs[i - 1][0], recs[i - 1][0] + 16, recs[i][0], recs[i][0] + 16) === 0) {
          throw new Error(`two ${this.split} examples share one hash (TFDS refuses such a split too)`);
        }
        const [o, len] = recs[i];
        pending.push(data.subarray(o + 20, o + 20 + len), NL);
        pendingSize += len + 1;
        written += 1;
        if (pendingSize >= 4 << 20) {
          fs.writeSync(out, Buffer.concat(pending));
          pending.length = 0;
          pendingSize = 0;
        }
      }
      if (pendingSize > 0) fs.writeSync(out, Buffer.concat(pending));
      pending.length = 0;
      pendingSize = 0;
      fs.rmSync(bucketFile);
      if (log && (b + 1) % 64 === 0) log(`  ${this.split}: ${b + 1} of ${this.numBuckets} buckets sorted, ${written} examples written`);
    }
    fs.closeSync(out);
    fs.renameSync(tmp, file);
    return { ...this.counts, written };
  }

  /** Closes and deletes the bucket files (after a failure). */
  discard(): void {
    for (let b = 0; b < this.numBuckets; b++) {
      const fd = this.fds[b];
      if (fd !== null) fs.closeSync(fd);
      this.fds[b] = null;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Options of {@link prepareLm1b}. */
export interface PrepareLm1bOptions {
  /** Where `lm1b/` is written (default: the first language search root: `$LOPT_DATA_DIR`, else `~/.cache/lopt`). */
  root?: string;
  /** A tarball already on disk: used as is (checked against `size`/`sha256` unless those are null); nothing is downloaded. */
  archive?: string;
  /** Where to download the tarball from (default {@link LM1B_URL}). */
  url?: string;
  /** Expected archive size and sha256 (default {@link LM1B_ARCHIVE_CHECKSUM}); null: do not check. */
  size?: number | null;
  sha256?: string | null;
  /** Delete the downloaded tarball once the corpus is written (default: keep it, in `lm1b/`). */
  deleteArchive?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link prepareLm1b} wrote. */
export interface PreparedCorpus {
  /** The corpus folder (`<root>/lm1b`). */
  dir: string;
  /** Per split: the file, examples read (TFDS's count), examples written, empty ones dropped. */
  splits: Record<'train' | 'test', { file: string; examples: number; written: number; empty: number }>;
  /** The tarball read (absent when it was deleted). */
  archive?: string;
}

/**
 * `lopt data lm1b`: downloads (resuming) and checks the lm1b tarball, and writes
 * `<root>/lm1b/train.txt` and `test.txt` in TFDS's stored order (see the file comment), plus
 * `prepared.json` describing them. `lm1b_bytes_datasets` then finds them; `lopt tokenize lm1b`
 * (or {@link prepareLm1b}'s caller with a sentencepiece model) writes the 32k files from them.
 */
export async function prepareLm1b(opts: PrepareLm1bOptions = {}): Promise<PreparedCorpus> {
  const log = opts.log ?? (() => {});
  const root = opts.root ?? languageSearchRoots()[0];
  const layout = corpusLayout('lm1b');
  const dir = path.join(root, layout.folder);
  fs.mkdirSync(dir, { recursive: true });
  const size = opts.size === undefined ? LM1B_ARCHIVE_CHECKSUM.size : (opts.size ?? undefined);
  const sha256 = opts.sha256 === undefined ? LM1B_ARCHIVE_CHECKSUM.sha256 : (opts.sha256 ?? undefined);
  const url = opts.url ?? LM1B_URL;
  let archive = opts.archive;
  if (archive) {
    if (!fs.existsSync(archive)) throw new Error(`lm1b archive not found: ${archive}`);
    if (size !== undefined && fs.statSync(archive).size !== size) throw new Error(`${archive} has ${fs.statSync(archive).size} bytes, not the ${size} of the lm1b tarball`);
    if (sha256) {
      log(`checking the sha256 of ${archive}`);
      const got = await sha256File(archive);
      if (got !== sha256) throw new Error(`${archive}: sha256 ${got}, not the lm1b tarball's ${sha256}`);
    }
  } else {
    archive = path.join(dir, path.basename(new URL(url).pathname) || 'lm1b.tar.gz');
    log(`downloading ${url} to ${archive} (resumes a .part left by an earlier try)`);
    await downloadResumable(url, archive, {
      size,
      sha256,
      onProgress: (b, total) => log(`  ${(b / 2 ** 20).toFixed(0)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(0)} MiB` : ''}`),
    });
  }

  // bucket folders an interrupted run left (one preparation of a folder at a time)
  for (const f of fs.readdirSync(dir)) if (f.startsWith('.staging-')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  const staging = path.join(dir, `.staging-${process.pid}`);
  const writers = { train: new HashOrderedWriter(path.join(staging, 'train'), 'train'), test: new HashOrderedWriter(path.join(staging, 'test'), 'test') };
  const shards = { train: 0, test: 0 };
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    log(`reading ${archive}`);
    const onFile = (name: string, content: Buffer) => {
      const split = lm1bSplitOf(name);
      if (!split) return;
      const lines = pyTextLines(decoder.decode(content));
      const base = path.posix.basename(name);
      for (let i = 0; i < lines.length; i++) writers[split].add(`${base}_${i}`, pyStrip(lines[i]));
      shards[split] += 1;
      if ((shards.train + shards.test) % 10 === 0) log(`  ${shards.train} train and ${shards.test} test shards read`);
    };
    await forEachTarFile(fs.createReadStream(archive, { highWaterMark: 1 << 20 }).pipe(zlib.createGunzip()), onFile);
    if (shards.train === 0 || shards.test === 0) {
      throw new Error(`${archive} holds ${shards.train} train and ${shards.test} test shards: not the lm1b tarball (expected ${TOP}/training-monolingual.tokenized.shuffled/news.en-* and heldout-monolingual.tokenized.shuffled/news.en.heldout-*)`);
    }
    log(`${shards.train} train and ${shards.test} test shards read; writing the splits in TFDS order`);
    const files = layout.files.bytes;
    const train = writers.train.finish(path.join(dir, files.train), log);
    const test = writers.test.finish(path.join(dir, files.test!), log);
    fs.rmSync(staging, { recursive: true, force: true });
    const splits = { train: { file: path.join(dir, files.train), ...train }, test: { file: path.join(dir, files.test!), ...test } };
    const manifest = {
      corpus: 'lm1b',
      source: opts.archive ? path.resolve(opts.archive) : url,
      archiveSha256: sha256 ?? null,
      order: 'TFDS lm1b 1.1.0 stored order: md5(split + "<shard>_<line>") ascending',
      splits: Object.fromEntries(Object.entries(splits).map(([k, v]) => [k, { file: path.basename(v.file), examples: v.examples, written: v.written, emptyDropped: v.empty }])),
      tfdsExamples: LM1B_TFDS_EXAMPLES,
      written: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(dir, 'prepared.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (opts.deleteArchive && !opts.archive) {
      fs.rmSync(archive, { force: true });
      archive = undefined;
    }
    return { dir, splits, archive };
  } catch (e) {
    writers.train.discard();
    writers.test.discard();
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}
