/**
 * @lopt/core: jax-exact random keys and haiku-exact initialisation, pytrees and donation helpers,
 * the plugin registry, metrics, the one tree format and checkpoint entries, native-kernel loading
 * and backend selection, shared by every other lib.
 *
 * @packageDocumentation
 */
import 'reflect-metadata';
import * as random from './random';

/** `jax.random` with jax's numbers: threefry keys (`PRNGKey`, `split`, `foldIn`) and samplers, in either threefry mode. */
export { random };
export type { PRNGKey } from './random';
export { isPlainObject, isLeaf, sortedKeys, treeLeaves, treeFlatten, treeUnflatten, treeLeavesWithPath, treeStructureEqual, treeMap, treeMapN, treeShapes, treeStack, treeUnstack, treeDispose, toTensor, treeAdd, treeSub, treeScale, treeZerosLike, treeKeep, treeSize, disposeReplaced } from './tree';
export type { Leaf, PyTree, TreeDef } from './tree';
export { PLUGIN_KINDS, RegistryError, TOKENS, formatZodError, nonFiniteConfigField, parseOptions, Registry, registry, registerPlugin } from './registry';
export type { PluginKind, PluginDeps, KindWithDeps, DepsOf, PluginEntry } from './registry';
export { BACKEND_NAMES, BackendError, explicitTransposeBatchMatMulGrad, registerWasmMatMulGradient, initBackend, currentBackend } from './backend';
export { registerWasmConvKernels, wasmConv2DBackpropFilter, cpuConv2DBackpropFilter } from './wasm_conv_kernels';
export type { BackendName, InitBackendOptions } from './backend';
export { METRIC_AGGREGATIONS, MetricsError, parseMetricKey, metricKey, stripMetricSuffix, aggregateMetricList, metricsToNumbers } from './metrics';
export type { MetricAggregation, MetricValue, Metrics, AggregatedMetrics } from './metrics';
export { TREE_MAGIC, TREE_FORMAT_VERSION, SerializationError, crc32, crc32Js, isHostTensor, toHostTree, fromHostTree, encodeHostTree, serializeTree, decodeHostTree, deserializeTree, atomicWriteFile, saveTree, loadTree } from './serialization';
export type { HostTensor, HostTree, HostAllocator } from './serialization';
export { PluginLoadError, isPluginPackageJson, resolvePluginDir, loadPlugin, discoverPlugins, loadPluginsFrom } from './plugins';
export type { LoadedPlugin, LoadPluginOptions, PluginApi } from './plugins';
export { NATIVE_BACKENDS, nativeSetting, loadNativeAddon, nativeVariant, nativeVariantArg, useNativeVariant, nativeStatus, registerNativeKernel, noGradientRecorded, nativeUsable } from './native';
export type { NativeAddon, NativeIO, NativeKernelRun } from './native';
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
export { HaikuInit, haikuInit, haikuInitBatch, initializers, computeFans } from './haiku';
export type { Initializer, HostParam, LinearOptions } from './haiku';
export { EXT_NDARRAY, EXT_COMPLEX, EXT_NPSCALAR, FlaxFormatError, NdArray, flaxExtensionCodec, looksLikeFlaxMsgpack, msgpackRestore, msgpackSerialize, ndarrayToTensor, tensorToNdArray, importFlaxParams, exportFlaxParams, checkThetaStructure } from './flax_msgpack';
export type { FlaxParams } from './flax_msgpack';
