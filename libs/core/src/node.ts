/**
 * @lopt/core's Node-only part: atomic file writes, `saveTree`/`loadTree`, checkpoint directories
 * and plugin folders (they use fs, path, crypto, zlib). `@lopt/core` in Node exports these too;
 * `@lopt/core/node` exports only these, for code that keeps its browser and Node parts apart.
 */
export { atomicWriteFile, saveTree, loadTree } from './serialization_node';
export { PluginLoadError, isPluginPackageJson, resolvePluginDir, loadPlugin, discoverPlugins, loadPluginsFrom } from './plugins';
export type { LoadedPlugin, LoadPluginOptions, PluginApi } from './plugins';
export {
  CHECKPOINT_PREFIX,
  PARAMS_PREFIX,
  META_FILE,
  CheckpointError,
  configHash,
  listIndices,
  strayEntries,
  readCheckpointDir,
  loadParams,
  writeCheckpointDir,
} from './checkpoint';
export type { CheckpointKind, CheckpointInfo, CheckpointMeta } from './checkpoint';
export { atomicWriteDir, removeStaleTemps, tempPathFor, TMP_PREFIX } from './atomic_dir';
export { crc32c, maskedCrc32c, encodeRecord, encodeRecords, decodeRecords, RecordCorruptionError, RecordSplitter } from './tfrecord';
