/**
 * Distributed continuous evaluation: the learner's eval chief served over gRPC with the learner's
 * token, `runEvalWorker` as `lopt eval-worker` runs it. A worker that takes a job and dies loses it
 * to another after its lease; its late result is ignored; every checkpoint's metrics equal the same
 * jobs run locally. Then the commands end to end in one process: `lopt learner --eval`, `lopt
 * worker` and `lopt eval-worker`.
 */
import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { random, registry, treeDispose } from '@lopt/core';
import { MLPLOpt } from '@lopt/optimizers';
import { CheckpointManager, continuousEval, distributed, listEventFiles, readEventFile, resolveRunConfig, scalarsByTag } from '@lopt/training';
import { GrpcEvalClient, startGrpcServer } from '../distributed';
import { main } from '../cli';
import { sink } from './support/sink';

const { hostEvalChief, runEvalWorker, EvalJobRunner, evaluationSet } = continuousEval;
const { RpcError, Status } = distributed;
const EVAL = { tasks: [{ name: 'FixedDimQuadraticFamily', config: { dim: 4 } }], seeds: 2, steps: 20, evalEvery: 5, evalBatches: 2, lastEvalBatches: 2, skipCheckpointsIfBusy: false, pollSeconds: 0.2 };

const noLearner: distributed.LearnerHandler = {
  getWorkerWeights: async () => {
    throw new RpcError(Status.FAILED_PRECONDITION, 'no learner here');
  },
  putGradient: async () => {
    throw new RpcError(Status.FAILED_PRECONDITION, 'no learner here');
  },
};

async function saveParams(ck: CheckpointManager, step: number): Promise<void> {
  const theta = new MLPLOpt().init(random.PRNGKey(step));
  await ck.saveNow({ step, state: { theta }, theta });
  treeDispose(theta);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-evalworker-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('remote eval workers over gRPC with a token: a dead worker loses its job after its lease, results equal local runs', async () => {
  const logdir = path.join(dir, 'run');
  const ck = new CheckpointManager({ dir: logdir, keep: 10 });
  const config = resolveRunConfig(registry, 'quadratic-pes', { set: [`eval=${JSON.stringify(EVAL)}`] });
  const hosted = await hostEvalChief({ logdir, config, token: 's3cret', leaseSeconds: 1 });
  const server = await startGrpcServer(noLearner, { evalHandler: hosted.service });
  const client = (token: string | null) => new GrpcEvalClient(server.address, { token });
  const good = client('s3cret');
  const bad = client('wrong');
  try {
    await expect(bad.getEvalWork({ workerId: 'x' })).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    await saveParams(ck, 3);
    expect(await hosted.service.chief.poll()).toBe(0);
    // a worker takes a job (θ travels with it) and dies
    const ghost = await good.getEvalWork({ workerId: 'ghost' });
    expect(ghost.job?.id).toBe('0/0');
    expect(ghost.thetaTree?.length).toBeGreaterThan(1000);
    await saveParams(ck, 6);
    const worker = runEvalWorker({ client: good, workerId: 'w1', registry, idleSeconds: 0.1 });
    await hosted.finish();
    expect(await worker).toEqual({ jobs: 4 }); // 0/1, 1/0, 1/1, and 0/0 after the ghost's lease ran out
    // the ghost's late result is not counted twice
    expect((await good.putEvalResult({ workerId: 'ghost', jobId: '0/0', result: { step: 3, totalTime: 0, curves: { 'eval/train/loss': [99] } } })).accepted).toBe(false);
    // written as each group completes (the reference's order too): here the ghost's group last
    expect(hosted.service.chief.written.map((g) => [g.index, g.step]).sort()).toEqual([[0, 3], [1, 6]]);

    // the same jobs run locally, from the checkpoint files
    const runner = new EvalJobRunner(registry);
    const set = evaluationSet(config.eval!, config.tasks);
    for (const g of hosted.service.chief.written) {
      for (const [i, task] of set.entries()) {
        const r = await runner.run({ id: `${g.index}/${i}`, group: g.index, taskIndex: i, task, step: g.step, paramsPath: path.join(logdir, 'checkpoints', `params_${g.index}`), learnedOptimizer: config.learnedOptimizer });
        const loss = r.curves['eval/train/loss'] as number[];
        expect(g.metrics[`${task.name}/nonorm_last_loss`]).toBe(loss[loss.length - 1]);
      }
    }
    runner.dispose();
    const tb = scalarsByTag(readEventFile(listEventFiles(path.join(logdir, 'eval_chief', 'results'))[0]));
    expect(tb.get('eval_chief/train/nonorm_last_loss')!.map((p) => p.step).sort()).toEqual([3, 6]);
  } finally {
    good.close();
    bad.close();
    await server.close();
    await hosted.close();
  }
});


async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

test('lopt learner --eval, lopt worker and lopt eval-worker: every checkpoint evaluated, then all exit', async () => {
  const logdir = path.join(dir, 'cli');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'tok\n');
  const port = await freePort();
  const set = ['--set', 'tasks.0.numTasks=2', '--set', 'logging.checkpointEverySteps=2', '--set', `eval=${JSON.stringify(EVAL)}`];
  const run = (args: string[]) => {
    const err = sink();
    return main(['node', 'lopt', ...args], { registry, stdout: sink(), stderr: err }).then((code) => ({ code, err: err.text() }));
  };
  // argument errors come before anything starts
  expect((await run(['eval-worker', '--learner', 'nohost'])).err).toMatch(/--learner must be host:port/);
  expect((await run(['learner', 'quadratic-pes', '--eval', '--steps', '2'])).err).toMatch(/--eval needs --logdir/);

  const learner = run(['learner', 'quadratic-pes', '--port', String(port), '--logdir', logdir, '--steps', '4', '--eval', '--token-file', tokenFile, '--linger-seconds', '1', '--backend', 'cpu', ...set]);
  const learnerAt = `127.0.0.1:${port}`;
  const worker = run(['worker', 'quadratic-pes', '--learner', learnerAt, '--worker-id', '0', '--token-file', tokenFile, '--backend', 'cpu', ...set]);
  const evalWorker = run(['eval-worker', '--learner', learnerAt, '--worker-id', 'e0', '--token-file', tokenFile, '--backend', 'cpu']);
  const [l, w, e] = await Promise.all([learner, worker, evalWorker]);
  expect([l.code, w.code, e.code]).toEqual([0, 0, 0]);
  expect(e.err).toMatch(/the run is over/);
  const stepOf = new Map(
    fs.readdirSync(path.join(logdir, 'checkpoints')).filter((n) => /^params_\d+$/.test(n))
      .map((n) => [Number(n.slice(7)), JSON.parse(fs.readFileSync(path.join(logdir, 'checkpoints', n, 'meta.json'), 'utf8')).step as number]),
  );
  const tb = scalarsByTag(readEventFile(listEventFiles(path.join(logdir, 'eval_chief', 'results'))[0]));
  const written = tb.get('eval_chief/checkpoint')!.map((p) => [p.value, p.step]);
  // the final checkpoint is always evaluated, each one once, at its outer step
  expect(written.map(([i]) => i)).toContain(Math.max(...stepOf.keys()));
  expect(new Set(written.map(([i]) => i)).size).toBe(written.length);
  for (const [i, s] of written) expect(s).toBe(stepOf.get(i));
});
