/**
 * The learner's gradient buffers (reference `distributed.py`, `AsyncLearner` and `SyncLearner`),
 * pure logic with no network and no tensors.
 *
 * AsyncGradientBuffer: a gradient computed at step `s` is valid iff `0 <= current - s <= staleness`;
 * valid ones are appended FIFO while the buffer holds fewer than `bufferSize` (default 5 x batch
 * size) entries, otherwise dropped (the reference's `block_when_buffer_full=False`). `take()` gives
 * the first `batchSize` valid entries; `advance(step)` moves to a new step and purges the entries
 * that became stale, counting them.
 *
 * SyncGradientSlots: one slot per worker; only `step == current` is accepted; a worker that already
 * submitted for the current step must wait for the next one; ready when every slot is full.
 */

export type PutOutcome = 'accepted' | 'stale' | 'future' | 'full' | 'duplicate' | 'unknown_worker';

/**
 * A gradient held by the learner: the worker that sent it, the step of the θ it was computed at, and the
 * gradient.
 */
export interface Entry<T> {
  workerId: number;
  step: number;
  grad: T;
}

/** The gradients one learner update uses, and the buffer size before they were taken. */
export interface Batch<T> {
  entries: Entry<T>[];
  /** buffer size before the batch was taken */
  bufferSize: number;
}

/**
 * What the learner puts worker gradients through: {@link AsyncGradientBuffer} or {@link SyncGradientSlots}.
 */
export interface GradientGate<T> {
  readonly current: number;
  readonly batchSize: number;
  put(workerId: number, step: number, grad: T): PutOutcome;
  /** May this worker get weights now (sync: not until the next step once it submitted). */
  canGetWeights(workerId: number): boolean;
  ready(): boolean;
  size(): number;
  take(): Batch<T>;
  /** Moves to `step`; returns the entries removed because they became stale. */
  advance(step: number): Entry<T>[];
  removedStaleTotal: number;
  droppedTotal: number;
}

/**
 * The async learner's buffer (reference `distributed.py`, `AsyncLearner`): accepts gradients at most
 * `staleness` steps old, up to `bufferSize`, and is ready once `batchSize` valid ones are held.
 */
export class AsyncGradientBuffer<T> implements GradientGate<T> {
  readonly batchSize: number;
  readonly staleness: number;
  readonly bufferSize: number;
  current: number;
  private entries: Entry<T>[] = [];
  /** gradients purged by `advance` or dropped on arrival for being stale */
  removedStaleTotal = 0;
  /** dropped because the buffer was full */
  droppedTotal = 0;

  constructor(opts: { batchSize: number; staleness: number; bufferSize?: number; current?: number }) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new Error(`batchSize must be an integer >= 1, got ${opts.batchSize}`);
    if (!(Number.isInteger(opts.staleness) && opts.staleness >= 0)) throw new Error(`staleness must be an integer >= 0, got ${opts.staleness}`);
    this.batchSize = opts.batchSize;
    this.staleness = opts.staleness;
    this.bufferSize = opts.bufferSize ?? 5 * opts.batchSize;
    if (this.bufferSize < this.batchSize) throw new Error(`bufferSize (${this.bufferSize}) must be >= batchSize (${this.batchSize})`);
    this.current = opts.current ?? 0;
  }

  isValid(step: number): boolean {
    return this.current >= step && this.current - step <= this.staleness;
  }

  put(workerId: number, step: number, grad: T): PutOutcome {
    if (step > this.current) return 'future';
    if (!this.isValid(step)) {
      this.removedStaleTotal++;
      return 'stale';
    }
    if (this.entries.length >= this.bufferSize) {
      this.droppedTotal++;
      return 'full';
    }
    this.entries.push({ workerId, step, grad });
    return 'accepted';
  }

  canGetWeights(): boolean {
    return true;
  }

  ready(): boolean {
    return this.entries.filter((e) => this.isValid(e.step)).length >= this.batchSize;
  }

  size(): number {
    return this.entries.length;
  }

  take(): Batch<T> {
    const bufferSize = this.entries.length;
    const valid = this.entries.filter((e) => this.isValid(e.step));
    if (valid.length < this.batchSize) throw new Error(`take(): ${valid.length} valid gradients, need ${this.batchSize}`);
    const taken = valid.slice(0, this.batchSize);
    const set = new Set(taken);
    this.entries = this.entries.filter((e) => !set.has(e));
    return { entries: taken, bufferSize };
  }

  advance(step: number): Entry<T>[] {
    this.current = step;
    const removed = this.entries.filter((e) => !this.isValid(e.step));
    this.entries = this.entries.filter((e) => this.isValid(e.step));
    this.removedStaleTotal += removed.length;
    return removed;
  }
}

/**
 * The sync learner's slots (reference `distributed.py`, `SyncLearner`): one gradient per worker for the
 * current step; ready when every worker has sent one.
 */
export class SyncGradientSlots<T> implements GradientGate<T> {
  readonly numWorkers: number;
  current: number;
  private slots: Array<Entry<T> | null>;
  /** workers that submitted for the current step (kept after `take` until `advance`) */
  private submitted = new Set<number>();
  removedStaleTotal = 0;
  droppedTotal = 0;

  constructor(opts: { numWorkers: number; current?: number }) {
    if (!(Number.isInteger(opts.numWorkers) && opts.numWorkers >= 1)) throw new Error(`numWorkers must be an integer >= 1, got ${opts.numWorkers}`);
    this.numWorkers = opts.numWorkers;
    this.current = opts.current ?? 0;
    this.slots = new Array(this.numWorkers).fill(null);
  }

  get batchSize(): number {
    return this.numWorkers;
  }

  put(workerId: number, step: number, grad: T): PutOutcome {
    if (!(Number.isInteger(workerId) && workerId >= 0 && workerId < this.numWorkers)) return 'unknown_worker';
    if (step > this.current) return 'future';
    if (step < this.current) {
      this.removedStaleTotal++;
      return 'stale';
    }
    if (this.submitted.has(workerId)) return 'duplicate';
    this.slots[workerId] = { workerId, step, grad };
    this.submitted.add(workerId);
    return 'accepted';
  }

  canGetWeights(workerId: number): boolean {
    return !this.submitted.has(workerId);
  }

  ready(): boolean {
    return this.slots.every((s) => s !== null);
  }

  size(): number {
    return this.slots.filter((s) => s !== null).length;
  }

  take(): Batch<T> {
    if (!this.ready()) throw new Error(`take(): ${this.size()} of ${this.numWorkers} workers submitted`);
    const entries = this.slots as Entry<T>[];
    this.slots = new Array(this.numWorkers).fill(null);
    return { entries, bufferSize: entries.length };
  }

  advance(step: number): Entry<T>[] {
    this.current = step;
    const removed = this.slots.filter((s): s is Entry<T> => s !== null);
    this.slots = new Array(this.numWorkers).fill(null);
    this.submitted.clear();
    this.removedStaleTotal += removed.length;
    return removed;
  }
}

/**
 * Learner metrics of one update (reference `outer_train.py`, `metrics_and_info_from_gradients`,
 * called by `train_learner`), computed against the post-update step.
 */
export function batchMetrics(newStep: number, batch: Batch<unknown>): Record<string, number> {
  const steps = batch.entries.map((e) => e.step);
  const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
  return {
    avg_staleness: newStep - mean,
    max_staleness: newStep - Math.min(...steps),
    buffer_size: batch.bufferSize,
    unique_workers: new Set(batch.entries.map((e) => e.workerId)).size,
  };
}
