/**
 * The plugin through the built `lopt` binary: `--plugin plugins/example-learned-optimizer` makes
 * MomentumMLPLOpt show in `lopt list` and usable as the learned optimizer of a run.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../../../..');
const CLI = path.join(ROOT, 'apps/runner/dist/cli.js');
const PLUGIN_REL = 'plugins/example-learned-optimizer';
const ENV = { ...process.env, LOPT_BACKEND: 'cpu', TF_CPP_MIN_LOG_LEVEL: '2', LOPT_DEBUG: '' };

let tmp: string;

function lopt(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: ENV, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOk(r: { code: number | null; stdout: string; stderr: string }): void {
  if (r.code !== 0) throw new Error(`lopt exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

beforeAll(() => {
  // Build the CLI and this plugin (tsc -b follows their references; fast when up to date). A
  // failing build with an existing dist (another package mid-edit) only warns.
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'apps/runner', PLUGIN_REL], { cwd: ROOT, stdio: 'pipe', timeout: 240_000 });
  } catch (e) {
    const out = `${(e as { stdout?: Buffer }).stdout ?? ''}${(e as { stderr?: Buffer }).stderr ?? ''}`;
    if (!fs.existsSync(CLI) || !fs.existsSync(path.join(ROOT, PLUGIN_REL, 'dist/index.js'))) throw new Error(`build failed and there is no dist to test:\n${out}`);
    console.warn(`tsc -b failed; testing the existing dist:\n${out.slice(0, 2000)}`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-lopt-plugin-'));
}, 300_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('lopt list --plugin shows MomentumMLPLOpt (and only with the plugin)', () => {
  const l = lopt(['list', '--plugin', PLUGIN_REL]);
  expectOk(l);
  expect(l.stdout).toContain('MomentumMLPLOpt');
  expect(lopt(['list']).stdout).not.toContain('MomentumMLPLOpt');
});

test('lopt run quadratic-pes with learnedOptimizer.name=MomentumMLPLOpt meta-trains it for 3 steps', () => {
  const dir = path.join(tmp, 'run');
  const r = lopt(['run', 'quadratic-pes', '--plugin', PLUGIN_REL, '--set', 'learnedOptimizer.name=MomentumMLPLOpt', '--set', 'learnedOptimizer.config.hiddenSize=4', '--steps', '3', '--backend', 'cpu', '--logdir', dir]);
  expectOk(r);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  expect(cfg.learnedOptimizer.name).toBe('MomentumMLPLOpt');
  expect(cfg.learnedOptimizer.config).toEqual({ hiddenSize: 4, stepMult: 0.01, momentumDecay: 0.9 });
  const events = fs.readdirSync(dir).filter((n) => n.startsWith('events.out.tfevents'));
  expect(events.length).toBeGreaterThan(0);
});

test('a bad config field of the plugin is reported by name', () => {
  const r = lopt(['run', 'quadratic-pes', '--plugin', PLUGIN_REL, '--set', 'learnedOptimizer.name=MomentumMLPLOpt', '--set', 'learnedOptimizer.config.momentumDecay=2', '--steps', '1', '--logdir', path.join(tmp, 'bad')]);
  expect(r.code).not.toBe(0);
  expect(r.stderr + r.stdout).toMatch(/momentumDecay/);
});
