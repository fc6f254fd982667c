/**
 * End to end on loopback (127.0.0.1 only): the built `lopt learner` and `lopt worker` processes.
 * A learner and two workers with a token; a worker with a wrong token and one with another config
 * are refused; one worker is killed mid-run (the learner keeps going) and restarted (it rejoins);
 * the learner is killed and restarted with --resume on the same port (it continues from its
 * checkpoint, the workers reconnect by themselves) and reaches its step count with gradients
 * from both workers. Every child process is killed in afterAll.
 */
import { ChildProcess, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { listEventFiles, readEventFile, scalarsByTag } from '@lopt/training';
import { CLI as cli, LoptProcess, ROOT as root, spawnLopt, waitForOutput } from './support/lopt_process';

const EXP = 'quadratic-pes';
const SET = ['--set', 'tasks.0.numTasks=2'];
let dir: string;
const children: ChildProcess[] = [];
type Proc = LoptProcess;
const lopt = (args: string[]): Proc => spawnLopt(args, { env: { LOPT_BACKEND: 'cpu' }, track: children });
const waitFor = async (p: Proc, re: RegExp, timeoutMs = 60000): Promise<RegExpMatchArray> => (await waitForOutput(p, re, { timeoutMs }))[0];

function lastStep(p: Proc): number {
  const all = [...p.out().matchAll(/\[learner\] step (\d+)\//g)];
  return all.length ? Number(all[all.length - 1][1]) : -1;
}

beforeAll(() => {
  try {
    execFileSync('npx', ['tsc', '-b', 'libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'apps/runner'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    if (!fs.existsSync(cli)) throw e;
    console.warn(`tsc -b failed, using the existing build:\n${String((e as { stdout?: Buffer }).stdout ?? e).slice(0, 2000)}`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-dist-e2e-'));
  fs.writeFileSync(path.join(dir, 'token'), 'e2e-secret\n');
  fs.writeFileSync(path.join(dir, 'wrong-token'), 'not-the-secret\n');
}, 300000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('lopt learner + lopt worker (built cli, loopback)', () => {
  test('two workers, refused intruders, a killed worker, a killed and resumed learner', async () => {
    const steps = 40;
    const logdir = path.join(dir, 'run');
    const token = path.join(dir, 'token');
    const learnerArgs = (port: number, extra: string[] = []) => [
      'learner', EXP, '--port', String(port), '--host', '127.0.0.1', '--token-file', token, '--mode', 'async', '--batch-size', '2',
      '--staleness', '2', '--steps', String(steps), '--logdir', logdir, ...SET, '--set', 'logging.checkpointEverySteps=2',
      '--backend', 'cpu', '--linger-seconds', '10', ...extra,
    ];
    const learner1 = lopt(learnerArgs(0));
    const port = Number((await waitFor(learner1, /listening on 127\.0\.0\.1:(\d+)/))[1]);
    expect(port).toBeGreaterThan(0);
    const addr = `127.0.0.1:${port}`;
    const worker = (id: number, tok = token, extra: string[] = []) =>
      lopt(['worker', EXP, '--learner', addr, '--token-file', tok, '--worker-id', String(id), ...SET, '--backend', 'cpu', ...extra]);

    // intruders: wrong token, other config
    const intruder = worker(7, path.join(dir, 'wrong-token'));
    const otherCfg = worker(8, token, ['--set', 'tasks.0.config.dim=3']);
    // worker 0 gives up after 30 s without a learner: on a loaded machine the resumed learner may finish
    // before its reconnect backoff ends, and the default (600 s) would outlast the test
    const w0 = worker(0, token, ['--give-up-seconds', '30']);
    let w1 = worker(1);
    expect(await intruder.exited).not.toBe(0);
    expect(intruder.out()).toMatch(/UNAUTHENTICATED/);
    expect(await otherCfg.exited).not.toBe(0);
    expect(otherCfg.out()).toMatch(/FAILED_PRECONDITION.*config hash/);

    // kill worker 1 mid-run: the learner keeps going; restart it (fresh unroll states)
    await waitFor(learner1, /\[learner\] step 4\//);
    w1.child.kill('SIGKILL');
    await w1.exited;
    const before = lastStep(learner1);
    await waitFor(learner1, new RegExp(`\\[learner\\] step ${before + 3}/`));
    w1 = worker(1);

    // kill the learner after a few more steps (a checkpoint every 2 steps)
    await waitFor(learner1, new RegExp(`\\[learner\\] step ${before + 8}/`));
    learner1.child.kill('SIGKILL');
    await learner1.exited;
    const killedAt = lastStep(learner1);
    expect(killedAt).toBeLessThan(steps);
    await waitFor(w0, /waiting for learner/, 30000);

    // resume on the same port; workers reconnect by themselves
    const learner2 = lopt(learnerArgs(port, ['--resume']));
    const resumedAt = Number((await waitFor(learner2, /resumed from .* at step (\d+)/))[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(killedAt);
    expect(resumedAt).toBeGreaterThanOrEqual(killedAt - 2);
    const summary = await waitFor(learner2, /finished at step (\d+); summary (\{.*\})/, 90000);
    expect(Number(summary[1])).toBe(steps);
    const s = JSON.parse(summary[2]);
    // The resumed learner counts the workers whose gradients it applied: worker 1 (restarted) always;
    // worker 0 only if its reconnect (gRPC backoff up to 2 s) came before the last step, which a
    // loaded machine may not give it. That worker 0 reconnected is checked below: only the resumed
    // learner can tell it "learner finished".
    expect(s.workers).toContain(1);
    expect(s.workers.every((w: number) => w === 0 || w === 1)).toBe(true);
    expect(s.rejectedMessages).toBe(0);
    const resumedSteps = [...learner2.out().matchAll(/\[learner\] step (\d+)\//g)].map((m) => Number(m[1]));
    expect(resumedSteps[0]).toBe(resumedAt + 1);
    expect(await learner2.exited).toBe(0);

    // worker 1 reconnected to the resumed learner (its gradients were applied) and was told it finished;
    // worker 0 was told too if it reconnected in time, else it gave up with the message saying so
    expect(await w1.exited).toBe(0);
    expect(w1.out()).toMatch(/learner finished/);
    // (a loaded machine may see the resumed learner finish and exit before worker 0's backoff
    // retries, so only a worker that was told "finished" must have reconnected)
    const w0Code = await w0.exited;
    if (w0Code === 0) {
      expect(w0.out()).toMatch(/connected to learner/);
      expect(w0.out()).toMatch(/learner finished/);
    } else {
      expect(s.workers).not.toContain(0);
      expect(w0.out()).toMatch(/unreachable for \d+ s; giving up/);
    }

    // the first learner refused the intruders and counted them; TensorBoard has the learner metrics
    expect(learner1.out()).toMatch(/refused a call: invalid token/);
    const rejected1 = [...learner1.out().matchAll(/ rejected (\d+) /g)].map((m) => Number(m[1]));
    expect(Math.max(...rejected1)).toBeGreaterThanOrEqual(2);
    const events = listEventFiles(logdir).flatMap((f) => readEventFile(f));
    const tags = scalarsByTag(events);
    for (const t of ['avg_staleness', 'max_staleness', 'buffer_size', 'removed_stale_grads', 'unique_workers', 'global_step_per_second', 'rejected_messages', 'mean_loss']) {
      expect(tags.has(t)).toBe(true);
    }
    // the workers whose gradients made up each applied batch of 2: one or both (in async mode a
    // loaded machine may let one worker fill every batch, so 2 is not guaranteed at any step)
    const uniqueWorkers = tags.get('unique_workers')!.map((p) => p.value);
    expect(uniqueWorkers.every((v) => v === 1 || v === 2)).toBe(true);
    expect(Math.max(...tags.get('rejected_messages')!.map((p) => p.value))).toBeGreaterThanOrEqual(2);
    expect(Math.max(...tags.get('global_step')!.map((p) => p.step))).toBe(steps);
  }, 180000);
});
