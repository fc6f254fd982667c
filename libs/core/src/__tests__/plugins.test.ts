import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { discoverPlugins, loadPlugin, loadPluginsFrom, PluginLoadError, registry } from '../index';

let tmp: string;

function writePkg(dir: string, pkg: object, files: Record<string, string>) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

// Convention 2: a register(registry, api) export, no import of @lopt/core needed.
const REGISTER_PLUGIN = `
exports.register = function (registry, api) {
  api.registerPlugin({
    kind: 'task',
    name: 'tmp_register_task',
    description: 'from a register() export',
    schema: api.z.object({ dim: api.z.number().default(4) }).strict(),
    create: (config) => ({ made: 'tmp_register_task', config }),
  }, registry);
};
`;

// Convention 1: self-registration on import through @lopt/core (the workspace package).
const SELF_PLUGIN = `
const core = require('@lopt/core');
// (a temp dir outside the workspace cannot resolve zod; any object with safeParse works as a schema)
const schema = { safeParse: (c) => ({ success: true, data: Object.assign({ lr: 0.5 }, c) }) };
core.registerPlugin({
  kind: 'optimizer',
  name: 'tmp_self_registered_opt',
  description: 'registers itself on import',
  schema,
  create: (config) => ({ config }),
});
`;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-plugins-'));
  writePkg(path.join(tmp, 'plugins', 'reg'), { name: 'lopt-plugin-reg', main: 'dist/index.js', lopt: { plugin: true } }, { 'dist/index.js': REGISTER_PLUGIN });
  writePkg(path.join(tmp, 'plugins', 'self'), { name: 'lopt-plugin-self', lopt: { plugin: true } }, { 'index.js': SELF_PLUGIN });
  writePkg(path.join(tmp, 'plugins', 'notaplugin'), { name: 'just-a-package' }, { 'index.js': 'throw new Error("must not load")' });
  writePkg(path.join(tmp, 'plugins', 'unbuilt'), { name: 'lopt-plugin-unbuilt', main: 'dist/index.js', lopt: { plugin: true } }, { 'tsconfig.json': '{}' });
  writePkg(path.join(tmp, 'plugins', 'broken'), { name: 'lopt-plugin-broken', lopt: { plugin: true } }, { 'index.js': 'throw new Error("boom")' });
  fs.mkdirSync(path.join(tmp, 'plugins', 'no-package-json'));
  writePkg(path.join(tmp, 'node_modules', '@acme', 'lopt-plugin-byname'), { name: '@acme/lopt-plugin-byname', lopt: { plugin: true } }, {
    'index.js': REGISTER_PLUGIN.replace(/tmp_register_task/g, 'tmp_byname_task'),
  });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('plugins', () => {
  test('a register(registry, api) plugin loads into the given registry only', async () => {
    const child = registry.child();
    const info = await loadPlugin('plugins/reg', { cwd: tmp, registry: child });
    expect(info).toEqual({ name: 'lopt-plugin-reg', path: path.join(tmp, 'plugins', 'reg') });
    expect(child.create('task', 'tmp_register_task', { dim: 2 })).toEqual({ made: 'tmp_register_task', config: { dim: 2 } });
    expect(child.create('task', 'tmp_register_task').config).toEqual({ dim: 4 });
    expect(registry.has('task', 'tmp_register_task')).toBe(false);
    // loading again into the same registry is a no-op; another registry gets its own copy
    await expect(loadPlugin(path.join(tmp, 'plugins', 'reg'), { registry: child })).resolves.toEqual(info);
    const other = registry.child();
    await loadPlugin(path.join(tmp, 'plugins', 'reg'), { registry: other });
    expect(other.has('task', 'tmp_register_task')).toBe(true);
  });

  test('a self-registering plugin appears in the process-wide registry', async () => {
    const info = await loadPlugin(path.join(tmp, 'plugins', 'self'));
    expect(info.name).toBe('lopt-plugin-self');
    expect(registry.create('optimizer', 'tmp_self_registered_opt')).toEqual({ config: { lr: 0.5 } });
  });

  test('package names resolve through node_modules from cwd', async () => {
    const child = registry.child();
    const info = await loadPlugin('@acme/lopt-plugin-byname', { cwd: path.join(tmp, 'plugins'), registry: child });
    expect(info.name).toBe('@acme/lopt-plugin-byname');
    expect(child.has('task', 'tmp_byname_task')).toBe(true);
  });

  test('clear errors', async () => {
    await expect(loadPlugin('plugins/notaplugin', { cwd: tmp })).rejects.toThrow(PluginLoadError);
    await expect(loadPlugin('plugins/notaplugin', { cwd: tmp })).rejects.toThrow(/is not a lopt plugin: package.json needs "lopt": \{"plugin": true\}/);
    await expect(loadPlugin('./plugins/nothing-here', { cwd: tmp })).rejects.toThrow(/no such directory/);
    await expect(loadPlugin('no-such-package-xyz', { cwd: tmp })).rejects.toThrow(/no installed package of that name/);
    await expect(loadPlugin('plugins/no-package-json', { cwd: tmp })).rejects.toThrow(/has no package.json/);
    await expect(loadPlugin('plugins/unbuilt', { cwd: tmp })).rejects.toThrow(/main 'dist\/index.js' not found \(build it first/);
    await expect(loadPlugin('plugins/broken', { cwd: tmp })).rejects.toThrow(/lopt-plugin-broken.*failed: boom/);
    await expect(loadPlugin('')).rejects.toThrow(/needs a path or a package name/);
  });

  test('discoverPlugins lists marked folders only', async () => {
    const found = discoverPlugins(path.join(tmp, 'plugins')).map((p) => p.name);
    expect(found).toEqual(['lopt-plugin-broken', 'lopt-plugin-reg', 'lopt-plugin-self', 'lopt-plugin-unbuilt']);
    expect(discoverPlugins(path.join(tmp, 'does-not-exist'))).toEqual([]);
    fs.mkdirSync(path.join(tmp, 'few'));
    fs.cpSync(path.join(tmp, 'plugins', 'reg'), path.join(tmp, 'few', 'reg'), { recursive: true });
    const child = registry.child();
    expect((await loadPluginsFrom(path.join(tmp, 'few'), { registry: child })).map((p) => p.name)).toEqual(['lopt-plugin-reg']);
    expect(child.has('task', 'tmp_register_task')).toBe(true);
  });
});
