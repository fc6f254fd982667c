/**
 * The language datasets: byte-level token ids equal to seqio's ByteVocabulary and the reference's
 * `_crop_or_pad` / `_load` pipeline (test/golden/language_data.json, made by
 * tools/reference/golden_language_data.py), record splitting, TFDS percent splits, batch streams
 * from a LOPT_DATA_DIR folder, the errors for missing corpora, and the offline fortunes corpus.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  BYTE_VOCAB_SIZE,
  clearDatasetCache,
  cropOrPad,
  decodeBytes,
  encodeBytes,
  findCorpusFiles,
  findFortunesDir,
  languageDatasets,
  languageDatasetsByName,
  languageSplits,
  lmExample,
  parseIds,
  percentSlice,
  splitRecords,
  TextExamples,
} from '../index';
import { useTestBackend } from './helpers';

const GOLDEN = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../../test/golden/language_data.json'), 'utf8'));

beforeAll(async () => {
  await useTestBackend();
});

describe('byte vocabulary = seqio ByteVocabulary and language.py (golden)', () => {
  test('vocab size and encode', () => {
    expect(BYTE_VOCAB_SIZE).toBe(GOLDEN.vocab_size);
    GOLDEN.texts.forEach((t: string, i: number) => {
      expect(Array.from(encodeBytes(t))).toEqual(GOLDEN.encode[i]);
      expect(decodeBytes(encodeBytes(t))).toBe(t);
    });
  });
  test('_crop_or_pad to L + 1', () => {
    for (const [L, rows] of Object.entries(GOLDEN.crop as Record<string, number[][]>)) {
      rows.forEach((want, i) => expect(Array.from(cropOrPad(GOLDEN.encode[i], Number(L) + 1))).toEqual(want));
    }
  });
  test('the set of {obs, target} rows the reference pipeline yields', () => {
    for (const [L, rows] of Object.entries(GOLDEN.pipeline as Record<string, Array<{ obs: number[]; target: number[] }>>)) {
      const ours = new Set(
        GOLDEN.texts.map((t: string) => {
          const e = lmExample(encodeBytes(t), Number(L));
          return JSON.stringify([Array.from(e.obs), Array.from(e.target)]);
        }),
      );
      expect(ours).toEqual(new Set(rows.map((r) => JSON.stringify([r.obs, r.target]))));
    }
  });
});

describe('records and splits', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  test('lines, paragraphs and fortunes', () => {
    const lines = splitRecords(enc('one\r\ntwo\n\nthree'), 'lines');
    expect([0, 1, 2].map((i) => lines.text(i))).toEqual(['one', 'two', 'three']);
    expect(lines.length).toBe(3);
    const paras = splitRecords(enc('A:\nhi\n\n\nB:\nho\n'), 'paragraphs');
    expect([paras.text(0), paras.text(1)]).toEqual(['A:\nhi', 'B:\nho']);
    const f = splitRecords(enc('first\nline\n%\nsecond 100%\n%\n%\nthird\n'), 'fortunes');
    expect([0, 1, 2].map((i) => f.text(i))).toEqual(['first\nline', 'second 100%', 'third']);
    expect(f.length).toBe(3);
  });
  test('TFDS percent slices and the four splits, with and without a test file', () => {
    expect(percentSlice(1000, 2, 100)).toEqual([20, 1000]);
    expect(percentSlice(150, 1, 2)).toEqual([2, 3]); // 1.5 -> 2, 3.0 -> 3 (half to even)
    expect(percentSlice(250, 0, 1)).toEqual([0, 2]); // 2.5 -> 2
    const train = TextExamples.fromTexts(Array.from({ length: 300 }, (_, i) => `s${i}`));
    const test = TextExamples.fromTexts(['t0', 't1']);
    const a = languageSplits(train, test);
    expect([a.train.length, a.inner_valid.length, a.outer_valid.length, a.test.length]).toEqual([294, 3, 3, 2]);
    expect([a.inner_valid.text(0), a.outer_valid.text(0), a.train.text(0), a.test.text(1)]).toEqual(['s0', 's3', 's6', 't1']);
    const b = languageSplits(train, null);
    expect([b.train.length, b.inner_valid.length, b.outer_valid.length, b.test.length]).toEqual([291, 3, 3, 3]);
    expect([b.test.text(0), b.train.text(0)]).toEqual(['s6', 's9']);
  });
  test('pre-tokenized ids', () => {
    expect(Array.from(parseIds(enc(' 12 7\t391 '), 32100))).toEqual([12, 7, 391]);
    expect(() => parseIds(enc('12 40000'), 32100)).toThrow(/40000 is not below the vocab size 32100/);
    expect(() => parseIds(enc('12 x'), 32100)).toThrow(/expected ids separated by spaces/);
  });
});

describe('datasets from a LOPT_DATA_DIR folder', () => {
  let root: string;
  const old = process.env.LOPT_DATA_DIR;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-lm-'));
    fs.mkdirSync(path.join(root, 'lm1b'));
    // 800 train sentences s000 .. s799 of different lengths, 10 test sentences
    const train = Array.from({ length: 800 }, (_, i) => `s${String(i).padStart(3, '0')} ${'x'.repeat(i % 9)}`);
    fs.writeFileSync(path.join(root, 'lm1b', 'train.txt'), train.join('\n') + '\n');
    fs.writeFileSync(path.join(root, 'lm1b', 'test.txt'), Array.from({ length: 10 }, (_, i) => `test ${i}`).join('\n'));
    process.env.LOPT_DATA_DIR = root;
    clearDatasetCache();
  });
  afterAll(() => {
    if (old === undefined) delete process.env.LOPT_DATA_DIR;
    else process.env.LOPT_DATA_DIR = old;
    clearDatasetCache();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('lm1b_bytes: [B, L] int32 obs/target shifted by one, every train example once per epoch, resumable', () => {
    const ds = languageDatasetsByName('lm1b_bytes_datasets', 8, 6);
    expect(ds.extraInfo!.vocab_size).toBe(259);
    const s = ds.split('train');
    expect(s.abstractBatch()).toEqual({ obs: { shape: [8, 6], dtype: 'int32' }, target: { shape: [8, 6], dtype: 'int32' } });
    const seen = new Set<string>();
    for (let k = 0; k < 98; k++) {
      // 784 train examples / 8 = 98 batches per epoch
      const b = s.next() as { obs: tf.Tensor; target: tf.Tensor };
      expect(b.obs.shape).toEqual([8, 6]);
      expect(b.obs.dtype).toBe('int32');
      const o = b.obs.arraySync() as number[][];
      const t = b.target.arraySync() as number[][];
      for (let r = 0; r < 8; r++) {
        expect(t[r].slice(0, 5)).toEqual(o[r].slice(1));
        seen.add(decodeBytes(o[r]).slice(0, 4));
      }
      tf.dispose([b.obs, b.target]);
    }
    expect(seen.size).toBe(784);
    expect(seen.has('s015')).toBe(false); // inner_valid train[0%:1%], outer_valid train[1%:2%]
    expect(seen.has('s016')).toBe(true);
    const state = s.getState();
    const b1 = s.next([2]) as { obs: tf.Tensor };
    expect(b1.obs.shape).toEqual([2, 8, 6]);
    s.setState(state);
    const b2 = s.next([2]) as { obs: tf.Tensor };
    expect(b2.obs.arraySync()).toEqual(b1.obs.arraySync());
    const iv = ds.split('inner_valid').next() as { obs: tf.Tensor };
    expect(decodeBytes((iv.obs.arraySync() as number[][])[0]).slice(0, 1)).toBe('s');
    const te = ds.split('test').next() as { obs: tf.Tensor };
    expect(decodeBytes((te.obs.arraySync() as number[][])[0]).slice(0, 5)).toBe('test ');
    tf.dispose([b1, b2, iv, te] as any);
    expect(() => ds.split('valid')).toThrow(/allowed: train, inner_valid, outer_valid, test/);
  });

  test('missing corpora name the folder and the files expected', () => {
    expect(() => findCorpusFiles('wikipedia_en', 'bytes')).toThrow(/wikipedia_en\/\{train\.txt\}.*LOPT_DATA_DIR\/wikipedia_en/);
    expect(() => findCorpusFiles('lm1b', '32k')).toThrow(/lm1b\/\{train\.ids, test\.ids\}.*sentencepiece/);
    // and say how to make them
    const none = [path.join(os.tmpdir(), 'lopt-no-such-folder')];
    expect(() => findCorpusFiles('lm1b', 'bytes', none)).toThrow(/lm1b\/\{train\.txt, test\.txt\}.*`lopt data lm1b` downloads/);
    expect(() => findCorpusFiles('wikipedia_en', 'bytes', none)).toThrow(/wikipedia_en\/\{train\.jsonl\} or wikipedia_en\/\{train\.txt\}.*`lopt data wikipedia_en --from EXPORT`.*docs\/datasets\.md/);
    // extra_info needs no data; the first batch does (no download here, and an empty cache)
    const env = { noDownload: process.env.LOPT_NO_DOWNLOAD, cache: process.env.XDG_CACHE_HOME };
    process.env.LOPT_NO_DOWNLOAD = '1';
    process.env.XDG_CACHE_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-empty-cache-'));
    try {
      const ds = languageDatasets('tiny_shakespeare', 'bytes', 4, 8);
      expect(ds.extraInfo!.vocab_size).toBe(259);
      expect(() => ds.split('train').next()).toThrow(/tiny_shakespeare\/\{input\.txt\}/);
    } finally {
      for (const [k, v] of [['LOPT_NO_DOWNLOAD', env.noDownload], ['XDG_CACHE_HOME', env.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(() => languageDatasets('lm1b', 'bytes', 0, 8)).toThrow(/batchSize must be a positive integer/);
    expect(() => languageDatasetsByName('ptb_datasets', 4, 8)).toThrow(/unknown language dataset 'ptb_datasets'; allowed: lm1b_32k_datasets/);
  });
});

let fortunesDir: string | null = null;
let why = '';
try {
  fortunesDir = findFortunesDir();
} catch (e) {
  why = (e as Error).message;
}
if (!fortunesDir) {
  test('fortunes corpus absent: its test skipped', () => {
    console.warn(`SKIPPING the fortunes corpus test: ${why}`);
    expect(why).toMatch(/apt-get install fortunes/);
  });
}
(fortunesDir ? test : test.skip)('fortunes (offline default): thousands of records, byte ids in range, padding only after the text', () => {
  clearDatasetCache();
  const ds = languageDatasets('fortunes', 'bytes', 16, 32);
  const s = ds.split('train') as unknown as { numExamples: number; next(): { obs: tf.Tensor; target: tf.Tensor } };
  expect(s.numExamples).toBeGreaterThan(1000);
  const b = s.next();
  const o = b.obs.arraySync() as number[][];
  for (const row of o) {
    expect(row.every((x) => x === 0 || (x >= 3 && x < 259))).toBe(true);
    const firstPad = row.indexOf(0);
    if (firstPad >= 0) expect(row.slice(firstPad).every((x) => x === 0)).toBe(true);
  }
  tf.dispose([b.obs, b.target]);
});
