#!/usr/bin/env node
/*
 * `prepack` of every @lopt package (npm runs it in the package's folder before `npm pack`): the
 * tarball needs the built `dist` and the repository's LICENSE, which lives once at the root and
 * is copied in here (the copies are git-ignored).
 */
const fs = require('fs');
const path = require('path');

const pkgDir = process.cwd();
const root = path.resolve(__dirname, '..');
const name = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).name;
if (!fs.existsSync(path.join(pkgDir, 'dist', 'index.js'))) {
  console.error(`${name}: ${path.relative(root, pkgDir)}/dist is not built; run \`npm run build\` in ${root} before packing`);
  process.exit(1);
}
fs.copyFileSync(path.join(root, 'LICENSE'), path.join(pkgDir, 'LICENSE'));
