/**
 * End to end: the built `lopt eval` command on the quadratic task (cpu backend, tiny runs) with a
 * lopt-ts params_<n> checkpoint and with a flax msgpack params file; checks the table, JSON,
 * plot and TensorBoard events, and the errors for a wrong θ or baseline.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { random, treeDispose } from '@lopt/core';
import { LearnableSGD, MLPLOpt } from '@lopt/optimizers';
import { CheckpointManager, listEventFiles, readEventFile, scalarsByTag } from '@lopt/training';
import { exportFlaxParams } from '../apps/runner/src/flax_msgpack';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'apps/runner/dist/cli.js');
let dir: string;

function lopt(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, '--quiet', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, LOPT_BACKEND: 'cpu' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  try {
    execFileSync('npx', ['tsc', '-b', 'libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'apps/runner'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    // Another lib's work in progress may not compile; the runner's dist is still usable if it exists.
    if (!fs.existsSync(cli)) throw e;
    console.warn(`tsc -b failed, using the existing build:\n${String((e as { stdout?: Buffer }).stdout ?? e).slice(0, 2000)}`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-eval-e2e-'));
  const theta = new MLPLOpt().init(random.PRNGKey(0));
  const ck = new CheckpointManager({ dir: path.join(dir, 'run') });
  await ck.saveNow({ step: 5, state: { theta }, theta });
  fs.writeFileSync(path.join(dir, 'params_flax'), exportFlaxParams(theta, { step: 5, genId: 'e2e' }));
  treeDispose(theta);
  const sgdTheta = new LearnableSGD().init(random.PRNGKey(0));
  fs.writeFileSync(path.join(dir, 'params_sgd'), exportFlaxParams(sgdTheta, { step: 1 }));
  treeDispose(sgdTheta);
}, 600000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('lopt eval (built cli)', () => {
  test('quadratic task, lopt-ts params_<n>: table, JSON, plot and TensorBoard events against Adam and SGD', () => {
    const out = path.join(dir, 'out1');
    const steps = 12;
    const r = lopt([
      'eval', '--params', path.join(dir, 'run', 'checkpoints', 'params_0'), '--task', 'QuadraticTask', '--steps', String(steps),
      '--seeds', '2', '--baselines', 'adam:1e-3,sgd:0.1', '--out', out, '--backend', 'cpu', '--eval-every', '4',
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\| optimizer \| train final \| train mean \| outer_valid final \| outer_valid mean \| test final \| test mean \|/);

    const md = fs.readFileSync(path.join(out, 'eval.md'), 'utf8');
    for (const label of ['MLPLOpt (learned)', 'Adam(0.001)', 'SGD(0.1)']) expect(md).toMatch(new RegExp(`\\| ${label.replace(/[()]/g, '\\$&')} \\| (\\*\\*)?[0-9.e+-]+ ± [0-9.e+-]+`));

    const rep = JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8'));
    expect(rep.steps).toBe(steps);
    expect(rep.seeds).toEqual([0, 1]);
    expect(rep.params.format).toBe('lopt-checkpoint');
    expect(rep.results.map((x: any) => x.label)).toEqual(['MLPLOpt (learned)', 'Adam(0.001)', 'SGD(0.1)']);
    for (const res of rep.results) {
      expect(res.curves['train/loss']).toHaveLength(steps + 1);
      expect(res.curves['eval/xs']).toEqual([0, 4, 8, 12]);
      for (const s of ['train', 'outer_valid', 'test']) {
        expect(res.final[s].perSeed).toHaveLength(2);
        expect(Number.isFinite(res.final[s].mean) && Number.isFinite(res.mean[s].std)).toBe(true);
      }
    }
    // same seeds, same initial params: every optimizer starts from the same loss
    const first = rep.results.map((x: any) => x.curves['train/loss'][0]);
    expect(first[1]).toBeCloseTo(first[0], 5);
    expect(first[2]).toBeCloseTo(first[0], 5);
    // SGD(0.1) on Σp² shrinks the loss by 0.64 per step
    const sgd = rep.results[2];
    expect(sgd.final.train.mean).toBeLessThan(0.01 * sgd.curves['train/loss'][0]);

    const png = fs.readFileSync(path.join(out, 'eval.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(5000);
    expect(fs.readFileSync(path.join(out, 'eval.svg'), 'utf8')).toMatch(/MLPLOpt \(learned\)/);

    const tbRuns = fs.readdirSync(path.join(out, 'tb')).sort();
    expect(tbRuns).toEqual(['Adam_0.001', 'MLPLOpt_learned', 'SGD_0.1']);
    const scalars = scalarsByTag(listEventFiles(path.join(out, 'tb', 'SGD_0.1')).flatMap(readEventFile));
    expect(scalars.get('train/loss')!.map((p) => p.step)).toEqual(Array.from({ length: steps + 1 }, (_, i) => i));
    expect(scalars.get('eval/test/loss')!.map((p) => p.step)).toEqual([0, 4, 8, 12]);
  });

  test('flax msgpack params on a task family (sampled per seed), no baselines', () => {
    const out = path.join(dir, 'out2');
    const r = lopt(['eval', '--params', path.join(dir, 'params_flax'), '--task', 'FixedDimQuadraticFamily', '--task-config', '{"dim":4}',
      '--steps', '5', '--seeds', '1', '--baselines', 'none', '--out', out, '--backend', 'cpu']);
    expect(r.status).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8'));
    expect(rep.params).toMatchObject({ format: 'flax-msgpack', step: 5 });
    expect(rep.task).toMatchObject({ name: 'FixedDimQuadraticFamily', config: { dim: 4 }, isFamily: true });
    expect(rep.results).toHaveLength(1);
    expect(fs.existsSync(path.join(out, 'eval.png'))).toBe(true);
  });

  test('a params file the reference wrote for its HyperV2 (VeLO\'s architecture) evaluates with --lopt HyperV2', () => {
    const out = path.join(dir, 'out-hv2');
    const r = lopt(['eval', '--params', path.join(root, 'test/golden/hyper_v2_params.msgpack'), '--lopt', 'HyperV2', '--task', 'QuadraticTask',
      '--steps', '4', '--seeds', '1', '--baselines', 'none', '--out', out, '--backend', 'cpu']);
    expect(r.status).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8'));
    expect(rep.params).toMatchObject({ format: 'flax-msgpack', step: 0 });
    expect(rep.results).toHaveLength(1);
    expect(rep.learnedOptimizer).toMatchObject({ name: 'HyperV2' });
    expect(rep.results[0].label).toBe('HyperV2 (learned)');
    expect(Number.isFinite(rep.results[0].final.train.mean)).toBe(true);
  });

  test('--lopt VeLO: the prefab on a reference-written HyperV2 θ, trained for --steps; equal to HyperV2 without weight decay', () => {
    const params = path.join(root, 'test/golden/hyper_v2_params.msgpack');
    const run = (name: string, extra: string[]) => {
      const out = path.join(dir, `out-${name}`);
      const r = lopt(['eval', '--params', params, '--task', 'QuadraticTask', '--steps', '4', '--seeds', '1', '--baselines', 'none', '--out', out, '--backend', 'cpu', ...extra]);
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '');
      return JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8'));
    };
    // the fixture is HyperV2 with its defaults (not VeLO's larger configuration): hyperV2 {} says so
    const velo = run('velo', ['--lopt', 'VeLO', '--lopt-config', '{"hyperV2":{}}']);
    const hv2 = run('velo-hv2', ['--lopt', 'HyperV2']);
    expect(velo.results[0].label).toBe('VeLO (learned)');
    expect(velo.learnedOptimizer).toMatchObject({ name: 'VeLO', config: { weightDecay: 0, maxTrainingSteps: 150000 } });
    expect(velo.results[0].curves['train/loss']).toEqual(hv2.results[0].curves['train/loss']);
    const decayed = run('velo-wd', ['--lopt', 'VeLO', '--lopt-config', '{"hyperV2":{},"weightDecay":0.1}']);
    expect(decayed.results[0].curves['train/loss']).not.toEqual(velo.results[0].curves['train/loss']);
    // VeLO's own configuration does not fit this θ; a misspelt field is named
    const wrong = lopt(['eval', '--params', params, '--lopt', 'VeLO', '--task', 'QuadraticTask', '--steps', '2', '--out', path.join(dir, 'w')]);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/for VeLO\) does not match/);
    const typo = lopt(['eval', '--params', params, '--lopt', 'VeLO', '--lopt-config', '{"weightdecay":1}', '--task', 'QuadraticTask', '--out', path.join(dir, 'w2')]);
    expect(typo.stderr).toMatch(/unknown field\(s\) weightdecay \(allowed: weightDecay, maxTrainingSteps, hyperV2\)/);
  });

  test('a θ of the wrong structure, an unknown baseline and an unknown task are clear errors', () => {
    const bad = lopt(['eval', '--params', path.join(dir, 'params_sgd'), '--task', 'QuadraticTask', '--steps', '2', '--out', path.join(dir, 'x')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/params .*params_sgd \(for MLPLOpt\) does not match: missing 'mlp\/~\/linear_0\/b'.*unexpected 'log_lr'/);
    // the same file is fine for the learned optimizer it belongs to
    const ok = lopt(['eval', '--params', path.join(dir, 'params_sgd'), '--lopt', 'LearnableSGD', '--task', 'QuadraticTask', '--steps', '2',
      '--seeds', '1', '--baselines', 'none', '--out', path.join(dir, 'y')]);
    expect(ok.status).toBe(0);
    const bl = lopt(['eval', '--params', path.join(dir, 'params_flax'), '--task', 'QuadraticTask', '--baselines', 'adamx:1e-3', '--out', path.join(dir, 'z')]);
    expect(bl.stderr).toMatch(/unknown optimizer 'adamx:1e-3'.*adam, .*sgd/);
    const tk = lopt(['eval', '--params', path.join(dir, 'params_flax'), '--task', 'NoSuchTask', '--out', path.join(dir, 'z')]);
    expect(tk.stderr).toMatch(/unknown task or task family 'NoSuchTask' \(allowed: .*FixedDimQuadraticFamily.*QuadraticTask/);
  });
});
