/**
 * @lopt/runner: the `lopt` CLI and the run infrastructure it is built from: TensorBoard event
 * files, checkpoints, loss plots, progress reporting and config handling.
 */
export * from './tensorboard';
export { renderLossPlot, writeLossPlot, niceTicks, logTicks, formatTick, PALETTE } from './plot';
export type { Series, PlotOptions, RenderedPlot } from './plot';
export * from './checkpoints';
export { ProgressReporter, createProgress, formatDuration } from './progress';
export type { ProgressOptions, ProgressUpdate } from './progress';
export * from './config';
export { atomicWriteDir, removeStaleTemps } from './fsutil';
export { buildProgram, main } from './cli';
export type { ProgramOptions } from './cli';
export { COMMANDS } from './commands';
export type { CommandModule } from './commands';
export type { CliContext } from './commands/context';
export { loadBuiltinLibs, BUILTIN_LIBS } from './libs';
