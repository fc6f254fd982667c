#!/usr/bin/env node
// `npm run build` (after build:native): one `tsc -b` over every TypeScript project in the repo.
//
// The projects are every workspace package (root package.json `workspaces` globs: libs/*, apps/*,
// plugins/*) that has a tsconfig.json, plus the folders in EXTRA (not packages, but compiled too).
// tsc -b orders them by their tsconfig `references` and skips those that are up to date, so a new
// lib or plugin is built by adding its folder: no list to edit here or in package.json.
//
//   node scripts/build-ts.js            build everything
//   node scripts/build-ts.js --list     print the projects, build nothing
//   node scripts/build-ts.js --verbose  any other option goes to tsc -b (--force, --clean, --dry, ...)
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT, workspaces } = require('./workspaces');

/** Folders compiled with the packages that are not workspace packages themselves. */
const EXTRA = ['examples'];

function projects() {
  const fromWorkspaces = workspaces()
    .filter((w) => fs.existsSync(path.join(w.dir, 'tsconfig.json')))
    .map((w) => w.rel);
  const extra = EXTRA.filter((rel) => fs.existsSync(path.join(ROOT, rel, 'tsconfig.json')));
  return [...fromWorkspaces, ...extra];
}

function main(argv) {
  const list = projects();
  if (argv.includes('--list')) {
    process.stdout.write(list.join('\n') + '\n');
    return 0;
  }
  if (list.length === 0) {
    process.stderr.write('build-ts: no TypeScript projects found\n');
    return 1;
  }
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  process.stdout.write(`[build-ts] tsc -b ${list.join(' ')}\n`);
  const r = spawnSync(process.execPath, [tsc, '-b', ...list, ...argv], { cwd: ROOT, stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`build-ts: could not run tsc: ${r.error.message}\n`);
    return 1;
  }
  return r.status === null ? 1 : r.status;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));

module.exports = { projects };
