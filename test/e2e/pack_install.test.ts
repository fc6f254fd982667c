/**
 * The packages as a user gets them: `npm pack` of every lib and the runner (prepack checks the
 * build and adds the LICENSE), `npm install` of those tarballs into an empty folder outside the
 * monorepo (dependencies from the npm cache), then there:
 * - `npx lopt list` shows the registered experiments;
 * - a script that imports the installed libs meta-trains the seed configuration (MLPLOpt, PES,
 *   quadratic + Fashion-MNIST MLP families, 4 tasks each) for 2 outer steps;
 * - npm 11 runs no dependency's install scripts, so the native kernels are not built: `lopt run`
 *   works on tf.js ops and says once how to build them; `npx lopt build-native` builds them (where
 *   a C compiler exists) and the same run then uses them, with the same losses up to rounding.
 * About 1–2 minutes on 2 cores.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const bin = (name: string) => (fs.existsSync(path.join(path.dirname(process.execPath), name)) ? path.join(path.dirname(process.execPath), name) : name);
const NPM = bin('npm');
const NPX = bin('npx');
const PACKAGES = ['libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'libs/training', 'apps/runner'];

// The parent's npm_* variables (set when jest runs under npm or nx) would steer the child npm.
const ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'LOPT_NATIVE')),
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  LOPT_BACKEND: 'wasm',
  FORCE_COLOR: '0',
  NO_COLOR: '1',
};

interface Result {
  code: number | null;
  out: string;
}

function sh(cmd: string, args: string[], cwd: string, timeoutMs = 300000): Result {
  const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

function must(r: Result, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out.slice(-4000)}`);
  return r.out;
}

const SEED_SCRIPT = `
const { initBackend, random } = require('@lopt/core');
const { FixedDimQuadraticFamily, ImageMLP_FashionMnist8_Relu32, singleTaskToFamily } = require('@lopt/tasks');
const { Adam, MLPLOpt } = require('@lopt/optimizers');
const { LogUniformLengthSchedule, VectorizedLOptTruncatedStep, TruncatedPES, SingleMachineGradientLearner } = require('@lopt/estimators');
(async () => {
  await initBackend();
  const lopt = new MLPLOpt();
  const sched = new LogUniformLengthSchedule({ minLength: 100, maxLength: 300 });
  const est = (family) => new TruncatedPES(new VectorizedLOptTruncatedStep(family, lopt, sched, { numTasks: 4, randomInitialIterationOffset: 300 }), { truncLength: 50 });
  const trainer = new SingleMachineGradientLearner(lopt, [est(new FixedDimQuadraticFamily(10)), est(singleTaskToFamily(new ImageMLP_FashionMnist8_Relu32()))], new Adam(1e-3));
  const key = random.PRNGKey(0);
  let state = await trainer.init(key);
  const losses = [];
  for (let i = 0; i < 2; i++) { let loss; [state, loss] = await trainer.update(state, key, { withMetrics: false }); losses.push(loss); }
  console.log('seed losses ' + JSON.stringify(losses));
})().catch((e) => { console.error(e); process.exit(1); });
`;

let tmp: string;
let project: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pack-'));
  const packs = path.join(tmp, 'packs');
  fs.mkdirSync(packs);
  must(sh(NPM, ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', packs], ROOT), 'npm pack');
  const tarballs = fs.readdirSync(packs).filter((f) => f.endsWith('.tgz')).map((f) => path.join(packs, f));
  expect(tarballs).toHaveLength(PACKAGES.length);
  project = path.join(tmp, 'my-project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'my-project', version: '1.0.0', private: true }, null, 2));
  must(sh(NPM, ['install', ...tarballs], project, 600000), 'npm install of the tarballs');
}, 900000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack -> npm install in an empty folder -> run', () => {
  test('each tarball has its exports map, types, README, LICENSE and no tests or sources', () => {
    for (const p of PACKAGES) {
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, p, 'package.json'), 'utf8'));
      const installed = path.join(project, 'node_modules', pkg.name);
      const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
      const { browser, ...nodeEntry } = manifest.exports['.'];
      expect(nodeEntry).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
      // core and tasks resolve to their browser builds (no Node built-ins) under the `browser` condition
      if (browser !== undefined) {
        expect(browser).toEqual({ types: './dist/browser.d.ts', default: './dist/browser.js' });
        for (const f of ['dist/browser.js', 'dist/node.js']) expect(fs.existsSync(path.join(installed, f))).toBe(true);
      }
      expect(manifest.license).toBe('Apache-2.0');
      for (const f of ['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE']) expect(fs.existsSync(path.join(installed, f))).toBe(true);
      expect(fs.existsSync(path.join(installed, 'src', 'index.ts'))).toBe(false);
      expect(fs.existsSync(path.join(installed, 'dist', '__tests__'))).toBe(false);
    }
  });

  test('`npx lopt list` works in the new project', () => {
    const out = must(sh(NPX, ['lopt', 'list'], project), 'npx lopt list');
    expect(out).toMatch(/seed-single-machine/);
    expect(out).toMatch(/quadratic-pes/);
    expect(out).toMatch(/MLPLOpt/);
  });

  test('a script importing the installed libs meta-trains the seed configuration for 2 outer steps', () => {
    fs.writeFileSync(path.join(project, 'seed.cjs'), SEED_SCRIPT);
    const out = must(sh(process.execPath, ['seed.cjs'], project), 'node seed.cjs');
    const losses = JSON.parse(out.match(/seed losses (\[.*\])/)![1]) as number[];
    expect(losses).toHaveLength(2);
    for (const l of losses) expect(Number.isFinite(l) && l > 0).toBe(true);
  });

  test('without install scripts the kernels are tf.js ops and the run says how to build them; `npx lopt build-native` builds them and the run uses them', () => {
    const run = (logdir: string) =>
      must(sh(NPX, ['lopt', 'run', 'quadratic-pes', '--steps', '3', '--logdir', logdir, '--set', 'tasks.0.numTasks=2'], project), `lopt run ${logdir}`);
    const finalLoss = (out: string) => Number(out.match(/final loss:\s+([-\d.e+]+)/)![1]);
    const before = run('runs/without-native');
    expect(before).toMatch(/MLPLOpt off: not built .*; build them with .npx lopt build-native./);
    expect(before.match(/npx lopt build-native/g)).toHaveLength(1);
    if (!['cc', 'gcc', 'c++'].some((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0)) {
      console.warn('pack_install: no C compiler here; `npx lopt build-native` is not tried');
      return;
    }
    const built = must(sh(NPX, ['lopt', 'build-native'], project), 'npx lopt build-native');
    expect(built).toMatch(/\[build:native\] built .*lopt_core\.node/);
    expect(built).toMatch(/\[build:native\] built .*lopt_optimizers\.node/);
    expect(built).toMatch(/native kernels: Core \(\w+\); MLPLOpt \(\w+\)/);
    const after = run('runs/with-native');
    expect(after).toMatch(/native kernels: Core \(\w+\); MLPLOpt \(\w+\)/);
    expect(after).not.toMatch(/not built/);
    expect(finalLoss(after)).toBeCloseTo(finalLoss(before), 3);
  });
});
