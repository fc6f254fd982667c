/**
 * Truncation schedules (reference `outer_trainers/truncation_schedule.py`): how long each inner
 * trajectory runs before it is reset.
 *
 * Stateless configuration with the reference's API for ONE task: `init(key, outerState)` and
 * `nextState(state, step, key, outerState) -> [state, isDone]`, where `step` is the post-update
 * inner step count. The state is `{length}` (a plain number; the truncated step stacks the N
 * tasks' lengths into the `[N]` tensor of its state) or `{}` for NeverEnding.
 */
import { z } from 'zod';
import { parseOptions, random, PRNGKey, registerPlugin } from '@lopt/core';

/** The outer-loop position schedules may depend on (the reference's `outer_state`, learned_optimization/outer_trainers/gradient_learner.py). */
export interface OuterState {
  outerIteration: number;
}

/** One task's truncation: the length of its current unroll (absent for never-ending schedules). */
export interface TruncationState {
  length?: number;
}

/** When a task's unroll ends and restarts (learned_optimization/outer_trainers/truncation_schedule.py, `TruncationSchedule`). */
export interface TruncationSchedule {
  readonly name: string;
  init(key: PRNGKey, outerState: OuterState | null): TruncationState;
  nextState(state: TruncationState, step: number, key: PRNGKey, outerState: OuterState | null): [TruncationState, boolean];
}

/** A value that may follow the outer iteration (the reference's ScalarSchedule). */
export type ScalarSchedule = number | ((step: number, maxSteps?: number) => number);

function evalSchedule(s: ScalarSchedule, outerState: OuterState | null, maxSteps?: number): number {
  return typeof s === 'number' ? s : s(outerState?.outerIteration ?? 0, maxSteps);
}

/** Every unroll has the same length (learned_optimization/outer_trainers/truncation_schedule.py, `ConstantTruncationSchedule`). */
export class ConstantTruncationSchedule implements TruncationSchedule {
  readonly name = 'ConstantTruncationSchedule';
  constructor(readonly totalLength: number) {
    if (!(Number.isInteger(totalLength) && totalLength > 0)) throw new RangeError(`totalLength must be a positive integer, got ${totalLength}`);
  }
  init(): TruncationState {
    return { length: this.totalLength };
  }
  nextState(state: TruncationState, step: number): [TruncationState, boolean] {
    return [state, step >= this.totalLength];
  }
}

/** length = floor(exp(U[ln min, ln max))) in float32, re-sampled with this step's key the moment a trajectory ends. */
export class LogUniformLengthSchedule implements TruncationSchedule {
  readonly name = 'LogUniformLengthSchedule';
  readonly minLength: ScalarSchedule;
  readonly maxLength: ScalarSchedule;
  constructor(opts: { minLength: ScalarSchedule; maxLength: ScalarSchedule }) {
    this.minLength = opts.minLength;
    this.maxLength = opts.maxLength;
    if (typeof this.minLength === 'number' && typeof this.maxLength === 'number' && !(this.minLength > 0 && this.maxLength > this.minLength)) {
      throw new RangeError(`LogUniformLengthSchedule needs 0 < minLength < maxLength, got minLength=${this.minLength}, maxLength=${this.maxLength}`);
    }
  }
  init(key: PRNGKey, outerState: OuterState | null): TruncationState {
    const lo = Math.fround(Math.log(evalSchedule(this.minLength, outerState)));
    const hi = Math.fround(Math.log(evalSchedule(this.maxLength, outerState)));
    const u = random.uniformArray(key, 1, lo, hi)[0];
    return { length: Math.trunc(Math.fround(Math.exp(u))) };
  }
  nextState(state: TruncationState, step: number, key: PRNGKey, outerState: OuterState | null): [TruncationState, boolean] {
    const isDone = step >= (state.length as number);
    return [isDone ? this.init(key, outerState) : state, isDone];
  }
}

/** Unrolls never end (learned_optimization/outer_trainers/truncation_schedule.py, `NeverEndingTruncationSchedule`). */
export class NeverEndingTruncationSchedule implements TruncationSchedule {
  readonly name = 'NeverEndingTruncationSchedule';
  init(): TruncationState {
    return {};
  }
  nextState(state: TruncationState): [TruncationState, boolean] {
    return [state, false];
  }
}

const positiveInt = z.number().int().positive();
/** ScheduledTruncationSchedule's options besides the schedule, with their defaults. */
const ScheduledOptions = z
  .object({ maxSteps: positiveInt.optional(), std: z.number().nonnegative().default(0), minLength: positiveInt.default(10) })
  .strict();

/** length = schedule(outerIteration, maxSteps) (+ optional int32(N(0,1)·std), clamped below at minLength). */
export class ScheduledTruncationSchedule implements TruncationSchedule {
  readonly name = 'ScheduledTruncationSchedule';
  readonly maxSteps?: number;
  readonly std: number;
  readonly minLength: number;
  constructor(readonly schedule: ScalarSchedule, opts: z.input<typeof ScheduledOptions> = {}) {
    const c = parseOptions(ScheduledOptions, opts, 'ScheduledTruncationSchedule');
    this.maxSteps = c.maxSteps;
    this.std = c.std;
    this.minLength = c.minLength;
  }
  init(key: PRNGKey, outerState: OuterState | null): TruncationState {
    let length = Math.trunc(evalSchedule(this.schedule, outerState, this.maxSteps));
    if (this.std > 0) {
      length += Math.trunc(random.normalArray(key, 1)[0] * this.std);
      length = Math.max(length, this.minLength);
    }
    return { length };
  }
  nextState(state: TruncationState, step: number, key: PRNGKey, outerState: OuterState | null): [TruncationState, boolean] {
    const isDone = step >= (state.length as number);
    return [isDone ? this.init(key, outerState) : state, isDone];
  }
}

/** A piecewise-linear ScalarSchedule through (xs[i], ys[i]), constant outside. */
export function piecewiseLinear(xs: number[], ys: number[]): (step: number) => number {
  if (xs.length !== ys.length || xs.length === 0) throw new RangeError('piecewiseLinear needs equal, non-empty xs and ys');
  return (step: number) => {
    if (step <= xs[0]) return ys[0];
    for (let i = 1; i < xs.length; i++) {
      if (step <= xs[i]) return ys[i - 1] + ((step - xs[i - 1]) / (xs[i] - xs[i - 1])) * (ys[i] - ys[i - 1]);
    }
    return ys[ys.length - 1];
  };
}

registerPlugin({
  kind: 'truncation_schedule',
  name: 'ConstantTruncationSchedule',
  description: 'every trajectory has the same fixed length',
  schema: z.object({ totalLength: positiveInt }).strict(),
  create: (c: { totalLength: number }) => new ConstantTruncationSchedule(c.totalLength),
  cls: ConstantTruncationSchedule,
});
registerPlugin({
  kind: 'truncation_schedule',
  name: 'LogUniformLengthSchedule',
  description: 'length = floor(exp(U[ln min, ln max))), re-sampled at every reset',
  schema: z
    .object({ minLength: positiveInt, maxLength: positiveInt })
    .strict()
    .refine((c) => c.maxLength > c.minLength, { message: 'maxLength must be greater than minLength', path: ['maxLength'] }),
  create: (c: { minLength: number; maxLength: number }) => new LogUniformLengthSchedule(c),
  cls: LogUniformLengthSchedule,
});
registerPlugin({
  kind: 'truncation_schedule',
  name: 'NeverEndingTruncationSchedule',
  description: 'never resets (for FullES / FullGrad, which manage lengths themselves)',
  schema: z.object({}).strict(),
  create: () => new NeverEndingTruncationSchedule(),
  cls: NeverEndingTruncationSchedule,
});
registerPlugin({
  kind: 'truncation_schedule',
  name: 'ScheduledTruncationSchedule',
  description: 'length piecewise-linear in the outer iteration, with optional noise',
  schema: ScheduledOptions.extend({ steps: z.array(z.number()).min(1), lengths: z.array(positiveInt).min(1) }),
  create: ({ steps, lengths, ...opts }) => new ScheduledTruncationSchedule(piecewiseLinear(steps, lengths), opts),
  cls: ScheduledTruncationSchedule,
});
