/**
 * The plugin generator, for real: a temporary Nx workspace beside the repository (its root config
 * files copied, node_modules and libs linked), `nx g @lopt/nx-plugin:plugin <name> --kind <kind>`
 * for every kind, then the generated tests with jest, a `tsc -b` of the generated packages, and
 * the built `lopt` with each package as `--plugin`: `lopt list` shows every new name and a short
 * `lopt run` (the command each generated README shows) uses each one. Needs the repository built
 * (`npm run build`: the generator's factory and the CLI are loaded from dist). About 2 minutes.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkOptions, PLUGIN_KINDS, registeredName, runArgs, type PluginKind } from '../generators/plugin/generator';

const ROOT = path.resolve(__dirname, '../../../..');
const CLI = path.join(ROOT, 'apps/runner/dist/cli.js');
const bin = (pkg: string, file: string) => path.join(ROOT, 'node_modules', pkg, file);
const pluginName = (kind: PluginKind) => `my-${kind.replace(/_/g, '-')}`;

// The parent's npm_* and nx variables would steer the children; the summary reporter must not
// count the generated packages' tests as this repository's.
const ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NX_)/i.test(k) && k !== 'LOPT_TEST_SUMMARY_DIR')),
  NX_DAEMON: 'false',
  NX_NO_CLOUD: 'true',
  NX_SKIP_NX_CACHE: 'true',
  LOPT_BACKEND: 'cpu',
  FORCE_COLOR: '0',
};

function run(args: string[], cwd: string): string {
  const r = spawnSync(process.execPath, args, { cwd, env: ENV, encoding: 'utf8', timeout: 300000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`${args.slice(0, 4).join(' ')} ... failed (exit ${r.status}):\n${out.slice(-4000)}`);
  return out;
}

describe('checkOptions', () => {
  const tree = { exists: (p: string) => p === 'plugins/taken' } as never;
  test('names the field and the allowed values', () => {
    expect(() => checkOptions(tree, { name: 'MyThing', kind: 'task_family' })).toThrow(/name must be kebab-case .* got 'MyThing'/);
    expect(() => checkOptions(tree, { name: 'x', kind: 'task' as PluginKind })).toThrow(
      /kind must be one of task_family, learned_optimizer, truncation_schedule, gradient_estimator, experiment, got 'task'/,
    );
    expect(() => checkOptions(tree, { name: 'taken', kind: 'experiment' })).toThrow(/plugins\/taken already exists/);
    expect(checkOptions(tree, { name: 'my-opt', kind: 'learned_optimizer' })).toEqual({ name: 'my-opt', kind: 'learned_optimizer', directory: 'plugins', importPath: '@lopt/my-opt' });
  });
});

describe('nx g @lopt/nx-plugin:plugin in a temporary workspace', () => {
  let ws: string;

  beforeAll(() => {
    for (const built of [CLI, path.join(ROOT, 'libs/nx-plugin/dist/generators/plugin/generator.js')]) {
      if (!fs.existsSync(built)) throw new Error(`${built} is not built; run npm run build first`);
    }
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-nxgen-'));
    for (const f of ['nx.json', 'tsconfig.base.json', 'jest.preset.js', 'scripts/workspaces.js', 'test/setup-backend.js', 'test/summary-reporter.js']) {
      fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(ws, f));
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(ws, 'node_modules'));
    fs.symlinkSync(path.join(ROOT, 'libs'), path.join(ws, 'libs'));
    fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: 'my-workspace', private: true, workspaces: ['plugins/*'] }, null, 2));
  });

  afterAll(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  test('every kind: generated files, passing generated tests, listed by lopt and usable in lopt run', () => {
    for (const kind of PLUGIN_KINDS) {
      const out = run([bin('nx', 'dist/bin/nx.js'), 'g', '@lopt/nx-plugin:plugin', pluginName(kind), '--kind', kind, '--no-interactive'], ws);
      expect(out).toMatch(new RegExp(`CREATE plugins/${pluginName(kind)}/src/index.ts`));
      const pkg = JSON.parse(fs.readFileSync(path.join(ws, 'plugins', pluginName(kind), 'package.json'), 'utf8'));
      expect(pkg).toMatchObject({ name: `@lopt/${pluginName(kind)}`, lopt: { plugin: true } });
    }
    // the generated tests
    const dirs = PLUGIN_KINDS.map((k) => `plugins/${pluginName(k)}`);
    const tests = run([bin('jest', 'bin/jest.js'), '--projects', ...dirs], ws);
    const summary = tests.match(/Tests:\s+(\d+) passed, (\d+) total/);
    expect(summary).not.toBeNull();
    expect(Number(summary![1])).toBe(Number(summary![2]));
    expect(Number(summary![1])).toBeGreaterThanOrEqual(2 * PLUGIN_KINDS.length);
    // built, then loaded by the CLI as plugins
    run([bin('typescript', 'bin/tsc'), '-b', ...dirs], ws);
    const listed = run([CLI, ...dirs.flatMap((d) => ['--plugin', d]), 'list'], ws);
    for (const kind of PLUGIN_KINDS) expect(listed).toContain(registeredName(pluginName(kind), kind));
    for (const kind of PLUGIN_KINDS) {
      const args = runArgs(`plugins/${pluginName(kind)}`, kind, registeredName(pluginName(kind), kind));
      const done = run([CLI, '--quiet', ...args, '--logdir', path.join(ws, 'runs', kind)], ws);
      expect(done).toMatch(/done, 2 steps/);
      expect(fs.readFileSync(path.join(ws, 'plugins', pluginName(kind), 'README.md'), 'utf8')).toContain(`npx lopt ${args.join(' ')}`);
    }
  }, 600000);
});
