// Shared jest settings for every lib: TypeScript through swc (keeps decorator metadata for tsyringe),
// workspace packages resolved to their sources so tests never need a prior build.
const path = require('path');
const root = __dirname;

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
  moduleNameMapper: {
    '^@lopt/(core|tasks|optimizers|estimators)$': path.join(root, 'libs/$1/src/index.ts'),
    '^@lopt/runner$': path.join(root, 'apps/runner/src/index.ts'),
  },
  setupFiles: [path.join(root, 'test/setup-backend.js')],
  testTimeout: 120000,
  reporters: ['default', path.join(root, 'test/summary-reporter.js')],
});
