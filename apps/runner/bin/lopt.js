#!/usr/bin/env node
'use strict';
/**
 * The `lopt` command (package.json "bin"). It is committed, so it exists when `npm ci` links
 * node_modules/.bin/lopt on a fresh clone, before any build; it runs the built CLI in ../dist/cli.js
 * and, when that is not built yet, says so in one line instead of npx looking for `lopt` on the
 * registry. `node apps/runner/dist/cli.js ...` keeps working on its own.
 */
const fs = require('fs');
const path = require('path');

const cli = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  const pkgDir = path.resolve(__dirname, '..');
  const repoRoot = path.resolve(pkgDir, '..', '..');
  const where = fs.existsSync(path.join(repoRoot, 'package.json')) && fs.existsSync(path.join(repoRoot, 'apps', 'runner')) ? repoRoot : pkgDir;
  process.stderr.write(`lopt: apps/runner is not built (no ${cli}); run \`npm run build\` in ${where}\n`);
  process.exit(1);
}

require(cli)
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
