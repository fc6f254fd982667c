/**
 * `lopt data wikipedia_en --from EXPORT`: an export of TFDS wikipedia/20201201.en as JSON Lines
 * keeps each article's text byte for byte (newlines between sections included), in the export's
 * order; a plain-text export (one article per line) is the fallback form; bad records are named by
 * line; the wikipedia_en datasets find what was written and serve the same bytes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { clearDatasetCache, encodeBytes, findCorpusFiles, languageDatasets, loadCorpus, loadSentencePiece, prepareWikipedia, tokenizeCorpus } from '../index';
import { useTestBackend } from './helpers';

const ARTICLES = [
  { title: 'Anarchism', text: 'Anarchism is a political philosophy.\n\nHistory\n\nThe earliest ... \u00e9\u{1F600}' },
  { title: 'Autism', text: 'Autism is a developmental disorder.' },
  { title: 'Empty', text: '' },
  { title: 'A', text: 'A, or a, is the first letter.\nIt is a vowel.' },
];
let tmp: string;
const saved = process.env.LOPT_DATA_DIR;

beforeAll(async () => {
  await useTestBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-wiki-'));
});
afterAll(() => {
  if (saved === undefined) delete process.env.LOPT_DATA_DIR;
  else process.env.LOPT_DATA_DIR = saved;
  clearDatasetCache();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a JSON Lines export becomes train.jsonl; the datasets serve each article with its newlines; the 32k ids are of the same text', async () => {
  const from = path.join(tmp, 'export.jsonl');
  // Python's json.dumps escapes non-ASCII (ensure_ascii); CRLF line ends and a string record are accepted too
  const lines = ARTICLES.map((a) => JSON.stringify(a).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  fs.writeFileSync(from, lines.join('\r\n') + '\n' + JSON.stringify('just a string article') + '\n\n');
  const root = path.join(tmp, 'json');
  const r = prepareWikipedia({ from, root });
  expect(r).toEqual({ file: path.join(root, 'wikipedia_en', 'train.jsonl'), articles: 4, emptyDropped: 2 });
  process.env.LOPT_DATA_DIR = root;
  clearDatasetCache();
  expect(findCorpusFiles('wikipedia_en', 'bytes')).toEqual({ train: r.file, test: undefined });
  const raw = loadCorpus('wikipedia_en', 'bytes');
  const want = [...ARTICLES.filter((a) => a.text).map((a) => a.text), 'just a string article'];
  expect(Array.from({ length: raw.train.length }, (_, i) => raw.train.text(i))).toEqual(want);
  expect(raw.test).toBeNull();
  // the byte ids a batch holds are the article's UTF-8 bytes + 3, newline (10 → 13) included
  expect(Array.from(encodeBytes(raw.train.example(0))).slice(36, 38)).toEqual([13, 13]);
  // 4 articles, no test file: train = train[3%:] (the reference's has_test=False splits)
  const ds = languageDatasets('wikipedia_en', 'bytes', 1, 16);
  expect((ds.split('train') as unknown as { numExamples: number }).numExamples).toBe(4);
  // the 32k ids are written from the articles' text (a 300-piece test model)
  const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../../test/golden/sentencepiece.json'), 'utf8')) as { model: string };
  const model = path.join(__dirname, '../../../..', golden.model);
  const t = await tokenizeCorpus('wikipedia_en', { model, root });
  expect(t).toEqual({ files: [path.join(root, 'wikipedia_en', 'train.ids')], examples: 4 });
  const sp = await loadSentencePiece(model);
  expect(fs.readFileSync(t.files[0], 'utf8')).toBe(want.map((w) => sp.encodeIds(w).join(' ') + '\n').join(''));
  // (the T5 normalisation, nmt_nfkc, makes a newline a space: only the byte-level ids see newlines)
  expect(sp.encodeIds(want[0])).toEqual(sp.encodeIds(want[0].replace(/\n/g, ' ')));

  // a second form beside the first is refused (the loaders would read only one)
  fs.writeFileSync(path.join(tmp, 'plain.txt'), 'x\n');
  expect(() => prepareWikipedia({ from: path.join(tmp, 'plain.txt'), root })).toThrow(/train\.jsonl is there already/);
});

test('a plain-text export (one article per line) becomes train.txt', () => {
  const from = path.join(tmp, 'export.txt');
  fs.writeFileSync(from, 'First article.\n\nSecond article, its sections joined by spaces.\r\n');
  const root = path.join(tmp, 'plain');
  expect(prepareWikipedia({ from, root })).toEqual({ file: path.join(root, 'wikipedia_en', 'train.txt'), articles: 2, emptyDropped: 1 });
  expect(fs.readFileSync(path.join(root, 'wikipedia_en', 'train.txt'), 'utf8')).toBe('First article.\nSecond article, its sections joined by spaces.\n');
  expect(JSON.parse(fs.readFileSync(path.join(root, 'wikipedia_en', 'prepared.json'), 'utf8'))).toMatchObject({ format: 'lines', articles: 2, tfds: 'wikipedia/20201201.en' });
});

test('a bad export is named by line, and nothing is written', () => {
  const from = path.join(tmp, 'bad.jsonl');
  fs.writeFileSync(from, '{"text": "ok"}\n{"title": "no text"}\n');
  const root = path.join(tmp, 'bad');
  expect(() => prepareWikipedia({ from, root })).toThrow(/bad\.jsonl, line 2: .*string 'text'/);
  expect(fs.readdirSync(path.join(root, 'wikipedia_en'))).toEqual([]);
  expect(() => prepareWikipedia({ from: path.join(tmp, 'nope.jsonl'), root })).toThrow(/export not found/);
});
