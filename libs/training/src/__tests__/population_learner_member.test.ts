/**
 * Population members that are full distributed learners (population/learner_member.ts, what
 * `lopt learner --population HOST:PORT --member-id I` runs): two `DistributedLearner`s, each with a
 * worker of its own over the in-process transport, driven by one `PopulationController` with
 * winner_take_all_genetic. Every member reaches its step count, reports at every `evalEvery`
 * steps the mean meta-loss its learner applied in the segment, and exploits load other members'
 * learner checkpoints. Then the pieces of `population.value: eval` (EvalValueWaiter) and the
 * section's `value`/`evalTag` fields.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { resolveRunConfig } from '../index';
import { buildExperiment, DistributedLearner, InProcessTransport, runWorker, type LearnerClient } from '../distributed';
import { EvalValueWaiter, PopulationController, makeMutator, runLearnerMember, trainPopulation, validatePopulation, type PopulationEvent } from '../population';

const LR = 'thetaOptimizer.config.learningRate';

/**
 * The in-process transport, each call after a turn of the event loop: as over gRPC, where the
 * network gives the learner's file I/O (its checkpoints) its turn; a worker on the bare in-process
 * transport answers in microtasks only and would starve it.
 */
function yielding(c: InProcessTransport): LearnerClient {
  const turn = () => new Promise<void>((r) => setImmediate(r));
  return {
    address: c.address,
    getWorkerWeights: async (r) => {
      await turn();
      return c.getWorkerWeights(r);
    },
    putGradient: async (r) => {
      await turn();
      return c.putGradient(r);
    },
    close: () => c.close(),
  };
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-learner-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('two learner members with a worker each: reports every evalEvery steps with the learner\'s segment loss, exploits load learner checkpoints', async () => {
  const pop = { members: 2, mutator: { name: 'winner_take_all_genetic', config: { stepsPerExploit: 2 } }, evalEvery: 2, hparams: { [LR]: { init: [1e-4, 3e-3], step: 0.5 } } };
  const spec = buildExperiment(registry, 'quadratic-pes', { steps: 8, set: ['tasks.0.numTasks=2', `population=${JSON.stringify(pop)}`] });
  const v = validatePopulation(spec.config, registry);
  const controller = new PopulationController(v.initial, makeMutator(v, registry), { logDir: dir });
  const events: PopulationEvent[] = [];
  const losses: number[][] = [[], []];
  const runs = [0, 1].map(async (id) => {
    const learner = new DistributedLearner({ spec, registry, logdir: path.join(dir, 'members', String(id)), checkpointOnInit: false, keepCheckpoints: 20, log: () => {} });
    await learner.init();
    const worker = runWorker({ spec, registry, client: yielding(new InProcessTransport(learner)), workerId: id, log: () => {} });
    try {
      const r = await runLearnerMember({
        learner,
        config: spec.config,
        population: v,
        controller,
        member: id,
        registry,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'report') losses[id].push(e.value);
        },
      });
      await worker;
      return { r, learnerLosses: [...learner.losses] };
    } finally {
      learner.close();
    }
  });
  const results = await Promise.all(runs);
  results.forEach(({ r }, id) => {
    expect(r.step).toBe(8);
    expect(r.interrupted).toBe(false);
    // A member ends on its own report at step 8, or, when the other member finished first, on an
    // exploit that loaded the other's step-8 checkpoint (already reported; nothing is left to train).
    type Ending = Extract<PopulationEvent, { type: 'report' | 'switch' }>;
    const last = events.filter((e): e is Ending => (e.type === 'report' || e.type === 'switch') && e.member === id).pop()!;
    expect(last.step).toBe(8);
    if (r.lastReport!.step !== 8) expect(last.type).toBe('switch');
  });
  // Every report is at a multiple of evalEvery and names a checkpoint written at that step.
  const reports = events.filter((e): e is Extract<PopulationEvent, { type: 'report' }> => e.type === 'report');
  expect(reports.every((e) => e.step % 2 === 0 && Number.isFinite(e.value))).toBe(true);
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'population.state'), 'utf8'));
  // (a generation's cache also holds the checkpoint it started from, with no value)
  const cached = Object.values(state.cache).flatMap((g: any) => Object.values(g)) as Array<{ step: number; params: string; value: number | null; generationId: string }>;
  expect(cached.filter((c) => c.value !== null).length).toBe(reports.length);
  for (const e of reports) {
    const c = state.cache[e.generationId][String(e.step)];
    expect(c.value).toBe(e.value);
    const meta = JSON.parse(fs.readFileSync(path.join(c.params, 'meta.json'), 'utf8'));
    expect(meta.step).toBe(e.step);
    expect(meta.extra).toMatchObject({ mode: 'async', generationId: e.generationId, populationMember: e.member }); // a learner's checkpoint
  }
  // A member's first report is the mean of the meta-losses its learner applied in steps 1..2.
  for (const id of [0, 1]) {
    const first = results[id].learnerLosses.slice(0, 2);
    expect(losses[id][0]).toBeCloseTo((first[0] + first[1]) / 2, 10);
  }
  // Exploits: a member switched to a generation that restarts from a checkpoint (not from scratch),
  // at that checkpoint's step, with a learning rate moved from its parent's.
  const switches = events.filter((e): e is Extract<PopulationEvent, { type: 'switch' }> => e.type === 'switch' && e.from !== null);
  expect(switches.length).toBeGreaterThan(0);
  for (const s of switches) expect(s.step).toBe(JSON.parse(fs.readFileSync(path.join(s.from!, 'meta.json'), 'utf8')).step);
  const lrs = new Set(switches.map((s) => s.metaParams[LR]));
  expect([...lrs].some((x) => x !== 1e-4 && x !== 3e-3)).toBe(true);
}, 120000);

test('EvalValueWaiter: the value is the eval chief\'s tag for the reported params_<n>, written before or after the ask', async () => {
  const w = new EvalValueWaiter('train/nonorm_last_loss');
  const saved = (n: number, step: number) => ({ index: n, step, checkpointPath: `/x/checkpoints/checkpoint_${n}`, paramsPath: `/x/checkpoints/params_${n}` });
  let polls = 0;
  // written after the ask: resolves when the chief writes that index (not another one)
  const p = w.valueOf(saved(3, 6), async () => {
    polls++;
  });
  w.onWritten({ index: 2, step: 4, metrics: { 'train/nonorm_last_loss': 9 } });
  w.onWritten({ index: 3, step: 6, metrics: { 'train/nonorm_last_loss': 1.5 } });
  await expect(p).resolves.toBe(1.5);
  expect(polls).toBe(1);
  // written before the ask (a periodic poll of the chief took it first)
  await expect(w.valueOf(saved(2, 4), async () => undefined)).resolves.toBe(9);
  // a tag the chief does not write: an error listing the tags it has
  const bad = new EvalValueWaiter('train/nope');
  const q = bad.valueOf(saved(0, 2), async () => undefined);
  bad.onWritten({ index: 0, step: 2, metrics: { 'train/nonorm_avg_loss': 1, checkpoint: 0 } });
  await expect(q).rejects.toThrow(/population\.evalTag: no tag 'train\/nope'.*train\/nonorm_avg_loss, checkpoint/);
});

describe('population.value and population.evalTag', () => {
  const cfg = (population: Record<string, unknown>) => resolveRunConfig(registry, 'quadratic-pes', { steps: 4, set: ['tasks.0.numTasks=2', `population=${JSON.stringify(population)}`] });

  test("'train_loss' is 'trainLoss'; the default tag is train/nonorm_last_loss; an unknown value names the field", () => {
    expect(validatePopulation(cfg({ members: 2, value: 'train_loss' }), registry).population.value).toBe('trainLoss');
    const e = validatePopulation(cfg({ members: 2, value: 'eval' }), registry).population;
    expect([e.value, e.evalTag]).toEqual(['eval', 'train/nonorm_last_loss']);
    expect(() => validatePopulation(cfg({ members: 2, value: 'validLoss' }), registry)).toThrow(/population\.value: "validLoss" is not allowed; allowed: trainLoss, eval/);
  });

  test("'eval' in one process: each member's eval chief (a worker thread) evaluates every reported checkpoint, and its tag is the value", async () => {
    const logdir = path.join(dir, 'pop');
    const c = resolveRunConfig(registry, 'quadratic-pes', {
      steps: 4,
      set: ['tasks.0.numTasks=2', 'population={"members":1,"value":"eval","evalTag":"train/nonorm_avg_loss","evalEvery":2,"mutator":{"name":"fixed_schedule","config":{"schedule":{}}}}', 'eval={"steps":5,"seeds":1,"pollSeconds":60}'],
    });
    const reports: number[] = [];
    const r = await trainPopulation(c, { logdir, backend: 'cpu', onEvent: (e) => e.type === 'report' && reports.push(e.value) });
    expect(r.members[0].lastReport?.step).toBe(4);
    const chief = JSON.parse(fs.readFileSync(path.join(logdir, 'members', '0', 'eval_chief', 'eval_chief_state.json'), 'utf8'));
    const written = chief.written as Array<{ step: number; metrics: Record<string, number> }>;
    expect(written.map((w) => w.step)).toEqual([2, 4]);
    expect(reports).toEqual(written.map((w) => w.metrics['train/nonorm_avg_loss']));
    expect(reports.every(Number.isFinite)).toBe(true);
  }, 120000);

  test("a learner member with 'eval' and no eval chief is refused", async () => {
    const spec = buildExperiment(registry, 'quadratic-pes', { steps: 4, set: ['tasks.0.numTasks=2', 'population={"members":1,"value":"eval","mutator":{"name":"fixed_schedule","config":{"schedule":{}}}}'] });
    const v = validatePopulation(spec.config, registry);
    const learner = new DistributedLearner({ spec, registry, log: () => {} });
    await learner.init();
    try {
      const controller = new PopulationController(v.initial, makeMutator(v, registry), { logDir: dir });
      await expect(runLearnerMember({ learner, config: spec.config, population: v, controller, member: 0, registry })).rejects.toThrow(/needs its eval chief/);
    } finally {
      learner.close();
    }
  });
});
