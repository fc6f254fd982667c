// Child process of download.ts: node download_child.cjs DIR TIMEOUT_MS FILES_JSON URLS_JSON
// Fetches every file from the first base URL that serves them all; writes FILE.part, then renames.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [dir, timeout, filesJson, urlsJson] = process.argv.slice(2);
  const files = JSON.parse(filesJson);
  const urls = JSON.parse(urlsJson);
  let lastErr;
  for (const base of urls) {
    try {
      for (const f of files) {
        const ctrl = new AbortController();
        const t = setTimeout(() => ctrl.abort(), Number(timeout));
        let buf;
        try {
          const res = await fetch(base + f, { signal: ctrl.signal });
          if (!res.ok) throw new Error(`${base}${f}: HTTP ${res.status}`);
          buf = Buffer.from(await res.arrayBuffer());
        } finally {
          clearTimeout(t); // a pending timer would keep this process alive after a failure
        }
        fs.writeFileSync(path.join(dir, `${f}.part`), buf);
        fs.renameSync(path.join(dir, `${f}.part`), path.join(dir, f));
      }
      return;
    } catch (e) {
      lastErr = e;
    }
  }
  // eslint-disable-next-line no-console -- a child process: stderr is how it reports to download.ts
  console.error(String((lastErr && (lastErr.cause || lastErr.message)) || lastErr));
  process.exit(1);
}

main();
