#!/usr/bin/env node
/*
 * Builds the optional native MLPLOpt kernel (libs/optimizers/native) with node-gyp, which npm puts
 * on PATH for its scripts (run it as `npm run build:native`). Without a C compiler the build fails
 * and lopt-ts runs the same arithmetic with tf.js kernels: this script then warns and exits 0,
 * unless LOPT_NATIVE=on asks for the kernel. LOPT_NATIVE=off skips the build.
 */
const { spawnSync } = require('child_process');
const path = require('path');

const setting = (process.env.LOPT_NATIVE || 'auto').toLowerCase();
if (setting === 'off' || setting === '0') {
  console.log('[build:native] skipped (LOPT_NATIVE=off)');
  process.exit(0);
}
const dir = path.join(__dirname, '..', 'libs', 'optimizers', 'native');
const res = spawnSync('node-gyp', ['rebuild', '--loglevel=error', `--directory=${dir}`], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (res.status === 0) {
  console.log('[build:native] built libs/optimizers/native/build/Release/lopt_native.node');
  process.exit(0);
}
// node-gyp ends with a dozen lines of its own context; show the compiler's and gyp's reasons.
const noise = /gyp ERR! (cwd|node -v|node-gyp -v|\$npm|not ok|System|command|stack)/;
const lines = (res.stderr || res.stdout || '').split('\n').filter((l) => l.trim() && !noise.test(l));
const why = res.error ? `node-gyp: ${res.error.message}` : lines.slice(0, 12).join('\n');
console.warn(`[build:native] the native kernel did not build; MLPLOpt will use its tf.js path (same values, slower).\n${why}`);
process.exit(setting === 'on' || setting === '1' ? 1 : 0);
