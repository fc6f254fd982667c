/**
 * Third-party plugins: npm packages whose package.json has `"lopt": { "plugin": true }`.
 *
 * `loadPlugin(pathOrPackage)` resolves a directory (relative to the cwd) or a package name,
 * checks the marker and `require`s the package's main (compiled JavaScript). Two conventions
 * are supported, and a plugin may use either:
 * 1. self-registration: the main module imports `@lopt/core` and calls `registerPlugin(...)` /
 *    uses `@plugin(...)` at load time (entries go to the process-wide registry);
 * 2. a `register(registry, api)` export: loadPlugin calls it with the target registry (the
 *    process-wide one unless `opts.registry` is given) and `{ registerPlugin, z }`, so the plugin
 *    needs no import of `@lopt/core` or `zod` of its own and can be loaded into a child registry.
 * Loading the same plugin into the same registry twice is a no-op.
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { Registry, registry as globalRegistry, registerPlugin } from './registry';

/** A plugin package that cannot be found, parsed or registered. */
export class PluginLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginLoadError';
  }
}

/** A plugin package `loadPlugins` loaded. */
export interface LoadedPlugin {
  /** package.json `name`. */
  name: string;
  /** Absolute path of the package directory. */
  path: string;
}

/** Options of `loadPlugins`. */
export interface LoadPluginOptions {
  /** Registry passed to a `register(registry, api)` export (default: the process-wide registry). */
  registry?: Registry;
  /** Base directory for relative paths and package resolution (default: `process.cwd()`). */
  cwd?: string;
}

/** What a `register` export receives besides the registry. */
export interface PluginApi {
  registerPlugin: typeof registerPlugin;
  z: typeof z;
}

const loaded = new WeakMap<Registry, Set<string>>();

function readPackageJson(dir: string): any | undefined {
  const file = path.join(dir, 'package.json');
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PluginLoadError(`plugin '${dir}': cannot parse package.json (${(e as Error).message})`);
  }
}

/** True for a package.json that declares a lopt plugin (`"lopt": { "plugin": true }`). */
export function isPluginPackageJson(pkg: any): boolean {
  return Boolean(pkg && typeof pkg === 'object' && pkg.lopt && pkg.lopt.plugin === true);
}

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || spec.includes(path.sep) && !spec.startsWith('@');
}

/** Finds the package directory of `spec` (a path, or a package name resolved from `cwd`). */
export function resolvePluginDir(spec: string, cwd = process.cwd()): string {
  if (!spec) throw new PluginLoadError('loadPlugin needs a path or a package name');
  const asPath = path.resolve(cwd, spec);
  if (looksLikePath(spec) || fs.existsSync(path.join(asPath, 'package.json'))) {
    if (!fs.existsSync(asPath)) throw new PluginLoadError(`plugin '${spec}': no such directory ${asPath}`);
    if (!fs.statSync(asPath).isDirectory()) throw new PluginLoadError(`plugin '${spec}': ${asPath} is not a directory (give the package folder)`);
    return asPath;
  }
  // A package name: node_modules folders from cwd upwards (works whatever its "exports" allow).
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', spec);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate);
    if (path.dirname(dir) === dir) break;
  }
  try {
    return path.dirname(require.resolve(`${spec}/package.json`, { paths: [cwd] }));
  } catch {
    throw new PluginLoadError(`plugin '${spec}': not a directory and no installed package of that name (looked from ${cwd})`);
  }
}

/**
 * Loads a plugin package so its registrations appear in the registry. Resolves to its name and
 * directory; throws a PluginLoadError for a missing package, a missing marker or a failing main.
 */
export async function loadPlugin(pathOrPackage: string, opts: LoadPluginOptions = {}): Promise<LoadedPlugin> {
  const cwd = opts.cwd ?? process.cwd();
  const dir = resolvePluginDir(pathOrPackage, cwd);
  const pkg = readPackageJson(dir);
  if (!pkg) throw new PluginLoadError(`plugin '${pathOrPackage}' (${dir}) has no package.json`);
  if (!isPluginPackageJson(pkg)) {
    throw new PluginLoadError(`'${pathOrPackage}' (${dir}) is not a lopt plugin: package.json needs "lopt": {"plugin": true}`);
  }
  const name: string = typeof pkg.name === 'string' && pkg.name ? pkg.name : path.basename(dir);
  const target = opts.registry ?? globalRegistry;
  let seen = loaded.get(target);
  if (!seen) loaded.set(target, (seen = new Set()));
  if (seen.has(dir)) return { name, path: dir };

  const mainRel = typeof pkg.main === 'string' && pkg.main ? pkg.main : 'index.js';
  let mainFile: string;
  try {
    mainFile = require.resolve(path.resolve(dir, mainRel));
  } catch {
    throw new PluginLoadError(
      `plugin '${name}' (${dir}): main '${mainRel}' not found${/\.ts$/.test(mainRel) || fs.existsSync(path.join(dir, 'tsconfig.json')) ? ' (build it first: main must be compiled JavaScript)' : ''}`,
    );
  }
  let mod: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a plugin's main file, found at run time
    mod = require(mainFile);
  } catch (e) {
    throw new PluginLoadError(`plugin '${name}' (${dir}): loading ${mainFile} failed: ${(e as Error).message}`);
  }
  const register = typeof mod?.register === 'function' ? mod.register : typeof mod?.default?.register === 'function' ? mod.default.register : undefined;
  if (register) {
    const api: PluginApi = { registerPlugin, z };
    try {
      await register(target, api);
    } catch (e) {
      throw new PluginLoadError(`plugin '${name}' (${dir}): register() failed: ${(e as Error).message}`);
    }
  }
  seen.add(dir);
  return { name, path: dir };
}

/** Plugin package folders directly inside `dir` (those with the package.json marker), sorted. */
export function discoverPlugins(dir: string): LoadedPlugin[] {
  const root = path.resolve(dir);
  if (!fs.existsSync(root)) return [];
  const out: LoadedPlugin[] = [];
  for (const ent of fs.readdirSync(root, { withFileTypes: true })) {
    if (!ent.isDirectory() && !ent.isSymbolicLink()) continue;
    const sub = path.join(root, ent.name);
    let pkg: any;
    try {
      pkg = readPackageJson(sub);
    } catch {
      continue;
    }
    if (isPluginPackageJson(pkg)) out.push({ name: typeof pkg.name === 'string' ? pkg.name : ent.name, path: sub });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Loads every plugin found by `discoverPlugins(dir)`. */
export async function loadPluginsFrom(dir: string, opts: LoadPluginOptions = {}): Promise<LoadedPlugin[]> {
  const out: LoadedPlugin[] = [];
  for (const p of discoverPlugins(dir)) out.push(await loadPlugin(p.path, opts));
  return out;
}
