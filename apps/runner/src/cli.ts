#!/usr/bin/env node
/**
 * `lopt`: the command-line entry point. Built-in libs are loaded (registering their plugins),
 * `--plugin` packages are loaded before any command runs, then the subcommand in
 * `commands/` does its work.
 */
import { Command, CommanderError } from 'commander';
import { loadPlugin, registry as globalRegistry } from '@lopt/core';
import { CliContext } from './commands/context';
import { COMMANDS } from './commands';
import { loadBuiltinLibs } from './libs';

/**
 * Options of {@link buildProgram} and {@link main}: the plugin registry, output streams, and whether to skip
 * loading the built-in libs.
 */
export interface ProgramOptions {
  registry?: CliContext['registry'];
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Skip requiring @lopt/tasks etc. (tests). */
  skipBuiltinLibs?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * The `lopt` commander program with every subcommand of {@link COMMANDS} registered, writing to the given
 * streams.
 */
export function buildProgram(opts: ProgramOptions = {}): Command {
  const ctx: CliContext = {
    registry: opts.registry ?? globalRegistry,
    stdout: opts.stdout ?? process.stdout,
    stderr: opts.stderr ?? process.stderr,
    plugins: [],
  };
  const program = new Command('lopt')
    .description('Meta-train learned optimizers (a TensorFlow.js port of learned_optimization)')
    .version(readVersion(), '-V, --version')
    .option('--plugin <pathOrPackage>', 'load a plugin package (a folder or an installed package name) first; repeatable', collect, [])
    .option('--quiet', 'do not warn about built-in libs that failed to load')
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });

  program.hook('preAction', async (thisCommand) => {
    const global = thisCommand.opts<{ plugin: string[]; quiet?: boolean }>();
    if (!opts.skipBuiltinLibs) {
      const libs = loadBuiltinLibs();
      if (!global.quiet) {
        for (const f of libs.failed) ctx.stderr.write(`lopt: warning: could not load ${f.name}: ${f.error}\n`);
      }
    }
    ctx.plugins = global.plugin;
    for (const p of global.plugin) {
      await loadPlugin(p, { registry: ctx.registry });
    }
  });

  for (const cmd of COMMANDS) cmd.register(program, ctx);
  return program;
}

function readVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- package.json is outside rootDir (src), so tsc cannot import it
    return require('../package.json').version as string;
  } catch {
    return '0.0.0';
  }
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[] = process.argv, opts: ProgramOptions = {}): Promise<number> {
  const program = buildProgram(opts).exitOverride();
  const stderr = opts.stderr ?? process.stderr;
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander already printed the message
    stderr.write(`lopt: error: ${(e as Error).message}\n`);
    if (process.env.LOPT_DEBUG) stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code;
  });
}
