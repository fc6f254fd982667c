/**
 * End to end: the built `lopt population` command. A population of 4 quadratic-pes members under
 * winner_take_all_genetic is SIGKILLed at a random point (after a random number of reports, so
 * the kill lands anywhere in a member's segment: mid-training, mid-checkpoint, mid-state-write),
 * then continued with --resume. Nothing the state file held at the kill is lost or changed, and
 * the resumed population ends with exactly the generations, values and learning rates of an
 * uninterrupted run of the same command.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'apps/runner/dist/cli.js');
const ARGS = ['population', 'quadratic-pes', '--members', '4', '--mutator', 'winner_take_all_genetic', '--steps', '12', '--eval-every', '2', '--set', 'tasks.0.numTasks=2', '--set', 'population.mutator.config.stepsPerExploit=4', '--backend', 'cpu'];
let dir: string;
const children: ChildProcess[] = [];

function lopt(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [cli, '--quiet', ...args], { cwd: root, env: { ...process.env, LOPT_QUIET: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let buf = '';
  child.stdout!.on('data', (d) => (buf += d));
  child.stderr!.on('data', (d) => (buf += d));
  return { child, out: () => buf, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

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
