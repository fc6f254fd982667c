/**
 * @lopt/core: jax-exact random keys and haiku-exact initialisation, pytrees and donation helpers,
 * the plugin registry, metrics, the one tree format and checkpoint entries, native-kernel loading
 * and backend selection, shared by every other lib.
 *
 * @packageDocumentation
 */
export * from './browser';
export * from './node';
