// The repository's npm workspaces, found from the root package.json's `workspaces` globs
// ("libs/*", "apps/*", "plugins/*"): every matching folder with a package.json, sorted.
// Shared by scripts/build-ts.js (what `npm run build` compiles) and jest.preset.js (which maps
// every `@lopt/<name>` package to its sources), so a new package needs no edit anywhere else.
// Plain CommonJS with no dependencies: it runs before anything is built or installed.
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A glob segment (`*` matches any run of characters except `/`) as a RegExp. */
function segmentRegExp(segment) {
  const escaped = segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${escaped}$`);
}

/** Folders under `root` matching `pattern` (segments separated by `/`, `*` wildcards, no `**`). */
function expandGlob(root, pattern) {
  const segments = pattern.split('/').filter((s) => s && s !== '.');
  if (segments.includes('**')) throw new Error(`workspaces: '**' is not supported (pattern '${pattern}')`);
  let dirs = [root];
  for (const segment of segments) {
    const next = [];
    for (const dir of dirs) {
      if (!segment.includes('*')) {
        const p = path.join(dir, segment);
        if (fs.existsSync(p) && fs.statSync(p).isDirectory()) next.push(p);
        continue;
      }
      const re = segmentRegExp(segment);
      let entries = [];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (e.name.startsWith('.') || e.name === 'node_modules' || !re.test(e.name)) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory() || (e.isSymbolicLink() && fs.statSync(p).isDirectory())) next.push(p);
      }
    }
    dirs = next;
  }
  return dirs;
}

/** The `workspaces` patterns of the root package.json (array or `{packages: [...]}` form). */
function workspacePatterns(root = ROOT) {
  const pkg = readJson(path.join(root, 'package.json'));
  if (!pkg) throw new Error(`cannot read ${path.join(root, 'package.json')}`);
  const ws = Array.isArray(pkg.workspaces) ? pkg.workspaces : (pkg.workspaces && pkg.workspaces.packages) || [];
  return ws;
}

/**
 * Every workspace package: `{ dir, rel, name, pkg }` for each folder matching a workspace glob that
 * has a readable package.json, sorted by relative path. A folder whose package.json is missing or
 * does not parse (e.g. a package being written) is skipped, as npm would not link it either.
 */
function workspaces(root = ROOT) {
  const seen = new Set();
  const out = [];
  for (const pattern of workspacePatterns(root)) {
    for (const dir of expandGlob(root, pattern)) {
      if (seen.has(dir)) continue;
      seen.add(dir);
      const pkg = readJson(path.join(dir, 'package.json'));
      if (!pkg || typeof pkg.name !== 'string') continue;
      out.push({ dir, rel: path.relative(root, dir).split(path.sep).join('/'), name: pkg.name, pkg });
    }
  }
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

module.exports = { ROOT, workspaces, workspacePatterns, expandGlob };
