/**
 * Population-based training of `quadratic-pes` in one process (population/run.ts): members meta-
 * train, report, and are moved by the mutator (checkpoints handed over, the theta optimizer's
 * learning rate perturbed). The value the members report is a synthetic function of the learning
 * rate whose answer is known, (ln lr - ln 1e-3)^2, so the test can tell whether the population
 * found the better region; the meta-training itself is real. Then: a run stopped at a random
 * report and resumed from its state file ends exactly as an uninterrupted one; and bad
 * `population:` sections are refused, naming the field, before anything is written.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { resolveRunConfig, listEventFiles, readEventFile } from '../index';
import { trainPopulation, STATE_FILE, type PopulationEvent, type PopulationResult } from '../population';
import { ConfigError } from '../config';

const LR = 'thetaOptimizer.config.learningRate';
const TARGET = 1e-3;
const START = 1e-5;
const synthetic = ({ metaParams }: { metaParams: Record<string, number> }) => (Math.log(metaParams[LR]) - Math.log(TARGET)) ** 2;

function config(steps: number, population: Record<string, unknown>) {
  return resolveRunConfig(registry, 'quadratic-pes', { steps, set: ['tasks.0.numTasks=2', `population=${JSON.stringify(population)}`] });
}

const WTA = { members: 4, mutator: { name: 'winner_take_all_genetic', config: { stepsPerExploit: 2 } }, evalEvery: 2, hparams: { [LR]: { init: START, step: 0.5 } } };
const EXPLORE = { members: 1, mutator: { name: 'single_worker_explore', config: { exploreSteps: 2, exploitSteps: 2 } }, evalEvery: 2, hparams: { [LR]: { init: START, step: 0.5 } } };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-run-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The best member's reported learning rate, and how much closer (in ln) to the answer it is than the start. */
function progress(r: PopulationResult): { lr: number; ratio: number } {
  const lr = r.members[r.best].lastReport!.metaParams[LR];
  return { lr, ratio: Math.abs(Math.log(lr / TARGET)) / Math.abs(Math.log(START / TARGET)) };
}

test('winner_take_all_genetic, 4 members: the best learning rate moves from 1e-5 to the region of the answer (1e-3), through handed-over checkpoints', async () => {
  const events: PopulationEvent[] = [];
  const r = await trainPopulation(config(30, WTA), { logdir: dir, backend: 'cpu', valueFn: synthetic, onEvent: (e) => events.push(e) });
  const { lr, ratio } = progress(r);
  expect(ratio).toBeLessThan(0.25); // within e^1.15 (a factor ~3) of 1e-3, from a factor 100
  expect(lr).toBeGreaterThan(START * 10);
  expect(r.members.every((m) => m.lastReport?.step === 30)).toBe(true);
  // Exploits handed members other members' checkpoints (the winner's), which they loaded.
  const handovers = events.filter((e) => e.type === 'switch' && e.from !== null && !e.from.includes(`members${path.sep}${e.member}${path.sep}`));
  expect(handovers.length).toBeGreaterThan(0);
  // The state file holds the lineage: every generation past the first four has a parent.
  const state = JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), 'utf8'));
  const gens = Object.values(state.cache) as Array<Record<string, { parent: [string, number] | null }>>;
  expect(gens.length).toBe(r.generations);
  expect(gens.filter((g) => Object.values(g)[0].parent === null).length).toBe(4);
  // Each member logged its meta-training loss at every step, and its value and learning rate at each report.
  for (let i = 0; i < 4; i++) {
    const tags = new Map<string, number>();
    for (const f of listEventFiles(path.join(dir, 'members', String(i)))) for (const e of readEventFile(f)) for (const v of e.summary?.value ?? []) tags.set(v.tag, (tags.get(v.tag) ?? 0) + 1);
    expect(tags.get('outer/loss')).toBeGreaterThanOrEqual(30);
    expect(tags.get('population/value')).toBe(15);
    expect(tags.get(`population/${LR}`)).toBe(15);
  }
}, 120000);

test('single_worker_explore, 1 member: branching down and up moves the learning rate from 1e-5 to the region of the answer', async () => {
  const r = await trainPopulation(config(40, EXPLORE), { logdir: dir, backend: 'cpu', valueFn: synthetic });
  const { ratio } = progress(r);
  expect(ratio).toBeLessThan(0.25);
  expect(r.members[0].lastReport!.step).toBe(40);
}, 120000);

/** What a run decided, without ids and paths (which differ between runs): per generation its steps, values, hyper-parameters and parent. */
function lineage(logdir: string): unknown {
  const state = JSON.parse(fs.readFileSync(path.join(logdir, STATE_FILE), 'utf8'));
  const ids = Object.keys(state.cache);
  const ord = (g: string) => ids.indexOf(g);
  return {
    active: state.activeWorkers.map((w: any) => [ord(w.generationId), w.step, w.metaParams]),
    cache: ids.map((g) => Object.values(state.cache[g]).map((c: any) => [c.step, c.value, c.metaParams, c.parent && [ord(c.parent[0]), c.parent[1]]])),
  };
}

test('stopped at a random report and resumed from the state file, a population ends exactly as an uninterrupted one', async () => {
  const cfg = config(12, { ...WTA, mutator: { name: 'WinnerTakeAllGenetic', config: { stepsPerExploit: 4 } } });
  const full = path.join(dir, 'full');
  const a = await trainPopulation(cfg, { logdir: full, backend: 'cpu' }); // the value: the real meta-training loss
  expect(a.interrupted).toBe(false);
  const parted = path.join(dir, 'parted');
  // stop after report k, at random among the first 23 of the 24 (k is in the failure message; POP_K=k repeats it)
  const k = Number(process.env.POP_K) || 1 + Math.floor(Math.random() * 23);
  const stop = new AbortController();
  let reports = 0;
  const b1 = await trainPopulation(cfg, {
    logdir: parted,
    backend: 'cpu',
    signal: stop.signal,
    onEvent: (e) => e.type === 'report' && ++reports === k && stop.abort(),
  });
  expect(b1.interrupted).toBe(true);
  const atStop = lineage(parted) as { cache: unknown[][] };
  await expect(trainPopulation(cfg, { logdir: parted, backend: 'cpu' })).rejects.toThrow(/already holds a population.*--resume/);
  const b2 = await trainPopulation(cfg, { logdir: parted, backend: 'cpu', resume: true });
  expect(b2.interrupted).toBe(false);
  const end = lineage(parted) as { cache: unknown[][] };
  // nothing recorded before the stop was lost or changed ...
  atStop.cache.forEach((g, i) => expect({ k, g: end.cache[i].slice(0, g.length) }).toEqual({ k, g }));
  // ... and the whole run equals the uninterrupted one: every generation, value and hyper-parameter
  expect({ k, end }).toEqual({ k, end: lineage(full) });
  b2.members.forEach((m, i) => m.lastReport && expect(m.lastReport.value).toBe(a.members[i].lastReport!.value));
}, 120000);

describe('a bad population section is refused before anything is written', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown mutator', { mutator: { name: 'genetic' } }, /population\.mutator\.name: unknown population mutator 'genetic' \(allowed: .*WinnerTakeAllGenetic.*winner_take_all_genetic/],
    ['an explorer with 4 members', { members: 4, mutator: { name: 'single_worker_explore' } }, /population\.members: BranchingSingleMachine drives a single member, got 4/],
    ['explore steps off the report grid', { members: 1, evalEvery: 4, mutator: { name: 'single_worker_explore', config: { exploreSteps: 6, exploitSteps: 8 } } }, /population\.mutator\.config\.exploreSteps: 6 must be a multiple of population\.evalEvery \(4\)/],
    ['a bad mutator field', { mutator: { name: 'WinnerTakeAllGenetic', config: { stepsPerExploit: 0 } } }, /population\.mutator\.config: .*stepsPerExploit/],
    ['a path outside the theta optimizer', { hparams: { 'gradientEstimator.config.truncLength': {} } }, /population\.hparams\.gradientEstimator\.config\.truncLength: a population tunes the theta optimizer's hyper-parameters/],
    ['a field Adam does not have', { hparams: { 'thetaOptimizer.config.momentum': {} } }, /population\.hparams\.thetaOptimizer\.config\.momentum: Adam has no numeric field 'momentum' \(its fields: .*learningRate/],
    ['init of the wrong length', { members: 3, hparams: { [LR]: { init: [1e-3, 1e-4] } } }, /population\.hparams\.thetaOptimizer\.config\.learningRate\.init: 2 values for 3 members/],
    ['a log move of a negative value', { hparams: { [LR]: { init: -1 } } }, /needs positive values/],
  ];
  for (const [what, pop, re] of cases) {
    test(what, async () => {
      const logdir = path.join(dir, 'never');
      let err: unknown;
      try {
        await trainPopulation(config(4, pop), { logdir, backend: 'cpu' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(re);
      expect(fs.existsSync(logdir)).toBe(false);
    });
  }
  test('an unknown field of the section (schema)', () => {
    expect(() => config(4, { member: 4 })).toThrow(/population\.member: unknown field \(did you mean 'members'\?\)/);
  });
});

test("value: eval members' eval worker threads load the run's plugins (a missing one is named in the failure)", async () => {
  const cfg = config(4, { ...EXPLORE, value: 'eval' });
  const missing = path.join(dir, 'no-such-plugin');
  await expect(trainPopulation(cfg, { logdir: path.join(dir, 'pop'), backend: 'cpu', plugins: [missing] })).rejects.toThrow(/no-such-plugin/);
}, 120000);
