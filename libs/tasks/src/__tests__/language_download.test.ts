/**
 * Tiny Shakespeare, the one small corpus lopt-ts downloads: a missing `tiny_shakespeare/input.txt`
 * is fetched into the cache from a real HTTP server on loopback (in its own process: the download
 * blocks this one), then found there; with LOPT_NO_DOWNLOAD=1 or an unreachable server the error
 * names the files expected and why the download did not help.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findCorpusFiles, TINY_SHAKESPEARE_URLS } from '../index';
import { startFileServer } from './loopback_server';

const TEXT = 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n';
let server: { base: string; close: () => void };
let base: string;
let tmp: string;
const saved = { cache: process.env.XDG_CACHE_HOME, noDownload: process.env.LOPT_NO_DOWNLOAD };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-shakespeare-'));
  process.env.XDG_CACHE_HOME = path.join(tmp, 'cache');
  delete process.env.LOPT_NO_DOWNLOAD;
  server = await startFileServer({ '/tinyshakespeare/input.txt': TEXT });
  base = server.base;
});

afterAll(() => {
  server.close();
  for (const [k, v] of [['XDG_CACHE_HOME', saved.cache], ['LOPT_NO_DOWNLOAD', saved.noDownload]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the default source is the one TFDS tiny_shakespeare reads', () => {
  expect(TINY_SHAKESPEARE_URLS).toEqual(['https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/']);
});

test('no download allowed, or none that works: the error says where it looked and why', () => {
  const empty = path.join(tmp, 'empty');
  expect(() => findCorpusFiles('tiny_shakespeare', 'bytes', [empty], { download: false })).toThrow(/tiny_shakespeare \(bytes\) not found: looked for tiny_shakespeare\/\{input\.txt\} .* under .*empty\. /);
  expect(() => findCorpusFiles('tiny_shakespeare', 'bytes', [empty], { baseUrls: [`${base}/nothing/`] })).toThrow(/not found: .*\(download failed: .*input\.txt: HTTP 404\)/);
  // the 32k ids are never downloaded (they come from `lopt tokenize`)
  expect(() => findCorpusFiles('tiny_shakespeare', '32k', [empty], { baseUrls: [`${base}/tinyshakespeare/`] })).toThrow(/input\.ids/);
});

test('a missing input.txt is downloaded into the cache, whole, and found there', () => {
  const found = findCorpusFiles('tiny_shakespeare', 'bytes', [path.join(tmp, 'empty')], { baseUrls: [`${base}/tinyshakespeare/`] });
  expect(found).toEqual({ train: path.join(tmp, 'cache', 'lopt', 'tiny_shakespeare', 'input.txt'), test: undefined });
  expect(fs.readFileSync(found.train, 'utf8')).toBe(TEXT);
  expect(fs.readdirSync(path.dirname(found.train))).toEqual(['input.txt']);
});
