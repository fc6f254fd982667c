/**
 * @lopt/nx-plugin: Nx generators for lopt-ts. `nx g @lopt/nx-plugin:plugin <name> --kind <kind>`
 * starts a plugin package (see src/generators/plugin/generator.ts and the README).
 *
 * @packageDocumentation
 */
export { pluginGenerator, checkOptions, registeredName, runArgs, PLUGIN_KINDS } from './generators/plugin/generator';
export type { PluginGeneratorOptions, PluginKind } from './generators/plugin/generator';
