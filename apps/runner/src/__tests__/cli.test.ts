import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { z } from 'zod';
import { Registry, registry as globalRegistry } from '@lopt/core';
import { main } from '../cli';
import { parseKind, formatList } from '../commands/list';
import { loadBuiltinLibs } from '../libs';
import { sink } from './support/sink';


function testRegistry(): Registry {
  const reg = globalRegistry.child();
  reg.register({ kind: 'task', name: 'ToyTask', description: 'a toy task\nsecond line not shown', schema: z.object({}), create: () => ({}) });
  reg.register({ kind: 'optimizer', name: 'ToyOpt', description: 'a toy optimizer', schema: z.object({}), create: () => ({}) });
  return reg;
}

async function run(args: string[], registry = testRegistry()) {
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'lopt', ...args], { registry, stdout, stderr, skipBuiltinLibs: true });
  return { code, out: stdout.text(), err: stderr.text(), registry };
}

describe('lopt list', () => {
  it('prints every kind with names and one-line descriptions', async () => {
    const { code, out } = await run(['list']);
    expect(code).toBe(0);
    for (const title of ['Tasks (task):', 'Optimizers (optimizer):', 'Learned optimizers (learned_optimizer):', 'Truncation schedules (truncation_schedule):', 'Gradient estimators (gradient_estimator):', 'Experiments (experiment):']) {
      expect(out).toContain(title);
    }
    expect(out).toMatch(/^  ToyTask  a toy task$/m);
    expect(out).not.toContain('second line');
    expect(out).toMatch(/^  ToyOpt  a toy optimizer$/m);
    expect(out).toContain('(none registered)');
  });

  it('filters by kind and prints JSON', async () => {
    const { code, out } = await run(['list', 'optimizers', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ optimizer: [{ name: 'ToyOpt', description: 'a toy optimizer' }] });
  });

  it('rejects an unknown kind naming the allowed ones', async () => {
    const { code, err } = await run(['list', 'bogus']);
    expect(code).toBe(1);
    expect(err).toMatch(/unknown plugin kind 'bogus'; allowed: task, task_family, optimizer, learned_optimizer/);
  });

  it('loads --plugin packages before listing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-plugin-'));
    const pkgA = path.join(dir, 'plugin-a');
    const pkgB = path.join(dir, 'plugin-b');
    for (const [pkg, name, kind] of [
      [pkgA, 'PluginTaskA', 'task'],
      [pkgB, 'PluginScheduleB', 'truncation_schedule'],
    ]) {
      fs.mkdirSync(pkg);
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: path.basename(pkg), main: 'index.js', lopt: { plugin: true } }));
      fs.writeFileSync(
        path.join(pkg, 'index.js'),
        `exports.register = (registry, { registerPlugin, z }) => registerPlugin({ kind: '${kind}', name: '${name}', description: 'from ${path.basename(pkg)}', schema: z.object({}), create: () => ({}) }, registry);\n`,
      );
    }
    const { code, out, err } = await run(['--plugin', pkgA, '--plugin', pkgB, 'list']);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^  PluginTaskA +from plugin-a$/m);
    expect(out).toMatch(/^  PluginScheduleB  from plugin-b$/m);
    expect(out).toMatch(/^  ToyTask +a toy task$/m);
  });

  it('reports a bad plugin clearly', async () => {
    const { code, err } = await run(['--plugin', '/nonexistent/plugin-dir', 'list']);
    expect(code).toBe(1);
    expect(err).toMatch(/lopt: error: .*plugin-dir/);
  });

  it('shows help and the version', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('--plugin <pathOrPackage>');
    expect(help.out).toContain('list [options] [kind]');
    const version = await run(['--version']);
    expect(version.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("unknown command 'frobnicate'");
  });
});

describe('helpers', () => {
  it('parseKind accepts plural and dashed spellings', () => {
    expect(parseKind('tasks')).toBe('task');
    expect(parseKind('learned-optimizers')).toBe('learned_optimizer');
    expect(parseKind('gradient_estimator')).toBe('gradient_estimator');
    expect(() => parseKind('x')).toThrow(/allowed/);
  });

  it('formatList aligns names', () => {
    const text = formatList(testRegistry(), ['task']);
    expect(text).toBe('Tasks (task):\n  ToyTask  a toy task\n');
  });

  it('loadBuiltinLibs reports a lib that cannot load instead of throwing', () => {
    const r = loadBuiltinLibs(['@lopt/definitely-not-a-lib']);
    expect(r.loaded).toEqual([]);
    expect(r.failed[0].name).toBe('@lopt/definitely-not-a-lib');
  });
});
