/**
 * Continuous evaluation beside training in one process (`lopt run --eval`): the chief in the main
 * thread, `eval.numWorkers` eval workers in worker threads. The chief looks for new checkpoints
 * every `eval.pollSeconds` and whenever the run reports one (`onCheckpoint`); an idle thread gets
 * the next job. A thread that dies is started again under the same worker id and resumes its job
 * (the reference's `get_work` for a restarted worker); a job that kills its thread three times is
 * recorded as failed instead of looping.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import type { MetaTrainingConfig } from '../experiment_config';
import { tsBootstrap } from '../parallel/threaded_pes';
import { EvalChief, type EvalJob, type WrittenGroup } from './chief';
import { ContinuousEvalSchema, evaluationSet } from './evaluation_set';
import type { EvalThreadReply } from './eval_worker_thread';

/**
 * Options of {@link ContinuousEval.start}: the run's log directory and config, and the worker threads'
 * backend and plugins.
 */
export interface ContinuousEvalOptions {
  /** The run's log directory. */
  logdir: string;
  /** The run's config; its `eval` section (defaults when absent) says what to evaluate. */
  config: MetaTrainingConfig;
  /** tf.js backend of the worker threads (default: this thread's). */
  backend?: string;
  /** Plugin packages the threads load (those named with --plugin). */
  plugins?: string[];
  log?: (line: string) => void;
  /** Called once per checkpoint written (EvalChiefOptions.onWritten). */
  onWritten?: (group: WrittenGroup) => void;
  /** Called once when the evaluation fails for good (e.g. a worker thread that cannot start), for callers waiting on `onWritten`. */
  onFailure?: (error: Error) => void;
}

interface Slot {
  id: string;
  worker: Worker | null;
  job: EvalJob | null;
  ready: boolean;
  /** Threads of this slot that exited before they were ready, in a row. */
  startFailures: number;
  lastError: string;
}

const MAX_CRASHES_PER_JOB = 3;
const MAX_START_FAILURES = 3;

/**
 * Continuous evaluation inside one process (`lopt run --eval`): an {@link EvalChief} in this thread and
 * `eval.numWorkers` eval workers in worker threads, restarted when they die.
 */
export class ContinuousEval {
  readonly slots: Slot[] = [];
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly crashes = new Map<string, number>();
  private waiters: Array<() => void> = [];
  private readonly log: (line: string) => void;
  private failure: Error | null = null;

  private constructor(
    readonly chief: EvalChief,
    private readonly o: ContinuousEvalOptions,
    readonly numWorkers: number,
  ) {
    this.log = o.log ?? (() => {});
  }

  /** Opens (or resumes) the chief of `logdir` and starts the worker threads. */
  static async start(o: ContinuousEvalOptions): Promise<ContinuousEval> {
    const cfg = o.config.eval ?? ContinuousEvalSchema.parse({});
    const set = evaluationSet(cfg, o.config.tasks);
    const chief = await EvalChief.open({ logdir: o.logdir, config: cfg, evaluationSet: set, learnedOptimizer: o.config.learnedOptimizer, log: o.log, onWritten: o.onWritten });
    const ce = new ContinuousEval(chief, o, cfg.numWorkers);
    // jobs of threads an earlier process had and this one will not (fewer eval.numWorkers) go back to the queue
    const ids = new Set(Array.from({ length: cfg.numWorkers }, (_, i) => `thread-${i}`));
    for (const w of chief.holders) if (!ids.has(w)) await chief.releaseWorker(w);
    for (let i = 0; i < cfg.numWorkers; i++) {
      const slot: Slot = { id: `thread-${i}`, worker: null, job: null, ready: false, startFailures: 0, lastError: '' };
      ce.slots.push(slot);
      ce.spawn(slot);
    }
    ce.timer = setInterval(() => ce.onCheckpoint(), cfg.pollSeconds * 1000);
    ce.timer.unref();
    return ce;
  }

  private spawn(slot: Slot): void {
    const fromTs = __filename.endsWith('.ts');
    const entry = path.join(__dirname, fromTs ? 'eval_worker_thread.ts' : 'eval_worker_thread.js');
    if (!fs.existsSync(entry)) throw new Error(`eval worker script not found: ${entry}`);
    const workerData = { backend: this.o.backend ?? tf.getBackend(), plugins: this.o.plugins ?? [], random: random.getConfig() };
    const w = fromTs ? new Worker(tsBootstrap(entry, path.resolve(__dirname, '../../../..')), { eval: true, workerData }) : new Worker(entry, { workerData });
    slot.worker = w;
    slot.ready = false;
    w.on('message', (m: EvalThreadReply) => void this.onMessage(slot, w, m).catch((e) => this.fail(e)));
    w.on('error', (e) => {
      slot.lastError = e.message;
      this.log(`continuous eval: ${slot.id} failed: ${e.message}`);
    });
    w.on('exit', () => this.onExit(slot, w));
  }

  private async onMessage(slot: Slot, w: Worker, m: EvalThreadReply): Promise<void> {
    if (slot.worker !== w) return;
    if (m.op === 'ready') {
      slot.ready = true;
      slot.startFailures = 0;
      await this.dispatch();
    } else if (m.op === 'done' || (m.op === 'error' && m.jobId)) {
      const jobId = m.jobId!;
      slot.job = null;
      const result = m.op === 'done' ? m.result : { step: 0, totalTime: 0, curves: {}, error: m.error };
      await this.chief.finishWork(slot.id, jobId, result);
      this.crashes.delete(jobId);
      this.wake();
      await this.dispatch();
    } else {
      slot.lastError = m.error;
      this.log(`continuous eval: ${slot.id} could not start: ${m.error}`);
    }
  }

  private onExit(slot: Slot, w: Worker): void {
    if (slot.worker !== w) return;
    const wasReady = slot.ready;
    slot.worker = null;
    slot.ready = false;
    if (this.closed) return;
    // a thread that cannot start would be restarted forever
    if (!wasReady && ++slot.startFailures >= MAX_START_FAILURES) {
      this.fail(new Error(`eval worker ${slot.id} failed to start ${slot.startFailures} times: ${slot.lastError || 'it exited'}`));
      return;
    }
    const job = slot.job;
    slot.job = null;
    void (async () => {
      if (job) {
        const n = (this.crashes.get(job.id) ?? 0) + 1;
        this.crashes.set(job.id, n);
        this.log(`continuous eval: ${slot.id} died during ${job.task.name} on params_${job.group}; ${n < MAX_CRASHES_PER_JOB ? 'redoing it' : 'giving up on it'}`);
        if (n >= MAX_CRASHES_PER_JOB) {
          await this.chief.finishWork(slot.id, job.id, { step: 0, totalTime: 0, curves: {}, error: `its eval worker died ${n} times` });
          this.wake();
        }
      }
      // same id: the chief hands the new thread the job the dead one held
      if (!this.closed) this.spawn(slot);
    })().catch((e) => this.fail(e));
  }

  /** Gives every idle, ready thread its next job. */
  private async dispatch(): Promise<void> {
    for (const slot of this.slots) {
      if (this.closed || !slot.ready || slot.job || !slot.worker) continue;
      const job = await this.chief.getWork(slot.id);
      if (!job || !slot.worker || slot.job) continue;
      slot.job = job;
      slot.worker.postMessage({ op: 'run', job });
    }
  }

  /** Looks for a new checkpoint now (the run just wrote one). */
  onCheckpoint(opts: { force?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.chief
      .poll(opts)
      .then(() => this.dispatch())
      .catch((e) => this.fail(e));
  }

  private fail(e: unknown): void {
    const first = this.failure === null;
    this.failure ??= e instanceof Error ? e : new Error(String(e));
    this.log(`continuous eval: ${this.failure.message}`);
    if (first) this.o.onFailure?.(this.failure);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /**
   * The run ended: takes its newest checkpoint (even when workers are busy) and resolves when every
   * taken checkpoint is written, or when `signal` aborts (the rest stays in the state file).
   */
  async finish(signal?: AbortSignal): Promise<void> {
    await this.onCheckpoint({ force: true });
    await this.dispatch();
    while (this.chief.pendingGroups > 0 && !signal?.aborted && !this.failure) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    if (this.failure) throw this.failure;
  }

  /** Stops the threads (a job in progress is redone by the next `start`). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.chief.settle();
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
    this.wake();
  }
}
