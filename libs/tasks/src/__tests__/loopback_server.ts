/**
 * A real HTTP server on loopback for download tests, in its own process: `downloadFiles` blocks
 * the test's process until it is done, so a server in the same process could not answer.
 */
import { spawn } from 'child_process';

/** Serves `routes` (URL path → body; anything else is a 404); resolves with its base URL. */
export async function startFileServer(routes: Record<string, string>): Promise<{ base: string; close: () => void }> {
  const script = `
    const http = require('http');
    const routes = ${JSON.stringify(routes)};
    const s = http.createServer((req, res) => {
      if (routes[req.url] !== undefined) { res.end(routes[req.url]); return; }
      res.statusCode = 404; res.end('no');
    });
    s.listen(0, '127.0.0.1', () => console.log('PORT=' + s.address().port));`;
  const server = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH } });
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
  return { base: `http://127.0.0.1:${port}`, close: () => server.kill() };
}

/**
 * Serves binary `files` (URL path → bytes) with HTTP `Range` requests (206), for resumable
 * downloads; `cutFirstAt` breaks off the first response to each path after that many bytes (the
 * socket is destroyed), as a dropped connection would; `ignoreRange` answers every request with
 * the whole file (200), as a server without range support. `requests()` lists what was asked for
 * (`"<path> <range header or ->"`).
 */
export async function startRangeFileServer(
  files: Record<string, Uint8Array>,
  opts: { cutFirstAt?: number; ignoreRange?: boolean } = {},
): Promise<{ base: string; close: () => void; requests: () => string[] }> {
  const encoded = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  const script = `
    const http = require('http');
    const files = Object.fromEntries(Object.entries(${JSON.stringify(encoded)}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    const cut = ${JSON.stringify(opts.cutFirstAt ?? null)};
    const served = new Set();
    const s = http.createServer((req, res) => {
      console.log('REQ ' + req.url + ' ' + (req.headers.range || '-'));
      const body = files[req.url];
      if (!body) { res.statusCode = 404; res.end('no'); return; }
      let start = 0;
      const m = ${JSON.stringify(!!opts.ignoreRange)} ? null : /^bytes=(\\d+)-$/.exec(req.headers.range || '');
      if (m) {
        start = Number(m[1]);
        if (start >= body.length) { res.statusCode = 416; res.end(); return; }
        res.statusCode = 206;
        res.setHeader('Content-Range', 'bytes ' + start + '-' + (body.length - 1) + '/' + body.length);
      }
      res.setHeader('Content-Length', body.length - start);
      const part = body.subarray(start);
      if (cut !== null && !served.has(req.url)) {
        served.add(req.url);
        res.write(part.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(part);
    });
    s.listen(0, '127.0.0.1', () => console.log('PORT=' + s.address().port));`;
  const server = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH } });
  let out = '';
  const port = await new Promise<string>((resolve, reject) => {
    server.stdout!.on('data', (d) => {
      out += String(d);
      const m = /PORT=(\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`test server exited with ${code}: ${out}`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    close: () => server.kill(),
    requests: () => [...out.matchAll(/^REQ (.*)$/gm)].map((m) => m[1]),
  };
}
