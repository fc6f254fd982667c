/**
 * downloadFiles over a real HTTP server on loopback (in its own process: the download blocks this
 * one until it is done).
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { downloadFiles } from '../index';

let server: ChildProcess;
let base: string;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-download-'));
  const script = `
    const http = require('http');
    const files = { 'a.gz': 'first file', 'b.gz': 'second' };
    const s = http.createServer((req, res) => {
      const name = req.url.split('/').pop();
      if (req.url.startsWith('/good/') && files[name] !== undefined) { res.end(files[name]); return; }
      res.statusCode = 404; res.end('no');
    });
    s.listen(0, '127.0.0.1', () => console.log('PORT=' + s.address().port));`;
  server = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH } });
  // the port is announced on its own line (anything else the child prints is skipped)
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += String(d);
      const m = /PORT=(\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`test server exited with ${code}: ${out}`)));
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  server.kill();
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
