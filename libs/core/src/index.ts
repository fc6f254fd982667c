/**
 * @lopt/core: random keys, pytrees, the plugin registry, metrics, serialization and backend
 * selection, shared by every other lib.
 */
import 'reflect-metadata';
import * as random from './random';

export { random };
export type { PRNGKey } from './random';
export * from './tree';
export * from './registry';
export * from './backend';
export * from './metrics';
export * from './serialization';
export * from './plugins';
export * from './native';
export {
  CHECKPOINT_PREFIX,
  PARAMS_PREFIX,
  META_FILE,
  CheckpointError,
  configHash,
  listIndices,
  readCheckpointDir,
  loadParams,
  writeCheckpointDir,
} from './checkpoint';
export type { CheckpointKind, CheckpointInfo, CheckpointMeta } from './checkpoint';
export { atomicWriteDir, removeStaleTemps, tempPathFor, TMP_PREFIX } from './atomic_dir';
export { HaikuInit, haikuInit, haikuInitBatch, initializers, computeFans } from './haiku';
export type { Initializer, HostParam, LinearOptions } from './haiku';
