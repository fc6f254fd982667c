// Shared jest settings for every lib: TypeScript through swc (keeps decorator metadata for tsyringe),
// workspace packages resolved to their sources so tests never need a prior build.
const fs = require('fs');
const path = require('path');
const { workspaces } = require('./scripts/workspaces');
const root = __dirname;

/**
 * `^<name>$` -> `<dir>/src/index.ts` for every workspace package (root package.json globs: libs/*,
 * apps/*, plugins/*) that has that entry file, read when the preset loads: a new lib or plugin maps
 * without an edit here. Imports of other files of a package (`@lopt/x/dist/...`) are left alone.
 */
function sourceMapper() {
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const map = {};
  for (const w of workspaces(root)) {
    const entry = path.join(w.dir, 'src', 'index.ts');
    if (fs.existsSync(entry)) map[`^${escape(w.name)}$`] = entry;
  }
  return map;
}

exports.preset = (projectDir) => ({
  displayName: path.relative(root, projectDir),
  rootDir: projectDir,
  testEnvironment: 'node',
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.tsx?$': [
      require.resolve('@swc/jest'),
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  moduleNameMapper: sourceMapper(),
  setupFiles: [path.join(root, 'test/setup-backend.js')],
  testTimeout: 120000,
  reporters: ['default', path.join(root, 'test/summary-reporter.js')],
});
