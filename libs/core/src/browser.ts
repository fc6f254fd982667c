/**
 * @lopt/core for any JavaScript host (a browser bundle included): everything of the package that
 * needs no Node built-in. The package's `browser` export condition resolves `@lopt/core` here;
 * in Node, `@lopt/core` (index.ts) is this plus node.ts (files, checkpoints, plugin folders).
 */
import 'reflect-metadata';
import * as random from './random';
import { fixHigherOrderGradients } from './higher_order_gradients';

// before any gradient is taken: tf.js drops second-order terms through saved outputs (see the file)
fixHigherOrderGradients();

/** `jax.random` with jax's numbers: threefry keys (`PRNGKey`, `split`, `foldIn`) and samplers, in either threefry mode. */
export { random };
export type { PRNGKey } from './random';
export { isPlainObject, isLeaf, sortedKeys, treeLeaves, treeFlatten, treeUnflatten, treeLeavesWithPath, treeStructureEqual, treeMap, treeMapN, treeShapes, treeStack, treeUnstack, treeDispose, toTensor, treeAdd, treeSub, treeScale, treeZerosLike, treeKeep, treeSize, disposeReplaced } from './tree';
export type { Leaf, PyTree, TreeDef } from './tree';
export { PLUGIN_KINDS, RegistryError, TOKENS, formatZodError, nonFiniteConfigField, parseOptions, Registry, registry, registerPlugin } from './registry';
export type { PluginKind, PluginDeps, KindWithDeps, DepsOf, PluginEntry } from './registry';
export { BACKEND_NAMES, BackendError, explicitTransposeBatchMatMulGrad, registerWasmMatMulGradient, initBackend, currentBackend } from './backend';
export { registerWasmPoolKernels, registerAvgPoolGradKernels, maxPoolArgmax, avgPoolGradValues } from './wasm_pool_kernels';
export { registerWasmConvKernels, registerFastWasmConv2DBackpropInput, wasmConv2DBackpropFilter, wasmConv2DBackpropInput, cpuConv2DBackpropFilter } from './wasm_conv_kernels';
export { WASM_UNARY_OPS, registerWasmUnaryKernels } from './wasm_unary_kernels';
export { coreNative, stockWasmKernel } from './core_native';
export { registerWasmReduceKernels } from './wasm_reduce_kernels';
export type { CoreAddon } from './core_native';
export { registerWasmDepthwiseKernels, wasmDepthwiseConv2dBackpropInput, wasmDepthwiseConv2dBackpropFilter } from './wasm_depthwise_kernels';
export type { BackendName, InitBackendOptions } from './backend';
export { METRIC_AGGREGATIONS, MetricsError, parseMetricKey, metricKey, stripMetricSuffix, aggregateMetricList, metricsToNumbers } from './metrics';
export type { MetricAggregation, MetricValue, Metrics, AggregatedMetrics } from './metrics';
export { TREE_MAGIC, TREE_FORMAT_VERSION, SerializationError, crc32, crc32Js, isHostTensor, toHostTree, fromHostTree, encodeHostTree, serializeTree, decodeHostTree, deserializeTree } from './serialization';
export type { HostTensor, HostTree, HostAllocator } from './serialization';
export { NATIVE_BACKENDS, envVar, nativeAddonPath, nativeSetting, loadNativeAddon, nativeVariant, nativeVariantArg, useNativeVariant, nativeStatus, registerNativeKernel, runNativeBody, noGradientRecorded, nativeUsable } from './native';
export type { NativeAddon, NativeIO, NativeKernelRun, NativeBody, HostArray } from './native';
export { HaikuInit, haikuInit, haikuInitBatch, initializers, computeFans } from './haiku';
export type { Initializer, HostParam, LinearOptions } from './haiku';
export { EXT_NDARRAY, EXT_COMPLEX, EXT_NPSCALAR, FlaxFormatError, NdArray, flaxExtensionCodec, looksLikeFlaxMsgpack, msgpackRestore, msgpackSerialize, ndarrayToTensor, tensorToNdArray, importFlaxParams, exportFlaxParams, checkThetaStructure } from './flax_msgpack';
export type { FlaxParams } from './flax_msgpack';
export { fixHigherOrderGradients, ZERO_GRADIENT_KERNELS } from './higher_order_gradients';
