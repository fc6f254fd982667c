/**
 * Continuous evaluation (continuous_eval/): the `eval:` config section and its errors, the
 * evaluation set, the reference's metrics on known curves, the chief's state across restarts
 * (a torn TensorBoard record, a group written to the state but not yet to TensorBoard, a worker
 * that comes back or never does), and an eval worker thread killed mid-job whose job is redone
 * with the same numbers as `lopt eval`'s core.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { random, registry, treeDispose } from '@lopt/core';
import { MLPLOpt } from '@lopt/optimizers';
import { CheckpointManager } from '../checkpoints';
import { resolveRunConfig, resumeHash } from '..';
import { listEventFiles, readEventFile, scalarsByTag } from '../tensorboard';
import { ContinuousEvalSchema, evaluationSet } from '../continuous_eval/evaluation_set';
import { evalMetrics, type EvalJobResult } from '../continuous_eval/metrics';
import { EvalChief } from '../continuous_eval/chief';
import { ContinuousEval } from '../continuous_eval/single_machine';
import { EvalJobRunner } from '../continuous_eval/worker';
import { hostEvalChief, runEvalWorker, type EvalResultRequest, type EvalWorkRequest } from '../continuous_eval/remote';
import { makeEvalTask, seedTrainingCurves } from '../evaluation';

const made: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-ceval-'));
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('eval: config section', () => {
  it('validates with errors that name the field and the allowed values', () => {
    const bad = (set: string[]) => () => resolveRunConfig(registry, 'quadratic-pes', { set });
    expect(bad(['eval={"tasks":[{"name":"Nope"}]}'])).toThrow(/eval\.tasks\.0\.name: unknown task or task family 'Nope' \(allowed: .*QuadraticTask/);
    expect(bad(['eval={"seeds":0}'])).toThrow(/eval\.seeds/);
    expect(bad(['eval={"seed":2}'])).toThrow(/eval\.seed: unknown field \(did you mean 'seeds'\?\)/);
    expect(bad(['eval={"tasks":[{"name":"FixedDimQuadraticFamily","config":{"dimm":3}}]}'])).toThrow(/eval\.tasks\.0\.config/);
    expect(bad(['eval={"chiefName":"a/b"}'])).toThrow(/chiefName/);
  });

  it('defaults to the reference evaluation set over the experiment tasks: task x seed jobs named <task>__<t>', () => {
    const cfg = resolveRunConfig(registry, 'seed-single-machine', { set: ['eval={"seeds":2,"steps":30,"seedOffset":5}'] });
    const set = evaluationSet(cfg.eval!, cfg.tasks);
    expect(set.map((t) => [t.name, t.seed, t.steps])).toEqual([
      ['FixedDimQuadraticFamily__0', 5, 30],
      ['FixedDimQuadraticFamily__1', 6, 30],
      ['ImageMLP_FashionMnist8_Relu32__0', 5, 30],
      ['ImageMLP_FashionMnist8_Relu32__1', 6, 30],
    ]);
    expect(ContinuousEvalSchema.parse({})).toMatchObject({ chiefName: 'eval_chief', seeds: 5, steps: 1000, skipCheckpointsIfBusy: true, pollSeconds: 10 });
    // adding or changing eval: does not change what --resume checks
    const plain = resolveRunConfig(registry, 'quadratic-pes');
    expect(plain.eval).toBeUndefined();
    expect(resumeHash(resolveRunConfig(registry, 'quadratic-pes', { set: ['eval.seeds=3'] }))).toBe(resumeHash(plain));
  });
});

const res = (loss: number[], norm: number[], extra: Record<string, number[]> = {}): EvalJobResult => ({
  step: 7,
  totalTime: 1.5,
  curves: { 'eval/xs': loss.map((_, i) => i), 'eval/train/loss': loss, 'eval/train/loss_normalized': norm, ...extra },
});

describe('evalMetrics', () => {
  it("equals the reference chief's DEFAULT_METRICS_FN on the same curves (test/golden/continuous_eval_metrics.json)", () => {
    const g = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../../test/golden/continuous_eval_metrics.json'), 'utf8'));
    // the reference's curve names -> singleTaskTrainingCurves' (norm_loss -> loss_normalized, aux/<k> -> <k>)
    const rename = (k: string) => k.replace(/\/norm_loss$/, '/loss_normalized').replace(/\/aux\//, '/');
    const jobs = g.jobs as Array<{ name: string; total_time: number; curves: Record<string, number[]> }>;
    const tasks = jobs.map((j) => ({ name: j.name, task: 'QuadraticTask', taskConfig: {}, seed: 0, steps: 30, evalBatches: 1, lastEvalBatches: 1 }));
    const results = jobs.map((j) => ({ step: 40, totalTime: j.total_time, curves: Object.fromEntries(Object.entries(j.curves).map(([k, v]) => [rename(k), v])) }));
    const m = evalMetrics(g.checkpoint, tasks, results);
    expect(Object.keys(m).sort()).toEqual(Object.keys(g.metrics).sort());
    for (const [k, v] of Object.entries(g.metrics as Record<string, number>)) expect(m[k]).toBeCloseTo(v, 12);
  });


  it('computes the reference metrics (mean / nanmin / last per task, mean over jobs, aux, time, checkpoint)', () => {
    const tasks = evaluationSet(ContinuousEvalSchema.parse({ tasks: [{ name: 'QuadraticTask' }], seeds: 2 }));
    const m = evalMetrics(3, tasks, [
      res([4, 2, 3], [0.4, 0.2, 0.3], { 'eval/train/acc': [0.1, 0.5, 0.3] }),
      res([6, NaN, 1], [0.6, NaN, 0.1], { 'eval/train/acc': [0.2, 0.4, 0.6] }),
    ]);
    expect(m['QuadraticTask__0/nonorm_avg_loss']).toBeCloseTo(3, 12);
    expect(m['QuadraticTask__0/nonorm_min_loss']).toBe(2);
    expect(m['QuadraticTask__0/nonorm_last_loss']).toBe(3);
    expect(m['QuadraticTask__1/nonorm_avg_loss']).toBeNaN(); // onp.mean, as the reference
    expect(m['QuadraticTask__1/nonorm_min_loss']).toBe(1); // nanmin
    expect(m['train/nonorm_avg_loss']).toBeCloseTo((3 + 3.5) / 2, 12); // mean of nanmeans
    expect(m['train/nonorm_min_loss']).toBeCloseTo(1.5, 12);
    expect(m['train/nonorm_last_loss']).toBeCloseTo(2, 12);
    expect(m['train/norm_last_loss']).toBeCloseTo(0.2, 12);
    expect(m['aux_last/train/acc']).toBeCloseTo(0.45, 12);
    expect(m['aux_min/train/acc']).toBeCloseTo(0.15, 12);
    expect(m['QuadraticTask__1/time']).toBe(1.5);
    expect(m.checkpoint).toBe(3);
    expect(Object.keys(m).some((k) => k.startsWith('outer_valid/'))).toBe(false); // not evaluated
  });
});

/** A run directory with params_<n> checkpoints of an MLPLOpt θ at the given outer steps. */
async function fakeRun(steps: number[]): Promise<string> {
  const dir = tmp();
  const ck = new CheckpointManager({ dir, keep: 10 });
  for (const s of steps) {
    const theta = new MLPLOpt().init(random.PRNGKey(s));
    await ck.saveNow({ step: s, state: { theta }, theta });
    treeDispose(theta);
  }
  return dir;
}

const LOPT = { name: 'MLPLOpt', config: {} };

describe('EvalChief', () => {
  it('resumes after kills at any point: a held job, a torn record, a group in the state but not in TensorBoard', async () => {
    const logdir = await fakeRun([10]);
    const config = ContinuousEvalSchema.parse({ tasks: [{ name: 'QuadraticTask' }], seeds: 2, steps: 5 });
    const set = evaluationSet(config);
    const open = () => EvalChief.open({ logdir, config, evaluationSet: set, learnedOptimizer: LOPT });
    let chief = await open();
    expect(await chief.poll()).toBe(0);
    expect(await chief.poll()).toBeNull(); // nothing newer
    const j0 = (await chief.getWork('w0'))!;
    const j1 = (await chief.getWork('w1'))!;
    expect([j0.id, j1.id]).toEqual(['0/0', '0/1']);
    expect(fs.existsSync(j0.paramsPath)).toBe(true);

    // "kill" (leaving a half-written state temporary): a new chief from the state file; w0 comes back and gets its job again
    const leftover = path.join(chief.dir, '.eval_chief_state.json.tmp-1-abcdef');
    fs.writeFileSync(leftover, '{"trunc');
    chief = await open();
    expect(fs.existsSync(leftover)).toBe(false);
    expect((await chief.getWork('w0'))!.id).toBe('0/0');
    expect(await chief.finishWork('w0', '0/0', res([2, 1], [2, 1]))).toBe(true);
    expect(await chief.finishWork('w0', '0/0', res([9, 9], [9, 9]))).toBe(false); // a duplicate is ignored
    // w1 never comes back: its job is queued again and done by w2
    await chief.releaseWorker('w1');
    expect((await chief.getWork('w2'))!.id).toBe('0/1');
    await chief.finishWork('w2', '0/1', res([3, 2], [3, 2]));
    expect(chief.written.map((g) => [g.index, g.step])).toEqual([[0, 10]]);
    expect(fs.existsSync(j0.paramsPath)).toBe(false); // the copy is removed once written

    const file = chief.resultsFile;
    const count = () => scalarsByTag(readEventFile(file)).get('eval_chief/train/nonorm_last_loss')?.map((p) => [p.step, p.value]) ?? [];
    expect(count()).toEqual([[10, 1.5]]);
    // a kill in the middle of appending the group's record: the torn tail is cut and the group written again
    const full = fs.readFileSync(file);
    fs.writeFileSync(file, full.subarray(0, full.length - 7));
    chief = await open();
    expect(count()).toEqual([[10, 1.5]]);
    expect(fs.readFileSync(file)).toHaveLength(full.length);
    // a kill after the state said "written" but before the append: the restart appends it, once
    const header = readEventFile(file).length;
    expect(header).toBe(2);
    fs.truncateSync(file, firstRecordLength(full)); // the header only
    chief = await open();
    expect(count()).toEqual([[10, 1.5]]);
    chief = await open(); // and a clean restart writes nothing more
    expect(count()).toEqual([[10, 1.5]]);
    expect(listEventFiles(path.dirname(file))).toHaveLength(1);
  });

  it('skips a checkpoint while workers are busy (skipCheckpointsIfBusy) but always takes it when forced', async () => {
    const logdir = await fakeRun([1]);
    const config = ContinuousEvalSchema.parse({ tasks: [{ name: 'QuadraticTask' }], seeds: 1, steps: 5, numWorkers: 1 });
    const chief = await EvalChief.open({ logdir, config, evaluationSet: evaluationSet(config), learnedOptimizer: LOPT });
    expect(await chief.poll()).toBe(0);
    await chief.getWork('w0');
    const ck = new CheckpointManager({ dir: logdir, keep: 10 });
    for (const s of [2, 3]) {
      const theta = new MLPLOpt().init(random.PRNGKey(s));
      await ck.saveNow({ step: s, state: { theta }, theta });
      treeDispose(theta);
      if (s === 2) expect(await chief.poll()).toBeNull();
    }
    expect(chief.skipped).toEqual([1]);
    expect(await chief.poll({ force: true })).toBe(2);
  });
});

/** Bytes of the first record (the file_version header) of an event file. */
function firstRecordLength(buf: Buffer): number {
  return 12 + Number(buf.readBigUInt64LE(0)) + 4;
}

describe('ContinuousEval (worker threads)', () => {
  it('redoes the job of a worker thread that dies, with the same numbers as lopt eval', async () => {
    const logdir = await fakeRun([4]);
    const run = resolveRunConfig(registry, 'quadratic-pes', {
      set: ['eval={"tasks":[{"name":"FixedDimQuadraticFamily","config":{"dim":4}}],"seeds":1,"steps":300,"evalEvery":50,"evalBatches":2,"lastEvalBatches":2,"pollSeconds":60}'],
    });
    const seen: number[] = [];
    const ce = await ContinuousEval.start({ logdir, config: run, backend: 'cpu', onWritten: (g) => seen.push(g.step) });
    try {
      await ce.onCheckpoint();
      // wait until the thread holds the job, then kill it
      const t0 = Date.now();
      while (!ce.slots[0].job && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 20));
      expect(ce.slots[0].job?.id).toBe('0/0');
      await ce.slots[0].worker!.terminate();
      await ce.finish();
    } finally {
      await ce.close();
    }
    expect(ce.chief.written.map((g) => g.index)).toEqual([0]);
    expect(seen).toEqual([4]);
    const m = ce.chief.written[0].metrics;
    // lopt eval's core, in this thread, on the same checkpoint and seed
    const loaded = await new CheckpointManager({ dir: logdir }).loadParams(0);
    const task = makeEvalTask(registry, 'FixedDimQuadraticFamily', { dim: 4 });
    const c = await seedTrainingCurves(task.task, new MLPLOpt().optFn(loaded.theta as never), 300, 0, { evalEvery: 50, evalBatches: 2, lastEvalBatches: 2 });
    treeDispose(loaded.theta);
    const train = c['eval/train/loss'];
    expect(m['FixedDimQuadraticFamily__0/nonorm_last_loss']).toBe(train[train.length - 1]);
    // the same job through EvalJobRunner in this thread gives the same curves too
    const runner = new EvalJobRunner(registry);
    const ck = path.join(logdir, 'checkpoints', 'params_0');
    const r = await runner.run({ id: '0/0', group: 0, taskIndex: 0, task: evaluationSet(run.eval!, run.tasks)[0], step: 4, paramsPath: ck, learnedOptimizer: LOPT });
    runner.dispose();
    expect(r.curves['eval/train/loss']).toEqual(train);
    expect(r.step).toBe(4);
  });
});

test('an eval worker thread that cannot start is an error, not an endless restart', async () => {
  const logdir = await fakeRun([1]);
  const run = resolveRunConfig(registry, 'quadratic-pes', { set: ['eval={"tasks":[{"name":"QuadraticTask"}],"seeds":1,"steps":5,"pollSeconds":60}'] });
  const ce = await ContinuousEval.start({ logdir, config: run, backend: 'cpu', plugins: [path.join(logdir, 'no-such-plugin')] });
  try {
    await expect(ce.finish()).rejects.toThrow(/thread-0 failed to start 3 times: .*no-such-plugin/);
  } finally {
    await ce.close();
  }
});

describe('jobs held by workers of an earlier process', () => {
  const EVAL1 = '{"tasks":[{"name":"QuadraticTask"}],"seeds":1,"steps":5,"pollSeconds":60}';

  it('lopt run --eval with fewer threads than before: the missing thread\'s job goes back to the queue', async () => {
    const logdir = await fakeRun([2]);
    const run = resolveRunConfig(registry, 'quadratic-pes', { set: [`eval=${EVAL1}`] });
    const before = await EvalChief.open({ logdir, config: run.eval!, evaluationSet: evaluationSet(run.eval!, run.tasks), learnedOptimizer: LOPT });
    await before.poll();
    expect((await before.getWork('thread-3'))?.id).toBe('0/0'); // then that process is killed
    const ce = await ContinuousEval.start({ logdir, config: run, backend: 'cpu' });
    try {
      await ce.finish();
    } finally {
      await ce.close();
    }
    expect(ce.chief.written.map((g) => g.index)).toEqual([0]);
  });

  it('a hosted chief whose jobs nobody takes says so, naming the command, until a worker calls', async () => {
    const logdir = await fakeRun([2]);
    const run = resolveRunConfig(registry, 'quadratic-pes', { set: ['eval={"tasks":[{"name":"QuadraticTask"}],"seeds":1,"steps":5,"pollSeconds":0.05}'] });
    let t = 1000000;
    const lines: string[] = [];
    const hosted = await hostEvalChief({ logdir, config: run, idleWarningSeconds: 60, now: () => t, log: (l) => lines.push(l) });
    const warnings = () => lines.filter((l) => l.includes('no eval worker has asked for work'));
    const tick = () => new Promise((r) => setTimeout(r, 150));
    try {
      await hosted.poll(true);
      await tick();
      expect(warnings()).toEqual([]); // not yet a minute
      t += 61000;
      await tick();
      expect(warnings()).toEqual(['[eval chief] 1 evaluation job waiting, and no eval worker has asked for work for 61 s: start one with `lopt eval-worker --learner HOST:PORT` (this learner\'s address)']);
      await tick();
      expect(warnings()).toHaveLength(1); // once a minute, not every poll
      await hosted.service.getEvalWork({ workerId: 'w' } as EvalWorkRequest, {}); // a worker calls (and takes the job)
      t += 61000;
      await tick();
      expect(warnings()).toHaveLength(1); // nothing waits now
    } finally {
      await hosted.close();
    }
  });

  it('a restarted learner gives the workers that held jobs a lease: a job of one that never comes back is redone', async () => {
    const logdir = await fakeRun([2]);
    const run = resolveRunConfig(registry, 'quadratic-pes', { set: [`eval=${EVAL1}`] });
    const before = await EvalChief.open({ logdir, config: run.eval!, evaluationSet: evaluationSet(run.eval!, run.tasks), learnedOptimizer: LOPT });
    await before.poll();
    expect((await before.getWork('gone'))?.id).toBe('0/0');
    const hosted = await hostEvalChief({ logdir, config: run, leaseSeconds: 0.3 });
    const s = hosted.service;
    const client = { address: 'in-process', getEvalWork: (r: EvalWorkRequest) => s.getEvalWork(r, {}), putEvalResult: (r: EvalResultRequest) => s.putEvalResult(r, {}), close: () => undefined };
    const worker = runEvalWorker({ client, workerId: 'new', registry, idleSeconds: 0.1 });
    await hosted.finish();
    expect(await worker).toEqual({ jobs: 1 });
    await hosted.close();
    expect(s.chief.written.map((g) => g.index)).toEqual([0]);
  });
});
