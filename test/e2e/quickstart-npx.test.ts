/**
 * A fresh clone, set up the quickstart's way, has a working `npx lopt`: scripts/quickstart.sh with
 * LOPT_QUICKSTART_SETUP_ONLY=1 (npm ci, npm run build, no meta-training run) in a clone of the
 * committed HEAD, then `npx lopt --version` and `npx lopt list` there. npm ci links
 * node_modules/.bin/lopt only if the bin target exists before any build (apps/runner/bin/lopt.js);
 * without it npx looks for a `lopt` package on the registry and fails with "404 lopt@*".
 * Only committed files are in the clone. About 40 s on 2 cores (npm ci from the npm cache
 * with --prefer-offline, a full tsc -b, the native kernels).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const NPX = fs.existsSync(path.join(path.dirname(process.execPath), 'npx')) ? path.join(path.dirname(process.execPath), 'npx') : 'npx';

// The parent's npm_* variables (set when jest runs under npm or nx) would steer the clone's npm;
// npm_config_* set here give npm ci the flags --prefer-offline --no-audit --no-fund.
const ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  LOPT_QUICKSTART_SETUP_ONLY: '1',
  LOPT_SKIP_APT: '1', // never apt-get from a test
  LOPT_BACKEND: 'cpu',
  TF_CPP_MIN_LOG_LEVEL: '2',
  LOPT_DEBUG: '',
  FORCE_COLOR: '0',
  NO_COLOR: '1',
};

let tmp: string;
let clone: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeout: number): Result {
  const r = spawnSync(cmd, args, { cwd: clone, env: ENV, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

function expectOk(what: string, r: Result): void {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`);
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-quickstart-'));
  clone = path.join(tmp, 'lopt-ts');
  const c = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8', timeout: 60_000 });
  if (c.status !== 0) throw new Error(`git clone failed: ${c.stderr}`);
  expectOk('scripts/quickstart.sh (LOPT_QUICKSTART_SETUP_ONLY=1)', run('bash', ['scripts/quickstart.sh'], 420_000));
}, 480_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the quickstart set-up stops before the meta-training run', () => {
  expect(fs.existsSync(path.join(clone, 'apps/runner/dist/cli.js'))).toBe(true);
  expect(fs.existsSync(path.join(clone, 'runs'))).toBe(false);
});

test('npm ci linked node_modules/.bin/lopt to the committed launcher', () => {
  const bin = path.join(clone, 'node_modules/.bin/lopt');
  expect(fs.existsSync(bin)).toBe(true);
  expect(fs.realpathSync(bin)).toBe(fs.realpathSync(path.join(clone, 'apps/runner/bin/lopt.js')));
});

test('npx lopt --version prints the version of apps/runner/package.json', () => {
  const r = run(NPX, ['lopt', '--version'], 60_000);
  expectOk('npx lopt --version', r);
  const version = JSON.parse(fs.readFileSync(path.join(clone, 'apps/runner/package.json'), 'utf8')).version;
  expect(r.stdout.trim()).toBe(version);
});

test('npx lopt list lists the seed experiment', () => {
  const r = run(NPX, ['lopt', 'list'], 120_000);
  expectOk('npx lopt list', r);
  expect(r.stdout).toContain('Experiments (experiment):');
  expect(r.stdout).toContain('seed-single-machine');
});

test('npx lopt without a build says to build, in one line, and exits 1', () => {
  const cli = path.join(clone, 'apps/runner/dist/cli.js');
  fs.renameSync(cli, `${cli}.away`);
  try {
    const r = run(NPX, ['lopt', 'list'], 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lopt: apps\/runner is not built .*run `npm run build` in /);
    expect(r.stderr).toContain(fs.realpathSync(clone));
  } finally {
    fs.renameSync(`${cli}.away`, cli);
  }
});
