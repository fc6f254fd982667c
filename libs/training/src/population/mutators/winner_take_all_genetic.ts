/**
 * Reference `population/mutators/winner_take_all_genetic.py` (`WinnerTakeAllGenetic`): once every
 * member has values `stepsPerExploit` steps (or `secondsPerExploit` seconds) past the start of its
 * generation, the member with the lowest value (their mean, or the newest one) wins: every member
 * restarts from the winner's newest checkpoint, each with the winner's hyper-parameters perturbed
 * by `mutateFn` (the winner's own slot included), in a new generation.
 *
 * One change: the reference's `argmin` picks a NaN value (a diverged member) as the winner; here
 * NaN counts as the worst value. The mutator's state counts `mutateFn` calls, so a random
 * perturbation drawn from (seed, call number) continues the same sequence after a restart (the
 * reference's state is None and its draws come from numpy's global generator).
 */
import { type ActiveWorker, type Cache, type Checkpoint, type Mutator, type MutatorContext, addGeneration } from '../population';

/** State of {@link WinnerTakeAllGenetic}: how many perturbations it drew. */
export interface WinnerTakeAllState {
  /** mutateFn calls made so far. */
  draws: number;
}

/** `mutate_fn(meta_params)`; `draw` numbers the call (0, 1, ...). */
export type RandomMutateFn = (metaParams: any, draw: number) => any;

/**
 * When {@link WinnerTakeAllGenetic} picks a winner (after `stepsPerExploit` steps or `secondsPerExploit`
 * seconds) and how it scores members.
 */
export interface WinnerTakeAllGeneticOptions {
  stepsPerExploit?: number;
  secondsPerExploit?: number;
  /** Mean of the values past the exploit point (default), or the newest one only. */
  averageOverSamples?: boolean;
}

/**
 * The winner-take-all genetic mutator (reference `population/mutators/winner_take_all_genetic.py`,
 * `WinnerTakeAllGenetic`): every member restarts from the best one's checkpoint with perturbed
 * hyper-parameters.
 */
export class WinnerTakeAllGenetic implements Mutator<WinnerTakeAllState> {
  readonly name = 'WinnerTakeAllGenetic';
  readonly averageOverSamples: boolean;

  constructor(
    private readonly mutateFn: RandomMutateFn,
    readonly opts: WinnerTakeAllGeneticOptions,
  ) {
    const { stepsPerExploit: st, secondsPerExploit: se } = opts;
    if ((st === undefined) === (se === undefined)) throw new RangeError('WinnerTakeAllGenetic: set exactly one of stepsPerExploit and secondsPerExploit');
    if (st !== undefined && !(Number.isSafeInteger(st) && st > 0)) throw new RangeError(`WinnerTakeAllGenetic: stepsPerExploit must be an integer >= 1, got ${st}`);
    if (se !== undefined && !(Number.isFinite(se) && se > 0)) throw new RangeError(`WinnerTakeAllGenetic: secondsPerExploit must be a number > 0, got ${se}`);
    this.averageOverSamples = opts.averageOverSamples ?? true;
  }

  init(): WinnerTakeAllState {
    return { draws: 0 };
  }

  /** A generation's checkpoints in step order (by steps) or in time order (by seconds). */
  private ordered(steps: NonNullable<ReturnType<Cache['get']>>): Checkpoint[] {
    return this.opts.stepsPerExploit !== undefined ? steps.values() : [...steps.values()].sort((a, b) => a.time - b.time);
  }

  update(state: WinnerTakeAllState, currentWorkers: readonly ActiveWorker[], cache: Cache, ctx: MutatorContext): [WinnerTakeAllState, ActiveWorker[]] {
    const st = state ?? this.init();
    const unchanged: [WinnerTakeAllState, ActiveWorker[]] = [st, [...currentWorkers]];
    const values: number[] = [];
    for (const w of currentWorkers) {
      const steps = cache.get(w.generationId);
      if (!steps || !steps.size) return unchanged;
      let valid: number[];
      if (this.opts.stepsPerExploit !== undefined) {
        const keys = steps.keys();
        if (keys[keys.length - 1] - keys[0] < this.opts.stepsPerExploit) return unchanged;
        const toTest = keys[0] + this.opts.stepsPerExploit;
        valid = steps.values().filter((c) => c.value !== null && c.step >= toTest).map((c) => c.value!);
      } else {
        const byTime = this.ordered(steps);
        const toTest = byTime[0].time + this.opts.secondsPerExploit!;
        valid = byTime.filter((c) => c.value !== null && c.time >= toTest).map((c) => c.value!);
      }
      if (!valid.length) return unchanged;
      values.push(this.averageOverSamples ? valid.reduce((a, b) => a + b, 0) / valid.length : valid[valid.length - 1]);
    }
    // Every member has a value: the lowest wins (NaN never does, unless all are NaN).
    let bestIdx = 0;
    values.forEach((v, i) => {
      const b = values[bestIdx];
      if (!Number.isNaN(v) && (Number.isNaN(b) || v < b)) bestIdx = i;
    });
    const from = this.ordered(cache.get(currentWorkers[bestIdx].generationId)!);
    const best = from[from.length - 1];
    let draws = st.draws;
    const next = currentWorkers.map(() => {
      const worker: ActiveWorker = { params: best.params, metaParams: this.mutateFn(best.metaParams, draws++), generationId: ctx.makeGenId(), step: best.step };
      addGeneration(cache, worker, best, ctx.now());
      return worker;
    });
    return [{ draws }, next];
  }
}
