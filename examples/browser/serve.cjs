#!/usr/bin/env node
/*
 * The browser example's bundler and static server (Node, no dependencies beyond esbuild).
 *
 *   node examples/browser/serve.cjs [port]      # after `npm run build`; then open the printed URL
 *
 * `bundle()` bundles src/main.ts with esbuild for the browser, in memory: the @lopt packages
 * resolve through their `browser` export condition (no Node built-ins), from their built dist.
 * `startServer()` serves index.html, the bundle, tfjs-backend-wasm's .wasm files and the
 * pretrained MLPLOpt θ (pretrained/mlp-lopt-seed/theta.tree) on 127.0.0.1 only.
 * test/e2e/browser.test.ts uses both.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..', '..');

/** Bundles the page; resolves to the JavaScript text (throws with esbuild's messages on an error). */
async function bundle() {
  const esbuild = require('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(HERE, 'src', 'main.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    metafile: true,
    absWorkingDir: ROOT,
  });
  return { js: result.outputFiles[0].text, metafile: result.metafile };
}

function wasmDir() {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json', { paths: [ROOT] })), 'dist');
}

/**
 * Serves the example on `host:port` (port 0: any free one). Resolves to { url, close }.
 * The bundle is built once, before the server listens.
 */
async function startServer({ port = 0, host = '127.0.0.1' } = {}) {
  const { js } = await bundle();
  const wasm = wasmDir();
  const files = {
    '/': { file: path.join(HERE, 'index.html'), type: 'text/html; charset=utf-8' },
    '/index.html': { file: path.join(HERE, 'index.html'), type: 'text/html; charset=utf-8' },
    '/pretrained/theta.tree': { file: path.join(ROOT, 'pretrained', 'mlp-lopt-seed', 'theta.tree'), type: 'application/octet-stream' },
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url || '/', 'http://localhost');
    const send = (status, type, body) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (url.pathname === '/dist/main.js') return send(200, 'text/javascript; charset=utf-8', js);
    if (url.pathname === '/favicon.ico') return send(204, 'text/plain', '');
    const m = url.pathname.match(/^\/wasm\/([\w.-]+\.wasm)$/);
    const entry = m ? { file: path.join(wasm, m[1]), type: 'application/wasm' } : files[url.pathname];
    if (!entry) return send(404, 'text/plain', 'not found');
    fs.readFile(entry.file, (err, data) => (err ? send(404, 'text/plain', 'not found') : send(200, entry.type, data)));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

module.exports = { bundle, startServer };

if (require.main === module) {
  startServer({ port: Number(process.argv[2] ?? 8080) }).then(
    ({ url }) => console.log(`lopt-ts browser example: ${url}  (?backend=wasm|webgl|cpu)`),
    (e) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
