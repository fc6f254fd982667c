/**
 * Reference `population/mutators/fixed_schedule.py` (`FixedSchedule`): one member whose
 * hyper-parameters follow a schedule `{ step: metaParams }`. After an evaluation at step s, the
 * earliest not yet applied entry with key <= s starts a new generation with its hyper-parameters
 * from the member's newest checkpoint (one entry per evaluation).
 *
 * Unlike the reference, which keeps the remaining schedule in the mutator object (lost when the
 * controller restarts), the entries still to apply are the mutator's state, so they survive in the
 * state file.
 */
import { type ActiveWorker, type Cache, type Mutator, type MutatorContext, addGeneration } from '../population';

/** Steps of the schedule still to apply, in order, with their hyper-parameters. */
export type FixedScheduleState = Array<[number, unknown]>;

/**
 * A mutator that sets one member's hyper-parameters by a fixed `{step: metaParams}` schedule (reference
 * `population/mutators/fixed_schedule.py`, `FixedSchedule`).
 */
export class FixedSchedule implements Mutator<FixedScheduleState> {
  readonly name = 'FixedSchedule';
  private readonly entries: FixedScheduleState;

  constructor(schedule: Readonly<Record<string | number, unknown>>) {
    this.entries = Object.entries(schedule).map(([k, v]) => {
      const step = Number(k);
      if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`FixedSchedule: schedule key '${k}' is not a step (an integer >= 0)`);
      return [step, v] as [number, unknown];
    });
    this.entries.sort((a, b) => a[0] - b[0]);
  }

  init(): FixedScheduleState {
    return this.entries.map(([k, v]) => [k, structuredClone(v)]);
  }

  update(state: FixedScheduleState, currentWorkers: readonly ActiveWorker[], cache: Cache, ctx: MutatorContext): [FixedScheduleState, ActiveWorker[]] {
    if (currentWorkers.length !== 1) throw new RangeError(`FixedSchedule drives a single member, the population has ${currentWorkers.length}`);
    const last = cache.get(currentWorkers[0].generationId)?.last();
    if (!last) return [state, [...currentWorkers]];
    const i = state.findIndex(([k]) => k <= last.step);
    if (i < 0) return [state, [...currentWorkers]];
    // A new generation with the scheduled hyper-parameters, from the same weights.
    const worker: ActiveWorker = { params: last.params, metaParams: state[i][1], generationId: ctx.makeGenId(), step: last.step };
    addGeneration(cache, worker, last, ctx.now());
    return [state.filter((_, j) => j !== i), [worker]];
  }
}
