/**
 * @lopt/runner: the `lopt` command line (argument parsing, progress display, the gRPC transport,
 * `eval`, `bench`). Meta-training itself is the library @lopt/training.
 *
 * @packageDocumentation
 */
export { ProgressReporter, createProgress, formatDuration } from './progress';
export type { ProgressOptions, ProgressUpdate } from './progress';
export { buildProgram, main } from './cli';
export type { ProgramOptions } from './cli';
export { COMMANDS } from './commands';
export type { CommandModule } from './commands';
export type { CliContext } from './commands/context';
export { loadBuiltinLibs, BUILTIN_LIBS } from './libs';
export { startGrpcServer, GrpcLearnerClient } from './distributed';
