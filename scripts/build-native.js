#!/usr/bin/env node
/*
 * Builds the optional native kernels (every libs/<lib>/native with a binding.gyp) with node-gyp,
 * which npm puts on PATH for its scripts (run it as `npm run build:native`). Without a C compiler
 * a build fails and lopt-ts runs the same arithmetic with tf.js kernels: this script then warns
 * and exits 0, unless LOPT_NATIVE=on asks for the kernels. LOPT_NATIVE=off skips the build.
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const setting = (process.env.LOPT_NATIVE || 'auto').toLowerCase();
if (setting === 'off' || setting === '0') {
  console.log('[build:native] skipped (LOPT_NATIVE=off)');
  process.exit(0);
}
const libs = path.join(__dirname, '..', 'libs');
const dirs = fs
  .readdirSync(libs)
  .map((lib) => path.join(libs, lib, 'native'))
  .filter((dir) => fs.existsSync(path.join(dir, 'binding.gyp')));
// node-gyp ends with a dozen lines of its own context; show the compiler's and gyp's reasons.
const noise = /gyp ERR! (cwd|node -v|node-gyp -v|\$npm|not ok|System|command|stack)/;
let failed = 0;
for (const dir of dirs) {
  const rel = path.relative(path.join(__dirname, '..'), dir);
  const res = spawnSync('node-gyp', ['rebuild', '--loglevel=error', `--directory=${dir}`], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (res.status === 0) {
    const built = fs.readdirSync(path.join(dir, 'build', 'Release')).filter((f) => f.endsWith('.node'));
    console.log(`[build:native] built ${built.map((f) => path.join(rel, 'build', 'Release', f)).join(', ')}`);
    continue;
  }
  failed++;
  const lines = (res.stderr || res.stdout || '').split('\n').filter((l) => l.trim() && !noise.test(l));
  const why = res.error ? `node-gyp: ${res.error.message}` : lines.slice(0, 12).join('\n');
  console.warn(`[build:native] ${rel} did not build; its kernels will run as tf.js ops (same values, slower).\n${why}`);
}
process.exit(failed && (setting === 'on' || setting === '1') ? 1 : 0);
