/**
 * `lopt build-native`: compiles the optional native kernels of the installed @lopt packages with
 * node-gyp. npm (11+) does not run a dependency's install scripts unless asked, so an installed
 * lopt-ts starts on tf.js kernels (same values, slower) and says once how to build them: this
 * command. In the monorepo, `npm run build:native` does the same for libs/.
 */
import * as path from 'path';
import { Command } from 'commander';
import { CliContext } from './context';

/** The directory of each installed package that may carry native kernels. */
function packageDirs(): string[] {
  const dirs: string[] = [];
  for (const name of ['@lopt/core', '@lopt/optimizers', '@lopt/tasks']) {
    try {
      dirs.push(path.dirname(require.resolve(`${name}/package.json`)));
    } catch {
      // a package that is not installed has nothing to build
    }
  }
  return dirs;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('build-native')
    .description('compile the optional native kernels of the installed @lopt packages (needs a C compiler; without them tf.js ops run the same arithmetic)')
    .action(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain CommonJS file shipped by @lopt/core
      const { buildNative, nativeDirs } = require('@lopt/core/native/build.cjs') as {
        buildNative(dirs: string[], o: { base: string; log: (l: string) => void; warn: (l: string) => void }): number;
        nativeDirs(packageDirs: string[]): string[];
      };
      const dirs = nativeDirs(packageDirs());
      if (dirs.length === 0) throw new Error('no installed @lopt package has native kernel sources (native/binding.gyp)');
      const write = (l: string) => ctx.stderr.write(l + '\n');
      const failed = buildNative(dirs, { base: process.cwd(), log: write, warn: write });
      if (failed) throw new Error(`${failed} of ${dirs.length} native builds failed (a C compiler and Python 3 are needed: apt-get install g++ make python3)`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads the fresh addons to show they work
      const { nativeKernelsStatus } = require('../libs') as typeof import('../libs');
      ctx.stdout.write(`${nativeKernelsStatus()}\n`);
    });
}
