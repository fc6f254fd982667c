'use strict';
/**
 * Builds lopt-ts's optional native kernels: every `<package>/native` folder with a binding.gyp,
 * compiled by node-gyp. Shared by the monorepo's `npm run build:native` (scripts/build-native.js)
 * and, for installed packages, by `npx lopt build-native`. Without a C compiler a build fails and
 * lopt-ts runs the same arithmetic with tf.js kernels, so a failure is a warning unless `required`.
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

/**
 * node-gyp as [command, ...args]: the one npm puts on PATH for its scripts, else the copy npm ships
 * beside this node (npx does not put it on PATH), else `node-gyp` from PATH.
 */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return [process.execPath, process.env.npm_config_node_gyp];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  for (const lib of [path.join(prefix, 'lib'), prefix]) {
    const js = path.join(lib, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(js)) return [process.execPath, js];
  }
  return ['node-gyp'];
}

// node-gyp ends with a dozen lines of its own context; keep the compiler's and gyp's reasons.
const noise = /gyp ERR! (cwd|node -v|node-gyp -v|\$npm|not ok|System|command|stack)/;

/**
 * Builds each folder (a `native` dir holding binding.gyp). Returns the number that failed; `log`
 * gets one line per folder, named relative to `base`.
 */
function buildNative(dirs, { base = process.cwd(), log = console.log, warn = console.warn } = {}) {
  const [cmd, ...pre] = nodeGyp();
  let failed = 0;
  for (const dir of dirs) {
    const rel = path.relative(base, dir) || dir;
    const res = spawnSync(cmd, [...pre, 'rebuild', '--loglevel=error', `--directory=${dir}`], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (res.status === 0) {
      const built = fs.readdirSync(path.join(dir, 'build', 'Release')).filter((f) => f.endsWith('.node'));
      log(`[build:native] built ${built.map((f) => path.join(rel, 'build', 'Release', f)).join(', ')}`);
      continue;
    }
    failed++;
    const lines = (res.stderr || res.stdout || '').split('\n').filter((l) => l.trim() && !noise.test(l));
    const why = res.error ? `node-gyp: ${res.error.message}` : lines.slice(0, 12).join('\n');
    warn(`[build:native] ${rel} did not build; its kernels will run as tf.js ops (same values, slower).\n${why}`);
  }
  return failed;
}

/** The `native` folders (with a binding.gyp) of these package directories. */
function nativeDirs(packageDirs) {
  return packageDirs.map((d) => path.join(d, 'native')).filter((d) => fs.existsSync(path.join(d, 'binding.gyp')));
}

module.exports = { buildNative, nativeDirs, nodeGyp };
