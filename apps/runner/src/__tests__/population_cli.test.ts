/**
 * `lopt population` in process: a short run of 2 members prints its members and best, and bad
 * options are refused with the option or field named, before a log directory is made.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { main } from '../cli';
import { populationOverrides } from '../commands/population';
import { sink } from './support/sink';


async function run(args: string[]) {
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'lopt', ...args], { registry, stdout, stderr });
  return { code, out: stdout.text(), err: stderr.text() };
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-cli-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a 2-member winner_take_all_genetic run: reports, hand-overs, a summary naming the best member', async () => {
  const logdir = path.join(dir, 'pop');
  const r = await run(['population', 'quadratic-pes', '--members', '2', '--mutator', 'winner_take_all_genetic', '--steps', '4', '--eval-every', '2', '--set', 'tasks.0.numTasks=1', '--set', 'population.mutator.config.stepsPerExploit=2', '--backend', 'cpu', '--logdir', logdir]);
  expect({ code: r.code, err: r.err.slice(-500) }).toMatchObject({ code: 0 });
  expect(r.err).toMatch(/lopt population quadratic-pes: 2 members, WinnerTakeAllGenetic, 4 steps each, reports every 2/);
  expect(r.err.match(/\[population\] member \d step \d\/4: value/g)).toHaveLength(4);
  expect(r.err).toMatch(/\[population\] member 1 -> generation \w+ at step 2 from members\/\d\/checkpoints\/checkpoint_0: learningRate=/);
  expect(r.out).toMatch(/done, 6 generations/);
  expect(r.out).toMatch(/<- best/);
  expect(fs.existsSync(path.join(logdir, 'population.state'))).toBe(true);
}, 60000);

test('lopt list population_mutator lists the three mutators', async () => {
  const r = await run(['list', 'population_mutator']);
  expect(r.code).toBe(0);
  for (const n of ['BranchingSingleMachine', 'FixedSchedule', 'WinnerTakeAllGenetic']) expect(r.out).toContain(n);
});

describe('refused before anything is written', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--members', '0'], /--members must be an integer >= 1, got '0'/],
    [['--mutator', 'genetic'], /population\.mutator\.name: unknown population mutator 'genetic' \(allowed: .*winner_take_all_genetic/],
    [['--mutator', 'single_worker_explore', '--members', '3'], /population\.members: BranchingSingleMachine drives a single member, got 3/],
    [['--eval-every', '1.5'], /--eval-every must be an integer >= 1/],
    [['--set', 'population.hparams={"thetaOptimizer.config.beta9":{}}'], /population\.hparams\.thetaOptimizer\.config\.beta9: Adam has no numeric field 'beta9'/],
    [['--resume'], /--resume needs --logdir/],
  ];
  for (const [extra, re] of cases) {
    test(extra.join(' '), async () => {
      const logdir = path.join(dir, 'never');
      const args = ['population', 'quadratic-pes', ...extra, ...(extra.includes('--resume') ? [] : ['--logdir', logdir])];
      const r = await run(args);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(re);
      expect(fs.existsSync(logdir)).toBe(false);
    });
  }
});

test('--mutator alone picks one member for a single-member mutator, --members wins when given', () => {
  const single = (m: string) => m === 'single_worker_explore';
  expect(populationOverrides({ mutator: 'single_worker_explore' }, single)).toEqual(['population.mutator.name=single_worker_explore', 'population.members=1']);
  expect(populationOverrides({ mutator: 'single_worker_explore', members: '2' }, single)).toEqual(['population.mutator.name=single_worker_explore', 'population.members=2']);
  expect(populationOverrides({ mutator: 'winner_take_all_genetic' }, single)).toEqual(['population.mutator.name=winner_take_all_genetic']);
});
