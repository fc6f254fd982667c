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
