#!/usr/bin/env node
/*
 * Builds the optional native kernels of the monorepo's libs (every libs/<lib>/native with a
 * binding.gyp; the builder is libs/core/native/build.cjs, which `npx lopt build-native` uses for
 * installed packages). Without a C compiler a build fails and lopt-ts runs the same arithmetic with
 * tf.js kernels: this script then warns and exits 0, unless LOPT_NATIVE=on asks for the kernels.
 * LOPT_NATIVE=off skips the build.
 */
const fs = require('fs');
const path = require('path');
const { buildNative, nativeDirs } = require('../libs/core/native/build.cjs');

const setting = (process.env.LOPT_NATIVE || 'auto').toLowerCase();
if (setting === 'off' || setting === '0') {
  console.log('[build:native] skipped (LOPT_NATIVE=off)');
  process.exit(0);
}
const root = path.join(__dirname, '..');
const libs = path.join(root, 'libs');
const failed = buildNative(nativeDirs(fs.readdirSync(libs).map((lib) => path.join(libs, lib))), { base: root });
process.exit(failed && (setting === 'on' || setting === '1') ? 1 : 0);
