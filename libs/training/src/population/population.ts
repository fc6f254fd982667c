/**
 * The population controller of population-based training (reference
 * `population/population.py`: `PopulationController`, `Checkpoint`, `ActiveWorker`, `Mutate`).
 *
 * Members (the reference's "workers": each one a learner meta-training its own θ) talk to it with
 * two calls:
 * - `maybeGetWorkerData(workerId, generationId, step, params, metaParams)`: null while the member
 *   is in sync; otherwise the `ActiveWorker` it must switch to (new hyper-parameters, and maybe
 *   another member's checkpoint to restart from).
 * - `setEval(workerId, generationId, step, params, value)`: a checkpoint (`params`, usually its
 *   path) and its evaluation (a loss: lower is better), after which the mutator runs.
 *
 * A generation is one (hyper-parameters, lineage) segment; its checkpoints are kept by step in the
 * cache. The whole state (active workers, cache, mutator state) is written to `population.state`
 * (JSON) in `logDir` after every change, atomically (temporary file, fsync, rename), and read back
 * when a controller is made over the same directory, so a killed controller resumes where it was.
 */
// Default import: calls go through the live module object (tests simulate a kill with jest.spyOn(fs, ...)).
import fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import { removeStaleTemps, tempPathFor } from '@lopt/core';

/**
 * Id of a generation (one hyper-parameter setting and lineage segment); random UUIDs by default, as the
 * reference.
 */
export type GenerationId = string;

/** One saved point of a generation (reference `Checkpoint`). */
export interface Checkpoint<P = unknown, M = unknown> {
  /** What a member restarts from: usually a checkpoint path; null = start from scratch. */
  params: P | null;
  /** The hyper-parameters this generation trains with. */
  metaParams: M;
  generationId: GenerationId;
  /** Its evaluation (lower is better), or null when none was given. */
  value: number | null;
  /** (generation, step) it was made from, or null for the initial population. */
  parent: [GenerationId, number] | null;
  step: number;
  /** Seconds since the epoch. */
  time: number;
}

/** What a member should be running (reference `ActiveWorker`). */
export interface ActiveWorker<P = unknown, M = unknown> {
  params: P | null;
  metaParams: M;
  generationId: GenerationId;
  step: number;
}

/** Checkpoints of one generation by step (the reference's `IntKeyDict`: always read in step order). */
export class StepDict<P = unknown, M = unknown> {
  private readonly byStep = new Map<number, Checkpoint<P, M>>();

  get size(): number {
    return this.byStep.size;
  }
  has(step: number): boolean {
    return this.byStep.has(step);
  }
  get(step: number): Checkpoint<P, M> | undefined {
    return this.byStep.get(step);
  }
  set(step: number, ck: Checkpoint<P, M>): void {
    this.byStep.set(step, ck);
  }
  keys(): number[] {
    return [...this.byStep.keys()].sort((a, b) => a - b);
  }
  values(): Checkpoint<P, M>[] {
    return this.keys().map((k) => this.byStep.get(k)!);
  }
  first(): Checkpoint<P, M> | undefined {
    return this.values()[0];
  }
  last(): Checkpoint<P, M> | undefined {
    const v = this.values();
    return v[v.length - 1];
  }
}

/** Every generation's checkpoints by step (reference `population.py`, the controller's `_cache`). */
export type Cache<P = unknown, M = unknown> = Map<GenerationId, StepDict<P, M>>;

/** What a mutator may draw on besides the cache: the controller's clock and id source. */
export interface MutatorContext {
  /** Seconds since the epoch. */
  now(): number;
  makeGenId(): GenerationId;
}

/**
 * A mutator (reference `Mutate`): decides, after each evaluation, which generation each member
 * runs. `update` may add generations and checkpoints to `cache` (it owns nothing else). Its state
 * must be plain JSON: it is written to the state file.
 */
export interface Mutator<S = unknown> {
  /** The plugin's name (recorded in the state file: a resume with another mutator is refused). */
  readonly name: string;
  init(): S;
  update(state: S, currentWorkers: readonly ActiveWorker[], cache: Cache, ctx: MutatorContext): [S, ActiveWorker[]];
  /** Reference `Mutate.get_worker_data`: called on every poll; by default the workers as they are. */
  getWorkerData?(
    activeWorkers: readonly ActiveWorker[],
    cache: Cache,
    workerId: number,
    generationId: GenerationId | null,
    step: number | null,
    params: unknown,
    metaParams: unknown,
  ): ActiveWorker[];
}

/** A new generation's checkpoint, started from `from` (the mutators' shared helper). */
export function addGeneration(cache: Cache, worker: ActiveWorker, from: Pick<Checkpoint, 'generationId' | 'step'> | null, time: number): void {
  const ck: Checkpoint = {
    generationId: worker.generationId,
    params: worker.params,
    metaParams: worker.metaParams,
    parent: from ? [from.generationId, from.step] : null,
    step: worker.step,
    value: null,
    time,
  };
  if (!cache.has(worker.generationId)) cache.set(worker.generationId, new StepDict());
  cache.get(worker.generationId)!.set(worker.step, ck);
}

/** File name of the population controller's state in its log directory. */
export const STATE_FILE = 'population.state';
const STATE_FORMAT = 'lopt-population/1';

/** Thrown for a population state file that is corrupt or not one. */
export class PopulationStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PopulationStateError';
  }
}

// JSON cannot hold NaN or ±Infinity (a diverged member's loss): they travel as tagged strings.
const NON_FINITE = '__nonfinite__:';
function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? `${NON_FINITE}${v}` : v;
}
function reviver(_k: string, v: unknown): unknown {
  return typeof v === 'string' && v.startsWith(NON_FINITE) ? Number(v.slice(NON_FINITE.length)) : v;
}

/** The state as plain JSON text (generations in insertion order, steps sorted). */
export function serializePopulationState(s: { mutator: string; activeWorkers: readonly ActiveWorker[]; cache: Cache; mutatorState: unknown }): string {
  const cache: Record<string, Record<string, Checkpoint>> = {};
  for (const [gen, steps] of s.cache) cache[gen] = Object.fromEntries(steps.keys().map((k) => [String(k), steps.get(k)!]));
  return JSON.stringify({ format: STATE_FORMAT, mutator: s.mutator, activeWorkers: s.activeWorkers, cache, mutatorState: s.mutatorState }, replacer);
}

/**
 * Reads the controller's state from the JSON text of {@link serializePopulationState}; `source` names the
 * file in errors ({@link PopulationStateError}).
 */
export function parsePopulationState(text: string, source: string): { mutator: string; activeWorkers: ActiveWorker[]; cache: Cache; mutatorState: unknown } {
  let raw: any;
  try {
    raw = JSON.parse(text, reviver);
  } catch (e) {
    throw new PopulationStateError(`${source} is corrupt: ${(e as Error).message}`);
  }
  if (!raw || raw.format !== STATE_FORMAT || !Array.isArray(raw.activeWorkers) || typeof raw.cache !== 'object' || raw.cache === null) {
    throw new PopulationStateError(`${source} is not a population state (format ${STATE_FORMAT})`);
  }
  const cache: Cache = new Map();
  for (const [gen, steps] of Object.entries(raw.cache as Record<string, Record<string, Checkpoint>>)) {
    const d = new StepDict();
    for (const [k, ck] of Object.entries(steps)) d.set(Number(k), ck);
    cache.set(gen, d);
  }
  return { mutator: String(raw.mutator), activeWorkers: raw.activeWorkers, cache, mutatorState: raw.mutatorState ?? null };
}

/** Options of a {@link PopulationController}: where its state file lives, and clock, id source and log. */
export interface PopulationControllerOptions {
  /** Where `population.state` lives; without it nothing is written (reference: `log_dir=None`). */
  logDir?: string;
  /** Clock in seconds (tests). */
  now?: () => number;
  /** Generation ids (tests); default random UUIDs, as the reference. */
  makeGenId?: () => GenerationId;
  /** Warnings and notes (default: none). */
  log?: (message: string) => void;
}

/**
 * The two calls a member makes: a `PopulationController` in the same process, or a client of one
 * in another (the reference binds these two methods on a courier server).
 */
export interface PopulationService {
  maybeGetWorkerData(workerId: number, generationId: GenerationId | null, step: number | null, params: unknown, metaParams: unknown): ActiveWorker | null | Promise<ActiveWorker | null>;
  setEval(workerId: number, generationId: GenerationId, step: number, params: unknown, value: number | null): void | Promise<void>;
}

/** JSON text of a message or state that may hold NaN or ±Infinity (they travel as tagged strings). */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value, replacer);
}

/** The inverse of `toJsonText`. */
export function fromJsonText<T = unknown>(text: string): T {
  return JSON.parse(text, reviver) as T;
}

/** Reference `PopulationController`, with its state in a JSON file. */
export class PopulationController implements PopulationService {
  readonly mutator: Mutator;
  readonly logDir: string | undefined;
  private activeWorkers: ActiveWorker[] = [];
  private cache: Cache = new Map();
  private mutatorState: unknown;
  private readonly ctx: MutatorContext;
  private readonly log: (message: string) => void;
  /** True when the state came from an existing state file. */
  readonly resumed: boolean;

  constructor(initialPopulation: readonly unknown[], mutator: Mutator, opts: PopulationControllerOptions = {}) {
    this.mutator = mutator;
    this.logDir = opts.logDir;
    this.log = opts.log ?? (() => undefined);
    this.ctx = { now: opts.now ?? (() => Date.now() / 1000), makeGenId: opts.makeGenId ?? (() => randomUUID()) };
    this.mutatorState = mutator.init();
    if (this.logDir) {
      fs.mkdirSync(this.logDir, { recursive: true });
      removeStaleTemps(this.logDir); // a state file half-written by a killed controller
    }
    this.resumed = this.loadState(initialPopulation.length);
    if (!this.resumed) {
      // No state yet: one generation per initial hyper-parameter set, at step 0, from scratch.
      const step = 0;
      this.activeWorkers = initialPopulation.map((m) => ({ params: null, metaParams: m, generationId: this.ctx.makeGenId(), step }));
      for (const a of this.activeWorkers) addGeneration(this.cache, a, null, this.ctx.now());
      this.saveState();
    }
  }

  /** How many members the population has. */
  get size(): number {
    return this.activeWorkers.length;
  }

  /** A copy of what each member should be running. */
  workers(): ActiveWorker[] {
    return this.activeWorkers.map((w) => ({ ...w }));
  }

  /** Generation id -> its checkpoints in step order (copies). */
  generations(): Map<GenerationId, Checkpoint[]> {
    return new Map([...this.cache].map(([g, d]) => [g, d.values().map((c) => ({ ...c }))]));
  }

  private checkWorker(workerId: number): void {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId >= this.activeWorkers.length) {
      throw new RangeError(`workerId ${workerId} is not a member of this population (0..${this.activeWorkers.length - 1})`);
    }
  }

  /**
   * Reference `maybe_get_worker_data`: null when the member is in sync (its generation is the one
   * it should run), else the `ActiveWorker` to switch to. A member leaving a generation the mutator
   * replaced leaves its current point in the cache (without a value) unless one is there already.
   */
  maybeGetWorkerData(workerId: number, generationId: GenerationId | null, step: number | null, params: unknown, metaParams: unknown): ActiveWorker | null {
    this.checkWorker(workerId);
    if (this.mutator.getWorkerData) {
      const before = this.serialized();
      this.activeWorkers = this.mutator.getWorkerData(this.activeWorkers, this.cache, workerId, generationId, step, params, metaParams);
      if (this.serialized() !== before) this.saveState();
    }
    const active = this.activeWorkers[workerId];
    // A member that just started (or restarted) runs what the population says.
    if (generationId === null) return { ...active };
    if (!this.cache.has(generationId)) {
      this.log(`population: member ${workerId} reports generation ${generationId}, unknown here (out of sync?); resetting it to what the population holds`);
      return { ...active };
    }
    if (active.generationId !== generationId) {
      const steps = this.cache.get(generationId)!;
      if (step === null) throw new RangeError(`maybeGetWorkerData: member ${workerId} names generation ${generationId} without a step`);
      if (!steps.has(step)) {
        steps.set(step, { generationId, params: (params ?? null) as unknown, metaParams, parent: [generationId, step], step, value: null, time: this.ctx.now() });
        this.saveState();
      }
      return { ...active };
    }
    return null;
  }

  /** Reference `set_eval`: records `value` for (generation, step), then runs the mutator. */
  setEval(workerId: number, generationId: GenerationId, step: number, params: unknown, value: number | null): void {
    this.checkWorker(workerId);
    const steps = this.cache.get(generationId);
    if (!steps) {
      this.log(`population: setEval for generation ${generationId}, not made by this population (a member or the controller restarted?); ignored`);
      return;
    }
    const metaParams = steps.first()!.metaParams;
    steps.set(step, { generationId, params: (params ?? null) as unknown, metaParams, value, parent: [generationId, step], step, time: this.ctx.now() });
    if (this.activeWorkers[workerId].generationId === generationId) {
      this.activeWorkers = this.activeWorkers.map((w, i) => (i === workerId ? { ...w, step, params: (params ?? null) as unknown } : w));
    }
    [this.mutatorState, this.activeWorkers] = this.mutator.update(this.mutatorState, this.activeWorkers, this.cache, this.ctx);
    this.saveState();
  }

  private serialized(): string {
    return serializePopulationState({ mutator: this.mutator.name, activeWorkers: this.activeWorkers, cache: this.cache, mutatorState: this.mutatorState });
  }

  get statePath(): string | null {
    return this.logDir ? path.join(this.logDir, STATE_FILE) : null;
  }

  /** Reads the state file, if there is one; refuses one made for another mutator or population size. */
  private loadState(members: number): boolean {
    const file = this.statePath;
    if (!file || !fs.existsSync(file)) return false;
    const s = parsePopulationState(fs.readFileSync(file, 'utf8'), file);
    if (s.mutator !== this.mutator.name) {
      throw new PopulationStateError(`${file} was written by mutator '${s.mutator}', not '${this.mutator.name}'; resume with the same mutator or use another directory`);
    }
    if (s.activeWorkers.length !== members) {
      throw new PopulationStateError(`${file} holds ${s.activeWorkers.length} members, not ${members}; resume with the same number of members or use another directory`);
    }
    this.activeWorkers = s.activeWorkers;
    this.cache = s.cache;
    this.mutatorState = s.mutatorState;
    return true;
  }

  /** Writes the state file atomically (a kill leaves the old file or the new one, never a torn one). */
  saveState(): void {
    const file = this.statePath;
    if (!file) return;
    const tmp = tempPathFor(file);
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeFileSync(fd, this.serialized());
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  }
}
