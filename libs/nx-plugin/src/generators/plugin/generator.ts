/**
 * `nx g @lopt/nx-plugin:plugin <name> --kind <kind>`: a new lopt-ts plugin package under
 * `plugins/<name>` (or `--directory`): package.json with the `lopt.plugin` marker, tsconfig with
 * references to the libs it uses, jest config, README, and for the kind a working implementation
 * skeleton with its zod schema, its `registerPlugin` call and a test that passes. The package is
 * picked up by the workspace globs (build, jest, nx) with no other edit; `lopt --plugin
 * plugins/<name> list` shows it once built.
 *
 * The templates live in `libs/nx-plugin/files/<common|kind>/` (EJS, `__tmpl__` suffix).
 */
import * as path from 'path';
import { generateFiles, joinPathFragments, names, offsetFromRoot, type Tree } from '@nx/devkit';

/** The plugin kinds the generator has a skeleton for. */
export const PLUGIN_KINDS = ['task_family', 'learned_optimizer', 'truncation_schedule', 'gradient_estimator', 'experiment'] as const;
/** One of {@link PLUGIN_KINDS}. */
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/**
 * Options of `nx g @lopt/nx-plugin:plugin`: the package name, its plugin kind, the parent directory (default
 * `plugins`) and the import path (default `@lopt/<name>`).
 */
export interface PluginGeneratorOptions {
  name: string;
  kind: PluginKind;
  directory?: string;
  importPath?: string;
}

/** The libs each kind's skeleton imports (package names; tsconfig references follow them). */
const LIBS: Record<PluginKind, string[]> = {
  task_family: ['core', 'tasks'],
  learned_optimizer: ['core', 'optimizers'],
  truncation_schedule: ['core', 'estimators'],
  gradient_estimator: ['core', 'tasks', 'optimizers', 'estimators'],
  experiment: ['training'],
};

/** The registered name of the skeleton's class for a plugin name, e.g. my-family -> MyFamily. */
export function registeredName(name: string, kind: PluginKind): string {
  const cls = names(name).className;
  return kind === 'experiment' ? name : cls;
}

/** A `lopt run` command line that uses the new plugin (shown in its README, run by the tests). */
export function runArgs(root: string, kind: PluginKind, registered: string): string[] {
  const base = ['--plugin', root, 'run'];
  switch (kind) {
    case 'experiment':
      return [...base, registered, '--steps', '2'];
    case 'task_family':
      return [...base, 'quadratic-pes', '--steps', '2', '--set', `tasks.0.name=${registered}`, '--set', 'tasks.0.config={}'];
    case 'learned_optimizer':
      return [...base, 'quadratic-pes', '--steps', '2', '--set', `learnedOptimizer.name=${registered}`, '--set', 'learnedOptimizer.config={}'];
    case 'truncation_schedule':
      return [...base, 'quadratic-pes', '--steps', '2', '--set', `truncationSchedule.name=${registered}`, '--set', 'truncationSchedule.config={}'];
    case 'gradient_estimator':
      return [...base, 'quadratic-pes', '--steps', '2', '--set', `gradientEstimator.name=${registered}`, '--set', 'gradientEstimator.config={}'];
  }
}

function runExample(root: string, kind: PluginKind, registered: string): string {
  return `npx lopt ${runArgs(root, kind, registered).join(' ')}   # a short run with it`;
}

/** Checks the options; errors name the field and the allowed values. */
export function checkOptions(tree: Tree, o: PluginGeneratorOptions): Required<PluginGeneratorOptions> {
  if (typeof o.name !== 'string' || !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(o.name)) {
    throw new Error(`name must be kebab-case (lower-case letters and digits, words joined by '-', e.g. my-family), got '${o.name}'`);
  }
  if (!PLUGIN_KINDS.includes(o.kind)) throw new Error(`kind must be one of ${PLUGIN_KINDS.join(', ')}, got '${o.kind}'`);
  const directory = o.directory ?? 'plugins';
  const root = joinPathFragments(directory, o.name);
  if (tree.exists(root)) throw new Error(`${root} already exists; choose another name or --directory`);
  return { name: o.name, kind: o.kind, directory, importPath: o.importPath ?? `@lopt/${o.name}` };
}

/**
 * The `plugin` generator: writes a plugin package of `options.kind` (package.json, tsconfig, jest config,
 * README, an implementation skeleton with its schema, registration and a test) under `<directory>/<name>`.
 */
export async function pluginGenerator(tree: Tree, options: PluginGeneratorOptions): Promise<void> {
  const o = checkOptions(tree, options);
  const root = joinPathFragments(o.directory, o.name);
  const offset = offsetFromRoot(root);
  const version = (lib: string) => {
    const pkg = `libs/${lib}/package.json`;
    return tree.exists(pkg) ? (JSON.parse(tree.read(pkg, 'utf-8')!).version as string) : '0.1.0';
  };
  const libs = LIBS[o.kind];
  const substitutions = {
    ...names(o.name),
    kind: o.kind,
    importPath: o.importPath,
    registered: registeredName(o.name, o.kind),
    root,
    offset,
    runExample: runExample(root, o.kind, registeredName(o.name, o.kind)),
    deps: libs.map((l) => [`@lopt/${l}`, version(l)] as const),
    // project references only where the libs are in this workspace (a build in dependency order)
    references: libs.filter((l) => tree.exists(`libs/${l}/tsconfig.json`)).map((l) => `${offset}libs/${l}`),
    tmpl: '',
  };
  const files = path.join(__dirname, '..', '..', '..', 'files');
  generateFiles(tree, path.join(files, 'common'), root, substitutions);
  generateFiles(tree, path.join(files, o.kind), root, substitutions);
}

export default pluginGenerator;
