import { Registry } from '@lopt/core';

/** What every command gets: where to write and which registry to read. */
export interface CliContext {
  registry: Registry;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Plugin packages named with --plugin, loaded before the command's action runs. */
  plugins: string[];
}
