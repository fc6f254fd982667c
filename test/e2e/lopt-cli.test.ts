/**
 * End-to-end tests of the built `lopt` binary (apps/runner/dist/cli.js), driven with child_process:
 * list, run (event files, checkpoints, plot), --resume equivalence, config errors, SIGINT,
 * divergence, plugins.
 * Everything runs on the cpu backend with a handful of steps.
 */
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random, saveTree, treeDispose, treeLeaves } from '@lopt/core';
import { MLPLOpt } from '@lopt/optimizers';
import { CheckpointManager, listEventFiles, readEventFile, scalarsByTag } from '@lopt/training';
import { createHash } from 'crypto';
import * as zlib from 'zlib';
import { packTar } from '../../libs/tasks/src/__tests__/tar_fixture';
import { folderSnapshot } from '../../libs/training/src/__tests__/folder_snapshot';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'apps/runner/dist/cli.js');
const PLUGIN = path.join(ROOT, 'plugins/example-task-family');
const BUILD = ['libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'libs/training', 'apps/runner', 'plugins/example-task-family'];
const ENV = { ...process.env, LOPT_BACKEND: 'cpu', TF_CPP_MIN_LOG_LEVEL: '2', LOPT_DEBUG: '' };

let tmp: string;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function lopt(args: string[], opts: { timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: ENV, encoding: 'utf8', timeout: opts.timeout ?? 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOk(r: CliResult): void {
  if (r.code !== 0) throw new Error(`lopt exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

function events(logdir: string) {
  const files = listEventFiles(logdir);
  expect(files.length).toBeGreaterThan(0);
  return files.flatMap((f) => readEventFile(f)); // throws on any bad CRC
}

/** outer/loss by step (the last value written for a step wins, as TensorBoard shows it). */
function losses(logdir: string): Map<number, number> {
  const pts = scalarsByTag(events(logdir)).get('outer/loss') ?? [];
  return new Map(pts.map((p) => [p.step, p.value]));
}

function checkpointMeta(logdir: string): Array<{ name: string; step: number }> {
  const dir = path.join(logdir, 'checkpoints');
  return fs
    .readdirSync(dir)
    .filter((n) => /^checkpoint_\d+$/.test(n))
    .map((n) => ({ name: n, step: JSON.parse(fs.readFileSync(path.join(dir, n, 'meta.json'), 'utf8')).step as number }))
    .sort((a, b) => a.step - b.step);
}

beforeAll(() => {
  // Build once (incremental: fast when up to date). A failing build with an existing dist (e.g. a
  // lib mid-edit) only warns, so the binary that exists is tested.
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', ...BUILD], { cwd: ROOT, stdio: 'pipe', timeout: 240_000 });
  } catch (e) {
    const out = `${(e as { stdout?: Buffer }).stdout ?? ''}${(e as { stderr?: Buffer }).stderr ?? ''}`;
    if (!fs.existsSync(CLI)) throw new Error(`build failed and ${CLI} does not exist:\n${out}`);
    console.warn(`tsc -b failed; testing the existing dist:\n${out.slice(0, 2000)}`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-e2e-'));
}, 300_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lopt list', () => {
  test('lists the built-in plugins and experiments', () => {
    const r = lopt(['list']);
    expectOk(r);
    for (const s of ['Experiments (experiment):', 'quadratic-pes', 'seed-single-machine', 'seed-learner-worker', 'MLPLOpt', 'TruncatedPES', 'FixedDimQuadraticFamily']) {
      expect(r.stdout).toContain(s);
    }
    const json = JSON.parse(lopt(['list', 'experiments', '--json']).stdout);
    expect(json.experiment.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['quadratic-pes']));
  });
});

describe('lopt run', () => {
  let straight: string;

  test('quadratic-pes: event files, checkpoints, config and plot', () => {
    straight = path.join(tmp, 'straight');
    const r = lopt(['run', 'quadratic-pes', '--steps', '6', '--backend', 'cpu', '--logdir', straight]);
    expectOk(r);
    expect(r.stdout).toMatch(/final loss:\s+[0-9.]+/);
    expect(r.stdout).toContain('checkpoints');
    expect(r.stdout).toContain('loss.png');

    const cfg = JSON.parse(fs.readFileSync(path.join(straight, 'config.json'), 'utf8'));
    expect(cfg.steps).toBe(6);
    expect(cfg.gradientEstimator.name).toBe('TruncatedPES');

    const ev = events(straight);
    expect(ev[0].file_version).toBe('brain.Event:2');
    const scalars = scalarsByTag(ev);
    const loss = scalars.get('outer/loss')!;
    expect(loss.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5]);
    loss.forEach((p) => expect(Number.isFinite(p.value) && p.value > 0).toBe(true));
    for (const tag of ['perf/steps_per_sec', 'perf/inner_steps_per_sec', 'perf/elapsed_s', 'FixedDimQuadraticFamily/mean_loss']) {
      expect(scalars.get(tag)?.length).toBe(6);
    }
    // extra metrics (withMetrics) on steps 0 and 5 (metricsEvery 5)
    expect(scalars.get('FixedDimQuadraticFamily/grad_norm')?.map((p) => p.step)).toEqual([0, 5]);
    const values = ev.flatMap((e) => (e.summary?.value ?? []).map((v) => ({ ...v, step: e.step })));
    const histos = values.filter((v) => v.histo);
    expect(histos.filter((v) => v.tag === 'theta/all').map((v) => v.step)).toEqual([0, 5]);
    expect(histos.filter((v) => v.tag === 'theta_grad/all').map((v) => v.step)).toEqual([0, 5]);
    const h = histos.find((v) => v.tag === 'theta/all')!.histo!;
    expect(h.num).toBeGreaterThan(100);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(h.num);
    const text = values.find((v) => v.tag === 'config');
    const md = Buffer.from(text!.tensor!.string_val![0]).toString('utf8');
    expect(md).toContain('quadratic-pes');
    expect(md).toContain('```json');

    const metas = checkpointMeta(straight);
    expect(metas[metas.length - 1].step).toBe(6);
    const ck = path.join(straight, 'checkpoints');
    expect(fs.readdirSync(ck).some((n) => /^params_\d+$/.test(n))).toBe(true);
    expect(fs.readdirSync(ck).some((n) => n.startsWith('.tmp-'))).toBe(false);
    const png = fs.readFileSync(path.join(straight, 'loss.png'));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(fs.readFileSync(path.join(straight, 'loss.svg'), 'utf8')).toContain('<svg');
  });

  test('--resume: 3 steps then resume to 6 gives the same losses as 6 straight', () => {
    const dir = path.join(tmp, 'resumed');
    expectOk(lopt(['run', 'quadratic-pes', '--steps', '3', '--backend', 'cpu', '--logdir', dir]));
    expect(checkpointMeta(dir).map((m) => m.step)).toEqual([3]);
    const r = lopt(['run', 'quadratic-pes', '--steps', '6', '--backend', 'cpu', '--logdir', dir, '--resume']);
    expectOk(r);
    expect(r.stderr).toContain('resuming at step 3');
    // the run says which kernels it uses: native where built, else why not
    expect(r.stderr).toMatch(/\[lopt\] native kernels: Core (\((avx512|avx2|base)\)|off: .+); MLPLOpt (\((avx512|avx2|base)\)|off: .+); ImageMLP (\((avx512|avx2|base)\)|off: .+)/);
    const a = losses(straight);
    const b = losses(dir);
    expect([...b.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (let s = 0; s < 6; s++) expect(b.get(s)).toBe(a.get(s));
    expect(listEventFiles(dir).length).toBe(2);
    expect(checkpointMeta(dir).map((m) => m.step)).toEqual([3, 6]);

    // a different config is refused, naming the changed field
    const bad = lopt(['run', 'quadratic-pes', '--steps', '6', '--seed', '7', '--backend', 'cpu', '--logdir', dir, '--resume']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/different config[\s\S]*seed: 0 -> 7/);
    // an existing run is not overwritten without --resume
    const again = lopt(['run', 'quadratic-pes', '--steps', '6', '--backend', 'cpu', '--logdir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--resume');
  });

  test('--resume with a missing or corrupt checkpoint is an error, never a fresh start', () => {
    const missing = path.join(tmp, 'no-such-run');
    const r = lopt(['run', 'quadratic-pes', '--steps', '4', '--logdir', missing, '--resume']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no checkpoint to resume from/);
    expect(fs.existsSync(missing)).toBe(false);

    const dir = path.join(tmp, 'corrupt');
    expectOk(lopt(['run', 'quadratic-pes', '--steps', '2', '--backend', 'cpu', '--logdir', dir]));
    const tree = path.join(dir, 'checkpoints', checkpointMeta(dir)[0].name, 'state.tree');
    const bytes = fs.readFileSync(tree);
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(tree, bytes);
    const c = lopt(['run', 'quadratic-pes', '--steps', '4', '--backend', 'cpu', '--logdir', dir, '--resume']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/corrupt/);
    expect(listEventFiles(dir).length).toBe(1); // nothing new was started
  });

  test.each([
    [['--set', 'gradientEstimator.config.truncLength=-1'], /gradientEstimator\.config\.truncLength/],
    [['--set', 'logging.bogus=1'], /logging\.bogus: unknown field.*allowed fields.*scalarsEvery/],
    [['--set', 'learnedOptimizer.name=NoSuchLOpt'], /learnedOptimizer\.name: unknown learned_optimizer 'NoSuchLOpt' \(allowed: .*MLPLOpt/],
    [['--set', 'mode=cluster'], /mode: "cluster" is not allowed; allowed: single-machine, learner-worker/],
    [['--steps', 'many'], /steps: expected number, got string/],
    [['--set', 'gradientEstimator.config.truncLength=4'], /truncLength \(4\) must be a multiple of stepsPerJit/],
    [['--set', 'tasks.0.name=NoSuchTask'], /tasks\.0\.name: unknown task or task family 'NoSuchTask' \(allowed: .*FixedDimQuadraticFamily/],
    [['--seed', '1e300'], /seed: must be in 0\.\.4294967295 \(PRNGKey keeps the low 32 bits/],
    [['--seed', '4294967296'], /seed: must be in 0\.\.4294967295/],
    [['--set', 'thetaOptimizer.config.learningRate=1e400'], /thetaOptimizer\.config\.learningRate: Infinity is not a finite number/],
    [['--set', 'learnedOptimizer.config.hiddenSize=1000000000'], /needs more memory than this process can allocate .*learnedOptimizer\.config\.hiddenSize/],
    [['--set', 'tasks.0.numTasks=100000000'], /the run's state needs about \d+\.\d GiB, more than this machine's memory allows .*lower tasks\.N\.numTasks/],
    // refused from the family's sizes alone, before a 1e11-d quadratic is sampled (that took minutes)
    [['--set', 'tasks.0.config.dim=100000000000'], /the run's state needs about \d+\.\d GiB, more than this machine's memory allows/],
  ])('rejects %j naming the field, writing nothing', (args, re) => {
    const dir = path.join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = lopt(['run', 'quadratic-pes', ...(args as string[]), '--backend', 'cpu', '--logdir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(re as RegExp);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('on the wasm backend the state is checked against its 4 GiB heap, not only the machine (numTasks=1e6)', () => {
    const dir = path.join(tmp, 'bad-wasm-heap');
    const r = lopt(['run', 'quadratic-pes', '--set', 'tasks.0.numTasks=1000000', '--backend', 'wasm', '--logdir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the run's state needs about \d+\.\d GiB, more than the wasm backend's heap allows \(4\.0 GiB in all\); lower tasks\.N\.numTasks/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('lopt tokenize writes a corpus\'s 32k token-id files with a sentencepiece model; bad input is named', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/golden/sentencepiece.json'), 'utf8'));
    const data = path.join(tmp, 'tokenize-data');
    fs.mkdirSync(path.join(data, 'lm1b'), { recursive: true });
    fs.writeFileSync(path.join(data, 'lm1b', 'train.txt'), `${golden.texts[0].text}\n${golden.texts[1].text}\n`);
    fs.writeFileSync(path.join(data, 'lm1b', 'test.txt'), `${golden.texts[1].text}\n`);
    const model = path.join(ROOT, golden.model);
    const r = lopt(['tokenize', 'lm1b', '--model', model, '--data-dir', data]);
    expectOk(r);
    expect(r.stdout).toMatch(/3 examples in .* s: .*train\.ids, .*test\.ids/);
    expect(fs.readFileSync(path.join(data, 'lm1b', 'train.ids'), 'utf8')).toBe(`${golden.texts[0].ids.join(' ')}\n${golden.texts[1].ids.join(' ')}\n`);
    const bad = lopt(['tokenize', 'fortunes', '--model', model]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown corpus 'fortunes' \(allowed: lm1b, wikipedia_en, tiny_shakespeare\)/);
  });

  test('lopt data lm1b writes the corpus (TFDS order) and its 32k ids from a tarball on disk; lopt data wikipedia_en needs --from', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/golden/sentencepiece.json'), 'utf8'));
    const top = '1-billion-word-language-modeling-benchmark-r13output';
    const archive = path.join(tmp, 'lm1b-fixture.tar.gz');
    fs.writeFileSync(
      archive,
      zlib.gzipSync(
        packTar([
          { name: `${top}/training-monolingual.tokenized.shuffled/news.en-00001-of-00100`, data: 'a b .\nc d .\n', longName: 'gnu' },
          { name: `${top}/heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050`, data: `${golden.texts[1].text}\n`, longName: 'gnu' },
        ]),
      ),
    );
    const data = path.join(tmp, 'data-lm1b');
    const model = path.join(ROOT, golden.model);
    // the fixture is not the real tarball: --no-verify skips the size and sha256 check
    const refused = lopt(['data', 'lm1b', '--archive', archive, '--data-dir', data]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/bytes, not the 1792209805 of the lm1b tarball/);
    const r = lopt(['data', 'lm1b', '--archive', archive, '--no-verify', '--data-dir', data, '--model', model]);
    expectOk(r);
    expect(r.stdout).toMatch(/train: 2 examples in .*lm1b\/train\.txt\ntest: 1 examples in .*lm1b\/test\.txt\n32k: 3 examples in .*train\.ids, .*test\.ids/);
    // md5('train' + 'news.en-00001-of-00100_1') < md5('train' + 'news.en-00001-of-00100_0')
    expect(fs.readFileSync(path.join(data, 'lm1b', 'train.txt'), 'utf8')).toBe('c d .\na b .\n');
    expect(fs.readFileSync(path.join(data, 'lm1b', 'test.ids'), 'utf8')).toBe(`${golden.texts[1].ids.join(' ')}\n`);
    const wiki = lopt(['data', 'wikipedia_en', '--data-dir', data]);
    expect(wiki.code).toBe(1);
    expect(wiki.stderr).toMatch(/--from EXPORT is required: an export of TFDS wikipedia\/20201201\.en/);
    const unknown = lopt(['data', 'c4']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown corpus 'c4' \(allowed: lm1b, wikipedia_en/);
  });

  test('an unknown experiment lists the allowed ones', () => {
    const dir = path.join(tmp, 'bad-experiment');
    const r = lopt(['run', 'quadratic-pe', '--logdir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown experiment 'quadratic-pe'; allowed: .*quadratic-pes/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('--config (YAML) and --set combine; --set wins', () => {
    const dir = path.join(tmp, 'config-file');
    const file = path.join(tmp, 'exp.yaml');
    fs.writeFileSync(file, 'steps: 2\nseed: 5\ngradientEstimator:\n  name: TruncatedPES\n  config: {truncLength: 20}\n');
    expectOk(lopt(['run', 'quadratic-pes', '--config', file, '--set', 'seed=9', '--backend', 'cpu', '--logdir', dir]));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect([cfg.steps, cfg.seed, cfg.gradientEstimator.config.truncLength]).toEqual([2, 9, 20]);
    expect(losses(dir).size).toBe(2);
  });

  test('SIGINT mid-run finishes the step, writes a checkpoint, closes the event file, exits 130', async () => {
    const dir = path.join(tmp, 'sigint');
    const child = spawn(process.execPath, [CLI, 'run', 'quadratic-pes', '--steps', '400', '--backend', 'cpu', '--logdir', dir], {
      cwd: ROOT,
      env: ENV,
    });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && /step \d+\/400/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stdout).toMatch(/stopped by SIGINT after step (\d+) of 400/);
    const stoppedAt = Number(/after step (\d+)/.exec(stdout)![1]);
    const metas = checkpointMeta(dir);
    expect(metas[metas.length - 1].step).toBe(stoppedAt);
    expect(stoppedAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeLessThan(400);
    expect(losses(dir).size).toBe(stoppedAt); // every step's loss made it to the (closed, CRC-valid) file
    expect(fs.existsSync(path.join(dir, 'loss.png'))).toBe(true);
  });
});

describe('resume never lies (issue 20, case 3): every refusal exits 1 and leaves the run folder byte-identical', () => {
  test('edited meta.json fields, fewer --steps than done, another run\'s state, stray folders; a finished run resumed writes nothing', () => {
    const base = ['run', 'quadratic-pes', '--set', 'logging.checkpointEverySteps=2', '--set', 'tasks.0.numTasks=2', '--backend', 'cpu'];
    const dir = path.join(tmp, 'resume-lies');
    expectOk(lopt([...base, '--steps', '4', '--logdir', dir]));
    const newest = new CheckpointManager({ dir }).latest()!.path;
    const metaFile = path.join(newest, 'meta.json');
    const treeFile = path.join(newest, 'state.tree');
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    const ownTree = fs.readFileSync(treeFile);
    const refused = (steps: number, re: RegExp) => {
      const before = folderSnapshot(dir);
      const r = lopt([...base, '--steps', String(steps), '--logdir', dir, '--resume']);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(re) });
      expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
      expect(folderSnapshot(dir)).toBe(before);
    };
    const withMeta = (edit: Record<string, unknown>, steps: number, re: RegExp) => {
      fs.writeFileSync(metaFile, JSON.stringify({ ...meta, ...edit }));
      refused(steps, re);
      fs.writeFileSync(metaFile, JSON.stringify(meta));
    };
    withMeta({ step: 1000 }, 6, /it is at step 1000, past steps=6; resume with --steps 1000 or more/);
    refused(2, /it is at step 4, past steps=2; resume with --steps 4 or more/);
    withMeta({ rngKey: [1, 2] }, 6, /its rngKey \[1,2\] is not the key \[\d+,\d+\] this config derives for step 4/);
    withMeta({ step: -1 }, 6, /meta\.json step is -1 \(a non-negative integer expected\)/);
    withMeta({ step: 5.5 }, 6, /meta\.json step is 5\.5 \(a non-negative integer expected\)/);
    withMeta({ elapsedTime: 'abc' }, 6, /meta\.json elapsedTime is "abc" \(a non-negative number of seconds expected\)/);
    // a state.tree from another run (4 tasks where this config builds 2), its checksum made to match
    const other = path.join(tmp, 'resume-lies-other');
    expectOk(lopt(['run', 'quadratic-pes', '--steps', '1', '--backend', 'cpu', '--logdir', other]));
    const otherTree = fs.readFileSync(path.join(new CheckpointManager({ dir: other }).latest()!.path, 'state.tree'));
    fs.writeFileSync(treeFile, otherTree);
    withMeta({ file: { ...meta.file, bytes: otherTree.length, sha256: createHash('sha256').update(otherTree).digest('hex') } }, 6, /its state is not what this config builds \(another experiment's checkpoint\?\)/);
    fs.writeFileSync(treeFile, ownTree);
    // a finished run resumed with the same steps: exit 0, nothing written
    const before = folderSnapshot(dir);
    const same = lopt([...base, '--steps', '4', '--logdir', dir, '--resume']);
    expectOk(same);
    expect(same.stderr).toContain('already at step 4 of 4: nothing to do, nothing written');
    expect(folderSnapshot(dir)).toBe(before);
    // stray names are not checkpoints: the resume continues from the real newest one
    fs.mkdirSync(path.join(dir, 'checkpoints', 'checkpoint_99999999999999999999'));
    fs.cpSync(path.join(dir, 'checkpoints', 'checkpoint_0'), path.join(dir, 'checkpoints', 'checkpoint_0009'), { recursive: true });
    const on = lopt([...base, '--steps', '6', '--logdir', dir, '--resume']);
    expectOk(on);
    expect(on.stderr).toContain('resuming at step 4 of 6');
    const ck = new CheckpointManager({ dir });
    expect(ck.indices().map((i) => JSON.parse(fs.readFileSync(path.join(ck.dir, `checkpoint_${i}`, 'meta.json'), 'utf8')).step)).toEqual([2, 4, 6]);
  });
});

describe('durability (issue 20, case 4)', () => {
  test('SIGKILL the moment a checkpoint appears: the records of every step before it are on disk; the resumed run\'s TensorBoard view is the straight run\'s', async () => {
    // (24 steps: a killed run is far from its end when its first checkpoints appear)
    const args = ['run', 'quadratic-pes', '--steps', '24', '--set', 'logging.checkpointEverySteps=3', '--set', 'tasks.0.numTasks=2', '--backend', 'cpu'];
    const straight = path.join(tmp, 'durable-straight');
    expectOk(lopt([...args, '--logdir', straight]));
    const dir = path.join(tmp, 'durable-killed');
    const ck = new CheckpointManager({ dir });
    // killed twice, each time as soon as a new checkpoint is visible (before the run's next flush)
    for (let kill = 0; kill < 2; kill++) {
      const had = ck.indices().length;
      const child = spawn(process.execPath, [CLI, ...args, '--logdir', dir, ...(had ? ['--resume'] : [])], { cwd: ROOT, env: ENV, stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      while (child.exitCode === null && ck.indices().length <= had) await new Promise((r) => setTimeout(r, 1));
      child.kill('SIGKILL');
      await exited;
      const newest = JSON.parse(fs.readFileSync(path.join(ck.dir, `checkpoint_${ck.indices().at(-1)}`, 'meta.json'), 'utf8')).step as number;
      const logged = new Set(scalarsByTag(events(dir)).get('outer/loss')!.map((p) => p.step));
      for (let s = 0; s < newest; s++) expect(logged.has(s)).toBe(true);
    }
    expectOk(lopt([...args, '--logdir', dir, '--resume']));
    // SessionLog.START at each resumed step drops what a killed process logged past its checkpoint
    const starts = events(dir).filter((e) => e.session_log?.status === 1).map((e) => e.step);
    expect(starts.length).toBe(2);
    const view = scalarsByTag(events(dir)).get('outer/loss')!;
    expect(view.map((p) => p.step)).toEqual([...Array(24).keys()]);
    expect(view.map((p) => p.value)).toEqual([...losses(straight).values()]);
  });
});

describe('divergence is never hidden', () => {
  test('a diverging run shows the real loss, warns at its first non-finite step, stops after maxNonFiniteSteps with exit 1, and keeps a finite newest checkpoint', async () => {
    const dir = path.join(tmp, 'diverge');
    const r = lopt(['run', 'quadratic-pes', '--steps', '60', '--set', 'thetaOptimizer.config.learningRate=1e6', '--set', 'maxNonFiniteSteps=8', '--set', 'logging.checkpointEverySteps=2', '--backend', 'cpu', '--logdir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/warning: step \d+ is not finite: mean meta-loss NaN \(used as 20\), \d+ of \d+ meta-gradient elements non-finite/);
    expect(r.stderr).toMatch(/loss 20\.0000\s+raw NaN/);
    expect(r.stderr).toMatch(/the run diverged: every meta-gradient element was non-finite for 8 consecutive outer steps/);
    // TensorBoard shows the real mean loss beside the clipped one
    const s = scalarsByTag(events(dir));
    const clipped = s.get('outer/loss')!.filter((p) => p.value === 20).map((p) => p.step);
    expect(clipped.length).toBeGreaterThanOrEqual(8);
    const raw = new Map(s.get('outer/raw_loss')!.map((p) => [p.step, p.value]));
    for (const step of clipped) expect(raw.get(step)).toBeNaN();
    // the newest checkpoint's θ is finite
    const ck = new CheckpointManager({ dir });
    const restored = await ck.restoreLatest<any>();
    expect(restored).not.toBeNull();
    const theta = restored!.state.learnerState.thetaOptState.params;
    for (const leaf of treeLeaves<tf.Tensor>(theta)) expect(tf.all(tf.isFinite(leaf)).dataSync()[0]).toBe(1);
    treeDispose(restored!.state);
  });

  test('lopt eval refuses a θ that is not finite, naming the leaf', async () => {
    const file = path.join(tmp, 'nan-theta.tree');
    const theta = new MLPLOpt().init(random.PRNGKey(0)) as any;
    const bad = { ...theta, 'mlp/~/linear_2': { ...theta['mlp/~/linear_2'], b: tf.tensor([NaN, 0]) } };
    await saveTree(file, bad);
    const r = lopt(['eval', '--params', file, '--task', 'QuadraticTask', '--steps', '3', '--seeds', '1', '--out', path.join(tmp, 'nan-eval'), '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/θ is not finite \(NaN or Inf in mlp\/~\/linear_2\/b\)/);
    treeDispose([theta, bad]);
  });
});

describe('plugins', () => {
  test('a plugin package from plugins/ shows in list and runs', () => {
    const l = lopt(['list', 'task-families', '--plugin', PLUGIN]);
    expectOk(l);
    expect(l.stdout).toContain('LinearRegressionFamily');
    expect(lopt(['list', 'task_family']).stdout).not.toContain('LinearRegressionFamily');

    const dir = path.join(tmp, 'plugin-run');
    const r = lopt(['run', 'quadratic-pes', '--plugin', PLUGIN, '--set', 'tasks.0.name=LinearRegressionFamily', '--steps', '3', '--backend', 'cpu', '--logdir', dir]);
    expectOk(r);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.tasks[0].name).toBe('LinearRegressionFamily');
    const s = scalarsByTag(events(dir));
    expect(s.get('outer/loss')?.length).toBe(3);
    expect(s.get('LinearRegressionFamily/mean_loss')?.length).toBe(3);
  });
});
