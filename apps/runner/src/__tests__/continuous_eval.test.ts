/**
 * `lopt run --eval` (continuous evaluation beside training, one eval worker thread): the chief writes
 * one TensorBoard event per checkpoint at the checkpoint's outer step, under the reference's tags,
 * whose values equal `lopt eval` on the same checkpoint and seeds; real TensorBoard reads the file
 * (when the reference harness is installed). Then the chief is killed (SIGKILL, a child process) at
 * a random point of a second run and resumed: no checkpoint's result is lost or written twice.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { listEventFiles, readEventFile, scalarsByTag } from '@lopt/training';
import { main } from '../cli';
import { runEval } from '../eval/evaluate';
import { tsBootstrap } from '../../../../libs/training/src/parallel/threaded_pes';
import { sink } from './support/sink';

const root = path.resolve(__dirname, '../../../..');
const HARNESS_PY = '/root/.cache/lopt-reference/venv/bin/python';
const TB_READ = path.resolve(root, '../shared/reference-harness/tb_read.py');
const SEEDS = 2;
const INNER = 12;
const EVAL = { tasks: [{ name: 'FixedDimQuadraticFamily', config: { dim: 4 } }], seeds: SEEDS, steps: INNER, evalEvery: 4, evalBatches: 2, lastEvalBatches: 3, skipCheckpointsIfBusy: false, pollSeconds: 0.2 };
const runArgs = (logdir: string, steps: number) => [
  'run', 'quadratic-pes', '--steps', String(steps), '--logdir', logdir, '--backend', 'cpu', '--eval',
  '--set', 'logging.checkpointEverySteps=2', '--set', 'truncationSchedule.config.maxLength=25', '--set', `eval=${JSON.stringify(EVAL)}`,
];


let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-ceval-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every scalar of the chief's results, by tag, and the steps of the params checkpoints. */
function results(logdir: string) {
  const files = listEventFiles(path.join(logdir, 'eval_chief', 'results'));
  expect(files).toHaveLength(1);
  return scalarsByTag(readEventFile(files[0]));
}

function paramsSteps(logdir: string): Map<number, number> {
  const ck = path.join(logdir, 'checkpoints');
  const out = new Map<number, number>();
  for (const n of fs.readdirSync(ck).filter((x) => /^params_\d+$/.test(x))) {
    out.set(Number(n.split('_')[1]), JSON.parse(fs.readFileSync(path.join(ck, n, 'meta.json'), 'utf8')).step);
  }
  return out;
}

test('lopt run --eval writes eval curves at every checkpoint, equal to lopt eval on the same checkpoint and seeds', async () => {
  const logdir = path.join(dir, 'run');
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'lopt', ...runArgs(logdir, 4)], { registry, stdout, stderr });
  expect(stderr.text()).not.toMatch(/error/i);
  expect(code).toBe(0);

  const steps = paramsSteps(logdir); // params_0 at step 2, params_1 at step 4
  expect([...steps.values()]).toEqual([2, 4]);
  const byTag = results(logdir);
  for (const tag of ['train/nonorm_last_loss', 'train/nonorm_avg_loss', 'train/nonorm_min_loss', 'train/norm_last_loss', 'train/norm_avg_loss', 'outer_valid/nonorm_last_loss', 'checkpoint', 'FixedDimQuadraticFamily__0/nonorm_last_loss', 'FixedDimQuadraticFamily__1/norm_avg_loss', 'FixedDimQuadraticFamily__1/time']) {
    expect(byTag.get(`eval_chief/${tag}`)?.map((p) => p.step)).toEqual([2, 4]);
  }
  expect(byTag.get('eval_chief/checkpoint')!.map((p) => p.value)).toEqual([0, 1]);

  // lopt eval on params_1 with the same task, steps and seeds
  const rep = await runEval({
    paramsPath: path.join(logdir, 'checkpoints', 'params_1'), task: 'FixedDimQuadraticFamily', taskConfig: { dim: 4 }, steps: INNER, baselines: [],
    seeds: SEEDS, seed: 0, out: path.join(dir, 'eval-out'), evalEvery: 4, evalBatches: 2, lastEvalBatches: 3, registry,
  });
  const r = rep.results[0];
  const at4 = (tag: string) => byTag.get(`eval_chief/${tag}`)!.find((p) => p.step === 4)!.value;
  for (let k = 0; k < SEEDS; k++) {
    expect(at4(`FixedDimQuadraticFamily__${k}/nonorm_last_loss`)).toBe(Math.fround(r.final.train.perSeed[k]));
    expect(at4(`FixedDimQuadraticFamily__${k}/nonorm_avg_loss`)).toBe(Math.fround(r.mean.train.perSeed[k]));
  }
  expect(at4('train/nonorm_last_loss')).toBe(Math.fround(r.final.train.mean));
  expect(at4('train/nonorm_avg_loss')).toBe(Math.fround(r.mean.train.mean));
  expect(at4('outer_valid/nonorm_last_loss')).toBe(Math.fround(r.final.outer_valid.mean));
  expect(fs.existsSync(path.join(logdir, 'eval_chief', 'eval.png'))).toBe(true);
  // the chief's copies of the checkpoints are gone once evaluated
  expect(fs.readdirSync(path.join(logdir, 'eval_chief')).filter((n) => n.startsWith('params_'))).toEqual([]);

  // real TensorBoard
  if (!fs.existsSync(HARNESS_PY) || !fs.existsSync(TB_READ)) {
    console.warn(`skipping the real-TensorBoard check: the reference harness (${HARNESS_PY}, ${TB_READ}) is not installed`);
    return;
  }
  const json = path.join(dir, 'tb.json');
  const tb = spawnSync(HARNESS_PY, [TB_READ, path.join(logdir, 'eval_chief', 'results'), '--json', json, '--quiet'], { encoding: 'utf8' });
  expect(tb.stderr + tb.stdout).not.toMatch(/Traceback/);
  expect(tb.status).toBe(0);
  const text = fs.readFileSync(json, 'utf8');
  expect(text).toContain('eval_chief/train/nonorm_last_loss');
  expect(text).toContain('eval_chief/FixedDimQuadraticFamily__1/nonorm_last_loss');
});

/** `lopt run --eval` from its TypeScript sources in a child process, so that it can be SIGKILLed. */
function spawnRun(logdir: string, steps: number) {
  const cliTs = path.join(root, 'apps/runner/src/cli.ts');
  const boot = `process.argv = [process.argv[0], 'lopt', ...JSON.parse(process.env.LOPT_TEST_ARGS)]; \n` + tsBootstrap(cliTs, root).replace(
    `require(${JSON.stringify(cliTs)});`,
    `require(${JSON.stringify(cliTs)}).main().then((c) => { process.exitCode = c; });`,
  );
  const child = spawn(process.execPath, ['-e', boot], {
    cwd: root,
    env: { ...process.env, LOPT_TEST_ARGS: JSON.stringify(runArgs(logdir, steps)), LOPT_QUIET: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const out = { child, err: '', exited: new Promise<void>((resolve) => child.on('exit', () => resolve())) };
  child.stderr!.on('data', (d) => (out.err += d));
  return out;
}

/** Resumes the run in this process, then checks that every checkpoint it took was written exactly once. */
async function resumeAndCheck(logdir: string, steps: number) {
  const state = path.join(logdir, 'eval_chief', 'eval_chief_state.json');
  const stderr = sink();
  const code = await main(['node', 'lopt', ...runArgs(logdir, steps), '--resume'], { registry, stdout: sink(), stderr });
  expect(stderr.text()).not.toMatch(/error/i);
  expect(code).toBe(0);

  const st = JSON.parse(fs.readFileSync(state, 'utf8'));
  const byTag = results(logdir);
  const written = byTag.get('eval_chief/checkpoint')!.map((p) => p.value);
  // every params_<n> the run wrote was evaluated (skipCheckpointsIfBusy: false) and written once
  const lastIndex = st.lastIndex as number;
  expect(lastIndex).toBe(Math.max(...paramsSteps(logdir).keys()));
  expect(written.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: lastIndex + 1 }, (_, i) => i).filter((i) => !st.skipped.includes(i)));
  expect(new Set(written).size).toBe(written.length);
  expect(st.written.map((g: { index: number }) => g.index).sort()).toEqual(written.slice().sort());
  expect(st.groups).toEqual([]);
  // the steps are the checkpoints' outer steps, one event each per tag
  for (const pts of byTag.values()) expect(new Set(pts.map((p) => p.step)).size).toBe(pts.length);
  expect(byTag.get('eval_chief/train/nonorm_last_loss')!.length).toBe(written.length);
}

test('killing lopt run --eval at a random point and resuming loses no evaluation result and writes none twice', async () => {
  const logdir = path.join(dir, 'killed');
  const stepsTotal = 8;
  const run = spawnRun(logdir, stepsTotal);
  const { child, exited } = run;
  // wait for the chief to exist, then kill at a random moment of its work
  const state = path.join(logdir, 'eval_chief', 'eval_chief_state.json');
  const t0 = Date.now();
  const firstParams = path.join(logdir, 'checkpoints', 'params_0');
  while (!(fs.existsSync(state) && fs.existsSync(firstParams)) && Date.now() - t0 < 180000) await new Promise((r) => setTimeout(r, 100));
  expect(fs.existsSync(firstParams)).toBe(true);
  await new Promise((r) => setTimeout(r, 500 + Math.floor(Math.random() * 4000)));
  const before = JSON.parse(fs.readFileSync(state, 'utf8'));
  child.kill('SIGKILL');
  await exited;
  if (process.env.LOPT_CEVAL_DEBUG) console.log('killed with', before.written.length, 'written', before.groups.length, 'groups', before.lastIndex, 'lastIndex', run.err);
  expect(run.err).not.toMatch(/lopt: error/);
  // resume: training continues from its newest checkpoint, the chief from its state file
  await resumeAndCheck(logdir, stepsTotal);
}, 600000);

test('a run killed after its last step, while its checkpoints are evaluated, resumed with the same --steps still writes them all', async () => {
  const logdir = path.join(dir, 'killed-at-end');
  const stepsTotal = 4;
  const run = spawnRun(logdir, stepsTotal);
  // the final checkpoint is on disk: training is over, its evaluation has hardly begun
  const t0 = Date.now();
  const ck = path.join(logdir, 'checkpoints');
  const atEnd = () => fs.existsSync(ck) && [...paramsSteps(logdir).values()].includes(stepsTotal);
  while (!atEnd() && Date.now() - t0 < 180000) await new Promise((r) => setTimeout(r, 50));
  expect(atEnd()).toBe(true);
  run.child.kill('SIGKILL');
  await run.exited;
  expect(run.err).not.toMatch(/lopt: error/);
  const st = JSON.parse(fs.readFileSync(path.join(logdir, 'eval_chief', 'eval_chief_state.json'), 'utf8'));
  expect(st.written.length).toBeLessThan(Math.max(...paramsSteps(logdir).keys()) + 1);
  // train() has nothing left to do; the chief must still finish what the killed run owed
  await resumeAndCheck(logdir, stepsTotal);
}, 600000);
