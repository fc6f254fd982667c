/**
 * End to end: population members that are real `lopt learner` processes with `lopt worker`s of
 * their own (`lopt learner --population HOST:PORT --member-id I`), and the controller's side of a
 * dead member.
 *
 * 1. Two learner members, one worker each, under `lopt population --serve`: member 0 is SIGKILLed
 *    after a random one of its first reports and started again with the same command (same port:
 *    its worker reconnects); it takes up its last reported checkpoint. Then member 1's worker is
 *    SIGKILLed and started again, and the controller is SIGKILLed at a random moment and resumed
 *    on its port. Both members reach the step count, and nothing the population state held at
 *    either kill is lost.
 * 2. `population.value: eval`: a learner member with `--eval` and a `lopt eval-worker` reports its
 *    eval chief's `train/nonorm_last_loss` for each checkpoint; the learner (and with it the chief)
 *    is SIGKILLed at a random report and restarted, then the eval worker at a random moment: every
 *    value in the final state is the chief's written result for that checkpoint's step, and
 *    nothing held at the kill is lost.
 * 3. `lopt population --serve --spawn-members`: the controller starts the members; one is
 *    SIGKILLed at a random report, another stops answering (SIGSTOP: no heartbeats) and is killed
 *    after --member-timeout-seconds; the controller starts replacements that continue from the
 *    members' last reported checkpoints, and exits 0 when every member is done.
 */
import { ChildProcess, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { CLI as cli, LoptProcess, ROOT as root, spawnLopt, waitForOutput } from './support/lopt_process';

let dir: string;
const children: ChildProcess[] = [];
type Proc = LoptProcess;
const lopt = (args: string[]): Proc => spawnLopt(args, { track: children });
const waitFor = (p: Proc, re: RegExp, count = 1, timeoutMs = 120000): Promise<RegExpMatchArray[]> => waitForOutput(p, re, { count, timeoutMs, pollMs: 5 });
const kill = async (p: Proc) => {
  p.child.kill('SIGKILL');
  await p.exited;
};

/** A free TCP port on 127.0.0.1 (a restarted learner binds the same one, so its workers find it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Entry {
  step: number;
  value: number | null;
  params: string | null;
  metaParams: Record<string, number>;
}
/** The population state: its active workers and every generation's checkpoints by step. */
function state(logdir: string): { activeWorkers: Array<{ generationId: string; step: number }>; cache: Record<string, Record<string, Entry>> } {
  return JSON.parse(fs.readFileSync(path.join(logdir, 'population.state'), 'utf8'));
}
/** Every entry of `before` is in `after`, unchanged. */
function expectKept(before: ReturnType<typeof state>, after: ReturnType<typeof state>, ctx: object): void {
  for (const [g, steps] of Object.entries(before.cache)) for (const [s, e] of Object.entries(steps)) expect({ ...ctx, g, s, e: after.cache[g]?.[s] }).toEqual({ ...ctx, g, s, e });
}

beforeAll(() => {
  try {
    execFileSync('npx', ['tsc', '-b', 'libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'libs/training', 'apps/runner'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    if (!fs.existsSync(cli)) throw e;
    console.warn(`tsc -b failed, using the existing build:\n${String((e as { stdout?: Buffer }).stdout ?? e).slice(0, 2000)}`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-members-e2e-'));
}, 300000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const POP = (members: number, extra: string[] = [], steps = 8) => [
  'quadratic-pes',
  '--steps',
  String(steps),
  '--backend',
  'cpu',
  '--set',
  'tasks.0.numTasks=2',
  '--set',
  `population={"members":${members},"evalEvery":2,"mutator":{"name":"winner_take_all_genetic","config":{"stepsPerExploit":2}},"hparams":{"thetaOptimizer.config.learningRate":{"init":${members === 1 ? '1e-3' : '[1e-4,3e-3]'}}}${extra.join('')}}`,
];
const REPORT = /\[population\] member \d step \d+\/8: value/;

test('learner members with workers of their own; a killed learner member, worker and controller, nothing lost', async () => {
  const logdir = path.join(dir, 'learners');
  const ctlPort = String(await freePort());
  let ctl = lopt(['population', ...POP(2), '--logdir', logdir, '--serve', '--port', ctlPort]);
  const [m] = await waitFor(ctl, /listening on (127\.0\.0\.1:\d+)/);
  const ports = [await freePort(), await freePort()];
  const learner = (i: number) => lopt(['learner', ...POP(2), '--population', m[1], '--member-id', String(i), '--logdir', logdir, '--port', String(ports[i])]);
  const ls = [learner(0), learner(1)];
  for (const l of ls) await waitFor(l, /\[learner\] listening on/);
  const worker = (i: number) => lopt(['worker', 'quadratic-pes', '--backend', 'cpu', '--set', 'tasks.0.numTasks=2', '--learner', `127.0.0.1:${ports[i]}`, '--worker-id', String(i)]);
  const workers = [worker(0), worker(1)];

  const k = Number(process.env.POP_KILL_LEARNER_AFTER) || 1 + Math.floor(Math.random() * 3);
  const [last] = (await waitFor(ls[0], /\[population\] member 0 step (\d+)\/8: value/, k)).slice(-1);
  await kill(ls[0]);
  const atKill = state(logdir);
  ls[0] = learner(0);
  // it asks the controller and takes up a reported checkpoint (its own last one, or an exploit's)
  const [sw] = await waitFor(ls[0], /member 0 -> generation \w+ at step (\d+) from members\/\d\/checkpoints\/checkpoint_\d+/);
  expect(Number(sw[1])).toBeGreaterThanOrEqual(Math.min(Number(last[1]), 2));
  // member 1's worker dies and is started again; then the controller is killed and resumed
  await kill(workers[1]);
  workers[1] = worker(1);
  await new Promise((r) => setTimeout(r, Math.random() * 1000));
  await kill(ctl);
  const atControllerKill = state(logdir);
  ctl = lopt(['population', ...POP(2), '--logdir', logdir, '--serve', '--port', ctlPort, '--resume']);
  await waitFor(ctl, /listening on .* \(resumed\)/);
  for (const l of ls) expect({ k, code: await l.exited, out: l.out().slice(-800) }).toMatchObject({ code: 0 });
  // A worker exits when its learner tells it the run is over; one that was away (restarting, or
  // its learner restarting) when its learner finished and lingered is told by nobody (it would
  // retry for --give-up-seconds): stop it.
  for (const w of workers) {
    await Promise.race([w.exited, new Promise((r) => setTimeout(r, 10000))]);
    if (w.child.exitCode === null && w.child.signalCode === null) await kill(w);
  }
  for (const [i, l] of ls.entries()) expect(l.out()).toMatch(new RegExp(`\\[population\\] member ${i} done at step 8`));
  // the workers' gradients trained the members; the learners logged outer steps
  expect(ls[1].out()).toMatch(/\[learner\] step \d+\/8 loss/);
  const end = state(logdir);
  expectKept(atKill, end, { k });
  expectKept(atControllerKill, end, { k, what: 'controller kill' });
  // the members' reports are learner checkpoints (an exploit may carry a member to another's
  // checkpoint at step 8, so one report there may be all)
  const reported = Object.values(end.cache).flatMap((g) => Object.values(g)).filter((e) => e.value !== null);
  expect(reported.filter((e) => e.step === 8).length).toBeGreaterThanOrEqual(1);
  for (const e of reported) expect(JSON.parse(fs.readFileSync(path.join(e.params!, 'meta.json'), 'utf8')).extra).toMatchObject({ mode: 'async' });
  ctl.child.kill('SIGTERM');
  expect(await ctl.exited).toBe(0);
}, 300000);

test("population.value eval: a learner member reports its eval chief's result; killed with its chief, and its eval worker killed, nothing lost", async () => {
  const logdir = path.join(dir, 'eval');
  const pop = POP(1, [',"value":"eval"']);
  const ctl = lopt(['population', ...pop, '--logdir', logdir, '--serve']);
  const [m] = await waitFor(ctl, /listening on (127\.0\.0\.1:\d+)/);
  const port = await freePort();
  const evalSet = ['--set', 'eval={"steps":10,"seeds":1,"pollSeconds":1}'];
  const learner = () => lopt(['learner', ...pop, ...evalSet, '--eval', '--population', m[1], '--member-id', '0', '--logdir', logdir, '--port', String(port)]);
  // without --eval, a member with value eval is refused
  const refused = lopt(['learner', ...pop, '--population', m[1], '--member-id', '0', '--logdir', logdir]);
  expect(await refused.exited).not.toBe(0);
  expect(refused.out()).toMatch(/population\.value 'eval'.*add --eval/);

  let l = learner();
  await waitFor(l, /\[learner\] listening on/);
  const worker = lopt(['worker', 'quadratic-pes', '--backend', 'cpu', '--set', 'tasks.0.numTasks=2', '--learner', `127.0.0.1:${port}`, '--worker-id', '0']);
  const evalWorkerProc = () => lopt(['eval-worker', '--backend', 'cpu', '--learner', `127.0.0.1:${port}`, '--worker-id', 'e0']);
  let evalWorker = evalWorkerProc();
  const k = Number(process.env.POP_KILL_CHIEF_AFTER) || 1 + Math.floor(Math.random() * 2);
  await waitFor(l, REPORT, k);
  await kill(l);
  const atKill = state(logdir);
  l = learner();
  // the eval worker dies at a random moment too, and is started again under its id
  await waitFor(l, /\[learner\] listening on/);
  await new Promise((r) => setTimeout(r, Math.random() * 1500));
  await kill(evalWorker);
  evalWorker = evalWorkerProc();
  expect({ k, code: await l.exited, out: l.out().slice(-800) }).toMatchObject({ code: 0 });
  expect(l.out()).toMatch(/\[population\] member 0 done at step 8/);
  for (const p of [worker, evalWorker]) expect({ code: await p.exited, out: p.out().slice(-400) }).toMatchObject({ code: 0 });
  const end = state(logdir);
  expectKept(atKill, end, { k });
  // every reported value is the chief's train/nonorm_last_loss of a checkpoint at that step
  const chief = JSON.parse(fs.readFileSync(path.join(logdir, 'members', '0', 'eval_chief', 'eval_chief_state.json'), 'utf8'));
  const written = chief.written as Array<{ step: number; metrics: Record<string, number> }>;
  const reported = Object.values(end.cache).flatMap((g) => Object.values(g)).filter((e) => e.value !== null);
  expect(reported.map((e) => e.step).sort((a, b) => a - b)).toEqual(expect.arrayContaining([2, 4, 6, 8]));
  for (const e of reported) expect({ k, step: e.step, found: written.some((w) => w.step === e.step && w.metrics['train/nonorm_last_loss'] === e.value) }).toEqual({ k, step: e.step, found: true });
  ctl.child.kill('SIGTERM');
  expect(await ctl.exited).toBe(0);
}, 300000);

test('--serve --spawn-members: a member SIGKILLed at a random point and one that stops answering (SIGSTOP) are replaced, continuing from their last reported checkpoints', async () => {
  const logdir = path.join(dir, 'spawned');
  // 16 steps: the kill comes after member 1's 1st to 3rd report (step 2 to 6), and the steps left
  // must outlast the time its report takes to reach this test (with 8, a fast member was done)
  const ctl = lopt(['population', ...POP(2, [], 16), '--logdir', logdir, '--serve', '--spawn-members', '--member-timeout-seconds', '8']);
  const k = Number(process.env.POP_KILL_SPAWNED_AFTER) || 1 + Math.floor(Math.random() * 3);
  const [[, pid0]] = await waitFor(ctl, /started member 0 \(pid (\d+)\)/);
  const [[, pid1]] = await waitFor(ctl, /started member 1 \(pid (\d+)\)/);
  await waitFor(ctl, /\[member 0\] \[population\] member 0 step \d+\/16: value/);
  process.kill(Number(pid0), 'SIGSTOP'); // alive, but silent: no heartbeats
  await waitFor(ctl, /\[member 1\] \[population\] member 1 step \d+\/16: value/, k);
  process.kill(Number(pid1), 'SIGKILL');
  await waitFor(ctl, new RegExp(`member 1 \\(pid ${pid1}\\) died \\(SIGKILL\\); starting a replacement`));
  const atKill = state(logdir);
  await waitFor(ctl, new RegExp(`member 0 \\(pid ${pid0}\\) not heard from for 8 s: killing it`), 1, 60000);
  const code = await ctl.exited;
  const out = ctl.out();
  expect({ k, code, out: out.slice(-1500) }).toMatchObject({ code: 0 });
  // the replacements took up reported checkpoints instead of starting over
  for (const [i, pid] of [[0, pid0], [1, pid1]] as const) {
    const after = out.slice(out.indexOf(`member ${i} (pid ${pid}) died (SIGKILL); starting a replacement`));
    expect(after).toMatch(new RegExp(`\\[member ${i}\\] \\[population\\] member ${i} -> generation \\w+ at step ([2-9]|1[0-6]) from members\\/\\d\\/checkpoints\\/checkpoint_\\d+`));
    expect(after).toMatch(new RegExp(`member ${i}: new process \\w+ replaces \\w+`));
    expect(out).toMatch(new RegExp(`\\[member ${i}\\] +member ${i}: step 16, last value`));
  }
  expect(out).toMatch(/every member is done/);
  expectKept(atKill, state(logdir), { k });
}, 300000);

test('--spawn-members --member-command: each member a learner with a worker of its own; a member killed as a whole (its process group) is replaced', async () => {
  const logdir = path.join(dir, 'commanded');
  const base = await freePort();
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const lopts = (args: string[]) => [process.execPath, cli, '--quiet', ...args].map(q).join(' ');
  const port = `$((${base} + {member}))`;
  const member =
    `${lopts(['learner', ...POP(2, [], 16), '--population', '{controller}', '--member-id', '{member}', '--logdir', logdir])} --port ${port} & L=$!; ` +
    `${lopts(['worker', 'quadratic-pes', '--backend', 'cpu', '--set', 'tasks.0.numTasks=2', '--worker-id', '{member}'])} --learner 127.0.0.1:${port} & wait $L`;
  // 16 steps, as the SIGSTOP test: the kill (after report 1 or 2) must come before the member is done
  const ctl = lopt(['population', ...POP(2, [], 16), '--logdir', logdir, '--serve', '--spawn-members', '--member-command', member]);
  const [[, pid]] = await waitFor(ctl, /started member 0 \(pid (\d+)\)/);
  const k = Number(process.env.POP_KILL_COMMANDED_AFTER) || 1 + Math.floor(Math.random() * 2);
  await waitFor(ctl, /\[member 0\] \[population\] member 0 step \d+\/16: value/, k);
  process.kill(-Number(pid), 'SIGKILL'); // the member's shell, learner and worker
  await waitFor(ctl, new RegExp(`member 0 \\(pid ${pid}\\) died \\(SIGKILL\\); starting a replacement`));
  const atKill = state(logdir);
  const code = await ctl.exited;
  const out = ctl.out();
  expect({ k, code, out: out.slice(-1500) }).toMatchObject({ code: 0 });
  const after = out.slice(out.indexOf(`member 0 (pid ${pid}) died`));
  expect(after).toMatch(/\[member 0\] \[population\] member 0 -> generation \w+ at step ([2-9]|1[0-6]) from members\/\d\/checkpoints\/checkpoint_\d+/);
  expect(after).toMatch(/\[member 0\] \[learner\] step \d+\/16 loss/); // trained by the new worker
  for (const i of [0, 1]) expect(out).toMatch(new RegExp(`\\[member ${i}\\] \\[population\\] member ${i} done at step 16`));
  expectKept(atKill, state(logdir), { k });
}, 300000);
