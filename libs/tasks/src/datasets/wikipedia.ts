/**
 * Preparing the wikipedia_en corpus (`lopt data wikipedia_en --from EXPORT`). The reference's
 * `wikipedia_en_*_datasets` load TFDS `wikipedia/20201201.en` (reference
 * `tasks/datasets/language.py`), which TFDS builds from the Wikimedia XML dump of 2020-12-01: pages
 * of namespace 0 that are not redirects, their wikitext parsed by mwparserfromhell, `<ref>` and
 * table tags, File/Image/Media links and the reflist/notelist templates removed, each section's
 * `strip_code()` joined by blank lines (TFDS `text/wikipedia.py`, `_parse_and_clean_wikicode`).
 *
 * lopt-ts does not re-implement that pipeline (a 20 GB bz2 dump and mwparserfromhell's parser):
 * the corpus is read from an export of the TFDS dataset itself, which gives TFDS's text byte for
 * byte and, exported in TFDS's stored order, the same percent slices as the reference
 * (docs/datasets.md shows the few Python lines that write it). Accepted exports:
 * - JSON Lines (`.jsonl`, or `format: 'jsonl'`): one record per line, a JSON string or an object
 *   with a string `text` (other fields, such as `title`, are kept and ignored); written as
 *   `wikipedia_en/train.jsonl`, newlines inside articles kept;
 * - plain text (`format: 'lines'`): one article per line; written as `wikipedia_en/train.txt`
 *   (an article's own line breaks cannot be told from article ends there, so such an export has
 *   lost them: they must have been replaced, e.g. by spaces, which changes the bytes the models
 *   see against TFDS's text).
 * Records are checked (every JSON line parses and has text) and empty lines dropped; the file is
 * written whole (temp name, then rename), with `prepared.json` beside it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { corpusLayout, jsonRecordText, languageSearchRoots } from './language';

/** The TFDS dataset the reference's wikipedia_en datasets load. */
export const WIKIPEDIA_TFDS_NAME = 'wikipedia/20201201.en';

/** Options of {@link prepareWikipedia}. */
export interface PrepareWikipediaOptions {
  /** The export to read. */
  from: string;
  /** `jsonl` or `lines` (default: `jsonl` for a `.jsonl`/`.json` file name, else `lines`). */
  format?: 'jsonl' | 'lines';
  /** Where `wikipedia_en/` is written (default: the first language search root). */
  root?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Streams the lines (without `\n` and a `\r` before it) of a file, calling `each` with their bytes. */
function forEachLine(file: string, each: (line: Buffer) => void): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(16 << 20);
  let carry: Buffer = Buffer.alloc(0);
  try {
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let s = 0;
      for (let i = chunk.indexOf(10, s); i >= 0; i = chunk.indexOf(10, s)) {
        const e = i > s && chunk[i - 1] === 13 ? i - 1 : i;
        each(chunk.subarray(s, e));
        s = i + 1;
      }
      carry = Buffer.from(chunk.subarray(s));
    }
    if (carry.length) each(carry[carry.length - 1] === 13 ? carry.subarray(0, carry.length - 1) : carry);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `lopt data wikipedia_en --from EXPORT`: checks an export of TFDS `wikipedia/20201201.en` and
 * writes it where the wikipedia_en datasets read it (see the file comment).
 */
export function prepareWikipedia(opts: PrepareWikipediaOptions): { file: string; articles: number; emptyDropped: number } {
  if (!fs.existsSync(opts.from)) throw new Error(`wikipedia export not found: ${opts.from}`);
  const format = opts.format ?? (/\.jsonl?$/i.test(opts.from) ? 'jsonl' : 'lines');
  if (format !== 'jsonl' && format !== 'lines') throw new Error(`unknown export format '${String(format)}' (allowed: jsonl, lines)`);
  const layout = corpusLayout('wikipedia_en');
  const dir = path.join(opts.root ?? languageSearchRoots()[0], layout.folder);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, format === 'jsonl' ? 'train.jsonl' : 'train.txt');
  // one form at a time: the loaders take train.jsonl before train.txt
  const other = path.join(dir, format === 'jsonl' ? 'train.txt' : 'train.jsonl');
  if (fs.existsSync(other)) throw new Error(`${other} is there already (the wikipedia_en datasets read one of train.jsonl, train.txt); remove it first`);
  const tmp = `${file}.tmp`;
  const out = fs.openSync(tmp, 'w');
  let articles = 0;
  let emptyDropped = 0;
  let lineNo = 0;
  const pending: Buffer[] = [];
  let pendingSize = 0;
  const NL = Buffer.from('\n');
  try {
    forEachLine(opts.from, (line) => {
      lineNo += 1;
      let empty = line.length === 0;
      if (!empty && format === 'jsonl') {
        try {
          empty = jsonRecordText(line) === '';
        } catch (e) {
          throw new Error(`${opts.from}, line ${lineNo}: ${(e as Error).message}`);
        }
      }
      if (empty) {
        emptyDropped += 1;
        return;
      }
      articles += 1;
      pending.push(Buffer.from(line), NL);
      pendingSize += line.length + 1;
      if (pendingSize >= 4 << 20) {
        fs.writeSync(out, Buffer.concat(pending));
        pending.length = 0;
        pendingSize = 0;
      }
      if (opts.log && articles % 1000000 === 0) opts.log(`  ${articles} articles`);
    });
    if (pendingSize) fs.writeSync(out, Buffer.concat(pending));
  } catch (e) {
    fs.closeSync(out);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(out);
  if (articles === 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`${opts.from} holds no articles`);
  }
  fs.renameSync(tmp, file);
  fs.writeFileSync(
    path.join(dir, 'prepared.json'),
    JSON.stringify({ corpus: 'wikipedia_en', source: path.resolve(opts.from), format, tfds: WIKIPEDIA_TFDS_NAME, file: path.basename(file), articles, emptyDropped, written: new Date().toISOString() }, null, 2) + '\n',
  );
  return { file, articles, emptyDropped };
}
