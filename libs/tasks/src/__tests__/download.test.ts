/**
 * downloadFiles over a real HTTP server on loopback (in its own process: the download blocks this
 * one until it is done).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { downloadFiles } from '../index';
import { startFileServer } from './loopback_server';

let server: { base: string; close: () => void };
let base: string;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-download-'));
  server = await startFileServer({ '/good/a.gz': 'first file', '/good/b.gz': 'second' });
  base = server.base;
});

afterAll(() => {
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the first base URL that serves every file is used; files appear whole, with no .part left', () => {
  const dir = path.join(tmp, 'ok');
  downloadFiles(dir, ['a.gz', 'b.gz'], [`${base}/missing/`, `${base}/good/`], 5000);
  expect(fs.readFileSync(path.join(dir, 'a.gz'), 'utf8')).toBe('first file');
  expect(fs.readFileSync(path.join(dir, 'b.gz'), 'utf8')).toBe('second');
  expect(fs.readdirSync(dir).sort()).toEqual(['a.gz', 'b.gz']);
});

test('no mirror has the files: an error naming the last failure', () => {
  expect(() => downloadFiles(path.join(tmp, 'bad'), ['c.gz'], [`${base}/good/`], 5000)).toThrow(/download failed: .*c\.gz: HTTP 404/);
});
