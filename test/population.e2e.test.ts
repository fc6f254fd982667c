/**
 * End to end: the built `lopt population` command. A population of 4 quadratic-pes members under
 * winner_take_all_genetic is SIGKILLed at a random point (after a random number of reports, so
 * the kill lands anywhere in a member's segment: mid-training, mid-checkpoint, mid-state-write),
 * then continued with --resume. Nothing the state file held at the kill is lost or changed, and
 * the resumed population ends with exactly the generations, values and learning rates of an
 * uninterrupted run of the same command.
 *
 * Then members in their own processes (`--serve` / `--controller --member`): a controller and two
 * members with a token; a member with a wrong token and one with another config are refused; one
 * member is killed and restarted (it takes up its last reported checkpoint), the controller is
 * killed and restarted with --resume on the same port (the members wait for it); both members
 * reach their step count and nothing the state file held at either kill is lost.
 */
import { ChildProcess, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CLI as cli, LoptProcess, ROOT as root, spawnLopt, waitForOutput } from './support/lopt_process';

const ARGS = ['population', 'quadratic-pes', '--members', '4', '--mutator', 'winner_take_all_genetic', '--steps', '12', '--eval-every', '2', '--set', 'tasks.0.numTasks=2', '--set', 'population.mutator.config.stepsPerExploit=4', '--backend', 'cpu'];
let dir: string;
const children: ChildProcess[] = [];
type Proc = LoptProcess;
const lopt = (args: string[]): Proc => spawnLopt(args, { track: children });
const waitFor = (p: Proc, re: RegExp, count = 1, timeoutMs = 120000): Promise<RegExpMatchArray[]> => waitForOutput(p, re, { count, timeoutMs, pollMs: 5 });

/** The state file without ids and paths: per generation its steps, values, learning rates and parent. */
function lineage(logdir: string): { active: unknown[]; cache: unknown[][] } {
  const state = JSON.parse(fs.readFileSync(path.join(logdir, 'population.state'), 'utf8'));
  const ids = Object.keys(state.cache);
  const ord = (g: string) => ids.indexOf(g);
  return {
    active: state.activeWorkers.map((w: any) => [ord(w.generationId), w.step, w.metaParams]),
    cache: ids.map((g) => Object.values(state.cache[g]).map((c: any) => [c.step, c.value, c.metaParams, c.parent && [ord(c.parent[0]), c.parent[1]]])),
  };
}

beforeAll(() => {
  try {
    execFileSync('npx', ['tsc', '-b', 'libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'libs/training', 'apps/runner'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    if (!fs.existsSync(cli)) throw e;
    console.warn(`tsc -b failed, using the existing build:\n${String((e as { stdout?: Buffer }).stdout ?? e).slice(0, 2000)}`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-e2e-'));
}, 300000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('lopt population killed at a random point and resumed ends as an uninterrupted run', async () => {
  const full = path.join(dir, 'full');
  const a = lopt([...ARGS, '--logdir', full]);
  expect(await a.exited).toBe(0);
  expect(a.out()).toMatch(/lopt population quadratic-pes: done, \d+ generations/);
  expect(a.out()).toMatch(/<- best/);

  const killed = path.join(dir, 'killed');
  const k = Number(process.env.POP_KILL_AFTER) || 1 + Math.floor(Math.random() * 22); // of 24 reports
  const b = lopt([...ARGS, '--logdir', killed]);
  for (;;) {
    if ((b.out().match(/\[population\] member \d+ step \d+\/12: value/g) ?? []).length >= k) break;
    if (b.child.exitCode !== null) throw new Error(`exited before report ${k}:\n${b.out()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  b.child.kill('SIGKILL');
  await b.exited;
  const atKill = lineage(killed); // the state file is whole (never torn)
  const c = lopt([...ARGS, '--logdir', killed, '--resume']);
  expect({ k, code: await c.exited, out: c.out().slice(-400) }).toMatchObject({ k, code: 0 });
  expect(c.out()).toMatch(/\(resumed\)/);
  const end = lineage(killed);
  atKill.cache.forEach((g, i) => expect({ k, g: end.cache[i].slice(0, g.length) }).toEqual({ k, g }));
  expect({ k, end }).toEqual({ k, end: lineage(full) });
  // a second run without --resume is refused rather than overwriting the population
  const d = lopt([...ARGS, '--logdir', killed]);
  expect(await d.exited).not.toBe(0);
  expect(d.out()).toMatch(/already holds a population \(population.state\); pass --resume/);
});

test('controller and members in separate processes: refused intruders, a killed member and a killed controller, nothing lost', async () => {
  const logdir = path.join(dir, 'served');
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'pop-secret\n');
  fs.writeFileSync(path.join(dir, 'wrong'), 'not-it\n');
  const base = ['population', 'quadratic-pes', '--members', '2', '--mutator', 'winner_take_all_genetic', '--steps', '24', '--eval-every', '2', '--set', 'tasks.0.numTasks=2', '--set', 'population.mutator.config.stepsPerExploit=2', '--backend', 'cpu', '--logdir', logdir];
  const serve = (extra: string[]) => lopt([...base, '--serve', '--token-file', token, ...extra]);
  let ctl = serve(['--port', '0']);
  const [m] = await waitFor(ctl, /listening on (127\.0\.0\.1:(\d+))/);
  const [address, port] = [m[1], m[2]];
  const member = (i: number, extra: string[] = [], tok = token) => lopt([...base, '--controller', address, '--member', String(i), '--token-file', tok, ...extra]);

  // intruders are refused, naming why
  const wrongToken = member(0, [], path.join(dir, 'wrong'));
  const otherConfig = member(0, ['--set', 'tasks.0.numTasks=3']);
  expect(await wrongToken.exited).not.toBe(0);
  expect(wrongToken.out()).toMatch(/unauthenticated: invalid token/);
  expect(await otherConfig.exited).not.toBe(0);
  expect(otherConfig.out()).toMatch(/this controller runs experiment 'quadratic-pes' \(config hash \w+\); the member runs 'quadratic-pes' \(\w+\)/);

  const m0 = member(0);
  let m1 = member(1);
  const reports = /\[population\] member \d step \d+\/24: value/;
  // kill member 1 after a random one of its first 4 reports, and start it again
  const k1 = Number(process.env.POP_KILL_MEMBER_AFTER) || 1 + Math.floor(Math.random() * 4);
  await waitFor(m1, reports, k1);
  m1.child.kill('SIGKILL');
  await m1.exited;
  const atMemberKill = lineage(logdir);
  m1 = member(1);
  expect(await waitFor(m1, /member 1 -> generation \w+ at step (\d+) from (scratch|members\/\d\/checkpoints\/checkpoint_\d+)/)).toHaveLength(1);
  // kill the controller after a random number of member 0's reports, restart it on the same port
  const k2 = Number(process.env.POP_KILL_CONTROLLER_AFTER) || 4 + Math.floor(Math.random() * 4);
  await waitFor(m0, reports, k2);
  ctl.child.kill('SIGKILL');
  await ctl.exited;
  const atControllerKill = lineage(logdir);
  ctl = serve(['--port', port, '--resume']);
  await waitFor(ctl, /listening on .* \(resumed\)/);

  const ctx = { k1, k2, m0: m0.out().slice(-600), m1: m1.out().slice(-600) };
  expect({ ...ctx, code: await m0.exited }).toMatchObject({ code: 0 });
  expect({ ...ctx, code: await m1.exited }).toMatchObject({ code: 0 });
  for (const p of [m0, m1]) expect(p.out()).toMatch(/member \d: step 24, last value/);
  expect(m0.out() + m1.out()).toMatch(/controller at 127\.0\.0\.1:\d+ unreachable .*retrying/);
  // checkpoints crossed processes: a member took up the other's checkpoint
  expect(`${m0.out()}\n${m1.out()}`).toMatch(/member 0 -> generation \w+ at step \d+ from members\/1\/|member 1 -> generation \w+ at step \d+ from members\/0\//);
  const end = lineage(logdir);
  for (const [what, snap] of [['member kill', atMemberKill], ['controller kill', atControllerKill]] as const) {
    snap.cache.forEach((g, i) => expect({ what, ...ctx, g: end.cache[i].slice(0, g.length) }).toEqual({ what, ...ctx, g }));
  }
  expect(end.active.every((w: any) => w[1] === 24)).toBe(true);
  ctl.child.kill('SIGTERM');
  expect(await ctl.exited).toBe(0);
});
