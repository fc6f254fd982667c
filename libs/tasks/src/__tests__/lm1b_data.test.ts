/**
 * `lopt data lm1b` end to end on a tiny fixture tarball built here (the real one is 1.7 GB): the
 * archive's files through tar-stream (every long-name form, any chunking, corrupt and truncated archives), Python's line
 * and strip rules, the resumable and checked download against a loopback server that breaks off
 * the first response, TFDS's stored order (md5 of split + key), and the lm1b datasets finding the
 * written corpus, in memory or read by example from the file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { createHash } from 'crypto';
import {
  clearDatasetCache,
  downloadResumable,
  findCorpusFiles,
  languageDatasets,
  loadCorpus,
  prepareLm1b,
  pyStrip,
  pyTextLines,
  readCorpusFile,
  tfdsOrderHash,
} from '../index';
import { forEachTarFile } from '../datasets/lm1b';
import { Readable } from 'stream';
import { useTestBackend } from './helpers';
import { startRangeFileServer } from './loopback_server';
import { packTar } from './tar_fixture';

const TOP = '1-billion-word-language-modeling-benchmark-r13output';
const TRAIN_DIR = `${TOP}/training-monolingual.tokenized.shuffled`;
const TEST_DIR = `${TOP}/heldout-monolingual.tokenized.shuffled`;
const TARBALL = zlib.gzipSync(
  packTar([
    { name: `${TOP}/`, type: '5' },
    { name: `${TOP}/README`, data: 'not a shard\n' },
    { name: `${TRAIN_DIR}/`, type: '5' },
    // line 3 is empty (TFDS keeps it as an empty example; the corpus file cannot)
    { name: `${TRAIN_DIR}/news.en-00001-of-00100`, data: 'The cat sat .\nA dog ran .\r\n  padded line \t\n\nlast line without newline', longName: 'gnu' },
    { name: `${TRAIN_DIR}/news.en-00002-of-00100`, data: 'Über café .\rSecond \u3000\n', longName: 'pax' },
    { name: `${TRAIN_DIR}/other-file`, data: 'not news.en-*\n' },
    { name: `${TEST_DIR}/news.en.heldout-00000-of-00050`, data: 'held one .\nheld two .\n', longName: 'prefix' },
    { name: `${TEST_DIR}/news.en.heldout-00001-of-00050`, data: 'held three .\n', longName: 'prefix' },
  ]),
);
const SHA = createHash('sha256').update(TARBALL).digest('hex');
// TFDS's stored order, computed apart from lopt-ts with Python:
// sorted(examples, key=lambda e: hashlib.md5((split + f'{shard}_{line}').encode()).digest())
const TRAIN_ORDER = ['Über café .', '', 'last line without newline', 'A dog ran .', 'padded line', 'The cat sat .', 'Second'];
const TEST_ORDER = ['held one .', 'held two .', 'held three .'];

let tmp: string;
const saved = { dataDir: process.env.LOPT_DATA_DIR, cache: process.env.XDG_CACHE_HOME };

beforeAll(async () => {
  await useTestBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-lm1b-'));
  process.env.XDG_CACHE_HOME = path.join(tmp, 'cache'); // nothing may land in the real cache
});

afterAll(() => {
  for (const [k, v] of [['LOPT_DATA_DIR', saved.dataDir], ['XDG_CACHE_HOME', saved.cache]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  clearDatasetCache();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every regular file forEachTarFile reports, with its content, the archive fed in `chunk`-byte pieces. */
async function readAll(archive: Uint8Array, chunk: number): Promise<Array<{ name: string; text: string }>> {
  const out: Array<{ name: string; text: string }> = [];
  const pieces = Array.from({ length: Math.ceil(archive.length / chunk) }, (_, i) => Buffer.from(archive.subarray(i * chunk, (i + 1) * chunk)));
  await forEachTarFile(Readable.from(pieces), (name, content) => out.push({ name, text: content.toString('utf8') }));
  return out;
}

describe('the archive read through tar-stream (forEachTarFile)', () => {
  const tar = zlib.gunzipSync(TARBALL);
  test('regular files with their names (ustar prefix, GNU L, pax path) and content, however the bytes are cut', async () => {
    const whole = await readAll(tar, tar.length);
    expect(whole.map((e) => [e.name, Buffer.byteLength(e.text)])).toEqual([
      [`${TOP}/README`, 12],
      [`${TRAIN_DIR}/news.en-00001-of-00100`, 69],
      [`${TRAIN_DIR}/news.en-00002-of-00100`, Buffer.byteLength('Über café .\rSecond \u3000\n')],
      [`${TRAIN_DIR}/other-file`, 14],
      [`${TEST_DIR}/news.en.heldout-00000-of-00050`, 22],
      [`${TEST_DIR}/news.en.heldout-00001-of-00050`, 13],
    ]);
    expect(whole[2].text).toBe('Über café .\rSecond \u3000\n');
    for (const chunk of [1, 7, 511, 513, 4096]) expect(await readAll(tar, chunk)).toEqual(whole);
  });
  test('a corrupt header and an archive cut inside a member are errors', async () => {
    const bad = Buffer.from(tar);
    bad[3] ^= 1;
    await expect(readAll(bad, 512)).rejects.toThrow(/header/i);
    await expect(readAll(tar.subarray(0, 1030), 512)).rejects.toThrow();
  });
});

test("Python's text-mode lines and str.strip()", () => {
  expect(pyTextLines('a\nb\r\nc\rd')).toEqual(['a', 'b', 'c', 'd']);
  expect(pyTextLines('a\n\n')).toEqual(['a', '']);
  expect(pyTextLines('')).toEqual([]);
  expect(pyStrip(' \t\u3000\u00a0x y\u2009\x1c\u0085')).toBe('x y');
  expect(pyStrip('\ufeffx')).toBe('\ufeffx'); // not whitespace to Python
});

test("TFDS's order hash is md5(split name + key)", () => {
  // hashlib.md5(b'train' + b'news.en-00001-of-00100_0').hexdigest()
  expect(tfdsOrderHash('train', 'news.en-00001-of-00100_0').toString('hex')).toBe('d66d4c1c898815b34c74f84b8e707e3e');
});

describe('prepareLm1b from a loopback server', () => {
  let server: Awaited<ReturnType<typeof startRangeFileServer>>;
  beforeAll(async () => {
    server = await startRangeFileServer({ '/lm1b.tar.gz': TARBALL, '/other.tar.gz': zlib.gzipSync(packTar([{ name: 'x/y', data: 'z' }])) }, { cutFirstAt: 300 });
  });
  afterAll(() => server.close());

  test('resumes the broken download, checks it, writes train.txt / test.txt in TFDS order, and the lm1b datasets find them', async () => {
    const root = path.join(tmp, 'data');
    const lines: string[] = [];
    const r = await prepareLm1b({ root, url: `${server.base}/lm1b.tar.gz`, size: TARBALL.length, sha256: SHA, log: (l) => lines.push(l) });
    // the first response broke off after 300 bytes; the second asked for the rest
    expect(server.requests().filter((q) => q.startsWith('/lm1b.tar.gz'))).toEqual(['/lm1b.tar.gz -', '/lm1b.tar.gz bytes=300-']);
    expect(lines.join('\n')).toMatch(/downloading .*lm1b\.tar\.gz[\s\S]*2 train and 2 test shards read; writing the splits in TFDS order/);
    const dir = path.join(root, 'lm1b');
    expect(fs.readFileSync(path.join(dir, 'lm1b.tar.gz'))).toEqual(TARBALL);
    expect(fs.readFileSync(path.join(dir, 'train.txt'), 'utf8')).toBe(TRAIN_ORDER.filter((t) => t !== '').join('\n') + '\n');
    expect(fs.readFileSync(path.join(dir, 'test.txt'), 'utf8')).toBe(TEST_ORDER.join('\n') + '\n');
    expect(r.splits.train).toMatchObject({ examples: 7, written: 6, empty: 1 });
    expect(r.splits.test).toMatchObject({ examples: 3, written: 3, empty: 0 });
    expect(fs.readdirSync(dir).sort()).toEqual(['lm1b.tar.gz', 'prepared.json', 'test.txt', 'train.txt']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'prepared.json'), 'utf8')).splits.train).toEqual({ file: 'train.txt', examples: 7, written: 6, emptyDropped: 1 });

    // found where the loaders look, and served: 6 train examples → train[2%:] (6), test = test.txt
    process.env.LOPT_DATA_DIR = root;
    clearDatasetCache();
    expect(findCorpusFiles('lm1b', 'bytes')).toEqual({ train: path.join(dir, 'train.txt'), test: path.join(dir, 'test.txt') });
    const raw = loadCorpus('lm1b', 'bytes');
    expect(Array.from({ length: raw.train.length }, (_, i) => raw.train.text(i))).toEqual(TRAIN_ORDER.filter((t) => t !== ''));
    const ds = languageDatasets('lm1b', 'bytes', 3, 8);
    const count = (s: 'train' | 'test') => (ds.split(s) as unknown as { numExamples: number }).numExamples;
    expect([count('train'), count('test')]).toEqual([6, 3]);

    // run again: the checked archive on disk is used, not downloaded again
    const before = server.requests().length;
    await prepareLm1b({ root, url: `${server.base}/lm1b.tar.gz`, size: TARBALL.length, sha256: SHA });
    expect(server.requests().length).toBe(before);
  });

  test('a file that is not the expected one is deleted, with an error saying why', async () => {
    const file = path.join(tmp, 'dl', 'x.tar.gz');
    await expect(downloadResumable(`${server.base}/lm1b.tar.gz`, file, { size: TARBALL.length, sha256: '0'.repeat(64) })).rejects.toThrow(/sha256 .*, expected 0000/);
    expect(fs.existsSync(file) || fs.existsSync(`${file}.part`)).toBe(false);
    await expect(downloadResumable(`${server.base}/missing.tar.gz`, file)).rejects.toThrow(/HTTP 404/);
  });

  test('an archive without the lm1b shards is refused, and leaves no corpus files', async () => {
    const root = path.join(tmp, 'other');
    await expect(prepareLm1b({ root, url: `${server.base}/other.tar.gz`, size: null, sha256: null })).rejects.toThrow(/0 train and 0 test shards: not the lm1b tarball/);
    expect(fs.readdirSync(path.join(root, 'lm1b'))).toEqual(['other.tar.gz']);
  });
});

test('a server that ignores the Range header: the download starts over and is whole', async () => {
  const server = await startRangeFileServer({ '/f.bin': TARBALL }, { cutFirstAt: 500, ignoreRange: true });
  try {
    const file = path.join(tmp, 'norange', 'f.bin');
    await downloadResumable(`${server.base}/f.bin`, file, { size: TARBALL.length, sha256: SHA });
    expect(server.requests()).toEqual(['/f.bin -', '/f.bin bytes=500-']);
    expect(fs.readFileSync(file)).toEqual(TARBALL);
  } finally {
    server.close();
  }
});

test('a large corpus file is indexed and read by example: the same examples as in memory', () => {
  const f = path.join(tmp, 'big.txt');
  fs.writeFileSync(f, 'one\r\ntwo\n\nthree\r\n\r\nfour');
  const inMemory = readCorpusFile(f, 'lines');
  const byFile = readCorpusFile(f, 'lines', 4);
  expect(inMemory.bytes).toBeInstanceOf(Uint8Array);
  expect(byFile.bytes).not.toBeInstanceOf(Uint8Array);
  const texts = (t: typeof inMemory) => Array.from({ length: t.length }, (_, i) => t.text(i));
  expect(texts(byFile)).toEqual(['one', 'two', 'three', 'four']);
  expect(texts(byFile)).toEqual(texts(inMemory));
  expect(texts(byFile.reorder([3, 0]).slice(0, 1))).toEqual(['four']);
});
