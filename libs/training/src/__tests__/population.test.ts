/**
 * The population controller and its three mutators against the reference's own controller
 * (test/golden/population.json, made by tools/reference/golden_population.py): the same scripted
 * members, the same deterministic mutate functions, and every answer compared; then the state
 * file (resume after a kill at every point gives the same run) and the mutators' edge cases.
 */
import fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BranchingSingleMachine,
  FixedSchedule,
  HParamPerturbation,
  PopulationController,
  PopulationStateError,
  STATE_FILE,
  WinnerTakeAllGenetic,
  type Mutator,
} from '../population';

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../../test/golden/population.json'), 'utf8'));

const VALUE = (m: number, step: number, worker: number) => (m - 0.3) ** 2 + 0.01 * ((step * 7 + worker * 3) % 4);
const wtaMutate = (p: number, n: number) => p + 0.1 * ((n % 5) - 2);
const exploreMutate = (p: number, dir: 'pos' | 'neg', idx: number) => p + (dir === 'pos' ? 0.1 : -0.1) / (1 + idx);

const counterIds = () => {
  let n = 0;
  return () => `g${n++}`;
};

interface Sim {
  polls: Array<null | { meta_params: number; step: number; params: string | null; generation_id: string }>;
  active: Array<{ meta_params: number; step: number; params: string | null; generation_id: string }>;
  cache: Record<string, Array<{ step: number; value: number | null; parent: [string, number] | null; meta_params: number; params: string | null }>>;
}

/**
 * The golden script's members. `restartAt(call)` true: the controller is dropped and made again
 * from its state file before that poll (a controller killed and restarted).
 */
function simulate(makeMutator: () => Mutator, initial: number[], every: number, rounds: number, opts: { logDir?: string; restartAt?: (call: number) => boolean } = {}): Sim {
  const makeGenId = counterIds();
  const make = () => new PopulationController(initial, makeMutator(), { logDir: opts.logDir, makeGenId });
  let c = make();
  const k = initial.length;
  const gen: (string | null)[] = Array(k).fill(null);
  const step = Array(k).fill(0);
  const params: (string | null)[] = Array(k).fill(null);
  const hp: (number | null)[] = Array(k).fill(null);
  const polls: Sim['polls'] = [];
  let call = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < k; i++) {
      if (opts.restartAt?.(call++)) c = make();
      const got = c.maybeGetWorkerData(i, gen[i], step[i], params[i], hp[i]);
      if (got === null) polls.push(null);
      else {
        polls.push({ meta_params: got.metaParams as number, step: got.step, params: got.params as string | null, generation_id: got.generationId });
        [gen[i], step[i], params[i], hp[i]] = [got.generationId, got.step, got.params as string | null, got.metaParams as number];
      }
      step[i] += every;
      params[i] = `w${i}r${r}s${step[i]}`;
      c.setEval(i, gen[i]!, step[i], params[i], VALUE(hp[i]!, step[i], i));
    }
  }
  const active = c.workers().map((a) => ({ meta_params: a.metaParams as number, step: a.step, params: a.params as string | null, generation_id: a.generationId }));
  const cache: Sim['cache'] = {};
  for (const [g, cks] of c.generations()) {
    cache[g] = cks.map((ck) => ({ step: ck.step, value: ck.value, parent: ck.parent, meta_params: ck.metaParams as number, params: ck.params as string | null }));
  }
  return { polls, active, cache };
}

function expectSameRun(got: Sim, want: Sim): void {
  // hyper-parameters and values are sums of a few doubles: equal to the last bits or very nearly
  const approx = (x: unknown): unknown =>
    typeof x === 'number' ? Math.round(x * 1e12) / 1e12 : Array.isArray(x) ? x.map(approx) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, approx(v)])) : x;
  expect(approx(got.polls)).toEqual(approx(want.polls));
  expect(approx(got.active)).toEqual(approx(want.active));
  expect(Object.keys(got.cache)).toEqual(Object.keys(want.cache));
  expect(approx(got.cache)).toEqual(approx(want.cache));
}

const SCENARIOS: Record<string, { make: () => Mutator; initial: number[]; every: number; rounds: number }> = {
  wta_mean: { make: () => new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 4 }), initial: [0, 0.5, 1, 1.5], every: 2, rounds: 12 },
  wta_last: { make: () => new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 3, averageOverSamples: false }), initial: [2, -1, 0.25], every: 1, rounds: 10 },
  explore: { make: () => new BranchingSingleMachine(exploreMutate, { exploitSteps: 4, exploreSteps: 2 }), initial: [1], every: 2, rounds: 40 },
  fixed_schedule: { make: () => new FixedSchedule({ 0: 1, 10: 2, 30: 3 }), initial: [0.5], every: 3, rounds: 15 },
};

describe('the reference controller, replayed', () => {
  for (const [name, s] of Object.entries(SCENARIOS)) {
    test(`${name}: every poll, the active workers and the whole cache equal the reference's`, () => {
      const got = simulate(s.make, s.initial, s.every, s.rounds);
      expectSameRun(got, golden[name]);
      // the scenario means something: generations were made and handed out
      expect(Object.keys(got.cache).length).toBeGreaterThan(s.initial.length);
    });
  }

  test('sync: null while a member runs its generation, the active worker otherwise (test_do_have_to_reload_params)', () => {
    const c = new PopulationController([1, 1, 1], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 2 }), { makeGenId: counterIds() });
    const first = c.maybeGetWorkerData(0, null, 0, null, null)!;
    expect(first.generationId).toBe(golden.sync.first);
    const calls = golden.sync.calls.map(([w, g]: [number, string]) => [w, g, c.maybeGetWorkerData(w, g, first.step, null, 1) === null]);
    expect(calls).toEqual(golden.sync.calls);
  });

  test('the explore mutator moves the hyper-parameter towards the minimum of the value (0.3)', () => {
    const got = simulate(SCENARIOS.explore.make, [1], 2, 40);
    // (its steps shrink as 0.1/(1+phase): 0.27 of the 0.7 is covered in 40 rounds)
    expect(Math.abs(got.active[0].meta_params - 0.3)).toBeLessThan(0.45);
  });
});

describe('the state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [name, s] of Object.entries(SCENARIOS)) {
    test(`${name}: a controller killed and restarted from its state file before random polls runs exactly as one never stopped`, () => {
      // a fixed pseudo-random set of restart points (about one poll in four)
      const restarts = new Set<number>();
      for (let i = 0, x = 12345 + name.length; i < 200; i++) {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        if (x % 4 === 0) restarts.add(i);
      }
      const got = simulate(s.make, s.initial, s.every, s.rounds, { logDir: path.join(dir, name), restartAt: (c) => restarts.has(c) });
      expectSameRun(got, golden[name]);
      expect(fs.existsSync(path.join(dir, name, STATE_FILE))).toBe(true);
    });
  }

  test('a kill while the state file is written leaves the previous state whole (temporary file + rename)', () => {
    const c = new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 1 }), { logDir: dir, makeGenId: counterIds() });
    const before = fs.readFileSync(path.join(dir, STATE_FILE), 'utf8');
    const spy = jest.spyOn(fs, 'renameSync').mockImplementationOnce(() => {
      throw new Error('killed');
    });
    expect(() => c.setEval(0, 'g0', 1, 'a', 1)).toThrow('killed');
    spy.mockRestore();
    expect(fs.readFileSync(path.join(dir, STATE_FILE), 'utf8')).toBe(before);
    // the restarted controller removes the torn temporary file and reads the old state
    const again = new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 1 }), { logDir: dir });
    expect(again.resumed).toBe(true);
    expect(again.workers().map((w) => w.generationId)).toEqual(['g0', 'g1']);
    expect(fs.readdirSync(dir)).toEqual([STATE_FILE]);
  });

  test('a state file of another mutator or population size is refused, naming both', () => {
    new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 1 }), { logDir: dir });
    expect(() => new PopulationController([1], new FixedSchedule({}), { logDir: dir })).toThrow(/mutator 'WinnerTakeAllGenetic', not 'FixedSchedule'/);
    expect(() => new PopulationController([1, 2, 3], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 1 }), { logDir: dir })).toThrow(/holds 2 members, not 3/);
    fs.writeFileSync(path.join(dir, STATE_FILE), '{"format":"lopt-population/1"');
    expect(() => new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 1 }), { logDir: dir })).toThrow(PopulationStateError);
  });

  test('NaN and infinite values survive the JSON state file', () => {
    const c = new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 5 }), { logDir: dir, makeGenId: counterIds() });
    c.setEval(0, 'g0', 1, 'a', NaN);
    c.setEval(1, 'g1', 1, 'b', Infinity);
    const again = new PopulationController([1, 2], new WinnerTakeAllGenetic(wtaMutate, { stepsPerExploit: 5 }), { logDir: dir });
    const gens = again.generations();
    expect(gens.get('g0')![1].value).toBeNaN();
    expect(gens.get('g1')![1].value).toBe(Infinity);
  });
});

describe('mutators', () => {
  test('WinnerTakeAllGenetic: a diverged (NaN) member never wins; every member restarts from the winner, perturbed', () => {
    const c = new PopulationController([1, 2, 3], new WinnerTakeAllGenetic((p: number, n: number) => p + n / 100, { stepsPerExploit: 1 }), { makeGenId: counterIds() });
    c.setEval(0, 'g0', 1, 'ck0', NaN);
    c.setEval(1, 'g1', 1, 'ck1', 5);
    c.setEval(2, 'g2', 1, 'ck2', 4); // the last member reports: the exploit runs
    const w = c.workers();
    expect(w.map((x) => x.params)).toEqual(['ck2', 'ck2', 'ck2']);
    expect(w.map((x) => x.metaParams)).toEqual([3, 3.01, 3.02]);
    expect(w.map((x) => x.generationId)).toEqual(['g3', 'g4', 'g5']);
    expect(c.generations().get('g4')![0].parent).toEqual(['g2', 1]);
  });

  test('WinnerTakeAllGenetic by seconds: values count only from secondsPerExploit after the generation began', () => {
    let t = 1000;
    const c = new PopulationController([1, 2], new WinnerTakeAllGenetic((p: number) => p * 10, { secondsPerExploit: 60 }), { makeGenId: counterIds(), now: () => t });
    t += 30;
    c.setEval(0, 'g0', 1, 'a', -10);
    c.setEval(1, 'g1', 1, 'b', 0.5);
    expect(c.workers().map((w) => w.generationId)).toEqual(['g0', 'g1']); // too early
    t += 40;
    c.setEval(0, 'g0', 2, 'a2', 3);
    c.setEval(1, 'g1', 2, 'b2', 2);
    // only the values at >= 60 s count: 3 against 2 (with member 0's early -10, its mean would win)
    expect(c.workers().map((w) => [w.params, w.metaParams])).toEqual([
      ['b2', 20],
      ['b2', 20],
    ]);
  });

  test('WinnerTakeAllGenetic needs exactly one of stepsPerExploit and secondsPerExploit', () => {
    expect(() => new WinnerTakeAllGenetic((p) => p, {})).toThrow(/exactly one/);
    expect(() => new WinnerTakeAllGenetic((p) => p, { stepsPerExploit: 1, secondsPerExploit: 1 })).toThrow(/exactly one/);
  });

  test('FixedSchedule keeps the entries still to apply in its state (they survive a restart)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-'));
    try {
      const c = new PopulationController([0], new FixedSchedule({ 0: 1, 10: 2 }), { logDir: dir, makeGenId: counterIds() });
      c.setEval(0, 'g0', 1, 'a', 0);
      expect(c.workers()[0].metaParams).toBe(1);
      const again = new PopulationController([0], new FixedSchedule({ 0: 1, 10: 2 }), { logDir: dir, makeGenId: () => 'h' });
      again.setEval(0, 'g1', 5, 'b', 0); // entry 0 is not applied twice
      expect(again.workers()[0].generationId).toBe('g1');
      again.setEval(0, 'g1', 10, 'c', 0);
      expect(again.workers()[0]).toMatchObject({ metaParams: 2, params: 'c', step: 10, generationId: 'h' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('HParamPerturbation: directed moves in log and linear space, clamped; random moves reproducible by (seed, draw)', () => {
    const p = new HParamPerturbation({ lr: { perturb: 'log', step: Math.log(2), max: 3 }, m: { perturb: 'linear', step: 0.25, min: 0 } }, 7);
    expect(p.directed({ lr: 1, m: 0.5 }, 'pos')).toEqual({ lr: 2, m: 0.75 });
    expect(p.directed({ lr: 2, m: 0.1 }, 'pos').lr).toBe(3);
    expect(p.directed({ lr: 2, m: 0.1 }, 'neg')).toEqual({ lr: 1, m: 0 });
    expect(p.random({ lr: 1, m: 0.5 }, 3)).toEqual(p.random({ lr: 1, m: 0.5 }, 3));
    expect(p.random({ lr: 1, m: 0.5 }, 3)).not.toEqual(p.random({ lr: 1, m: 0.5 }, 4));
    // the draws are standard normal: mean ~0, variance ~1 over many
    const z = Array.from({ length: 4000 }, (_, i) => Math.log(new HParamPerturbation({ x: { perturb: 'log', step: 1 } }, 1).random({ x: 1 }, i).x));
    const mean = z.reduce((a, b) => a + b, 0) / z.length;
    const variance = z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length;
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(variance - 1)).toBeLessThan(0.08);
  });
});
