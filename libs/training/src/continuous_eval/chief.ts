/**
 * The evaluation chief (reference `continuous_eval/run_eval_chief.py` with its
 * `task_group_server.TaskGroupChief`): watches a run's `checkpoints/params_<n>`, turns each new one
 * into a group of evaluation jobs (the evaluation set), hands jobs to eval workers, gathers their
 * results and, when a group is complete, writes its metrics (metrics.ts) to TensorBoard at the
 * checkpoint's outer step under `<chiefName>/<metric>`, plus a plot of the run's eval curves.
 * Transport-free: `lopt run --eval` drives it with worker threads (single_machine.ts), a learner
 * can serve it to `lopt eval-worker` processes.
 *
 * ```
 * <logdir>/<chiefName>/eval_chief_state.json   the chief's whole state (atomic rewrite after every change)
 *                     /params_<n>/             copy of the checkpoint being evaluated (the run prunes its own)
 *                     /results/events.out.tfevents.*.eval   the metrics (append-only)
 *                     /eval.png, eval.svg      final train loss per evaluation task vs outer step
 *                     /evaluation_set.json, task_names.txt
 * ```
 * Crash safety (reference: `_save_state`, write then rename): every change is saved before it
 * takes effect outside (a job handed out, a result accepted, a group written), so after a kill
 * the chief resumes with every accepted result; a worker that comes back under its id resumes
 * its job, and `releaseWorker` puts a dead worker's job back in the queue. TensorBoard records are
 * appended only after the state says the group is written, and on start the chief reconciles the
 * event file with the state (a torn last record is cut, a missing group is appended), so no
 * checkpoint's metrics are lost or written twice.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PARAMS_PREFIX, atomicWriteDir, atomicWriteFile, listIndices } from '@lopt/core';
import { encodeEvent, encodeRecord, decodeRecords, decodeEvent, RecordCorruptionError, FILE_VERSION } from '../tensorboard';
import { renderLossPlot, type Series } from '../plot';
import type { ContinuousEvalConfig, EvalTaskConfig } from './evaluation_set';
import { evalMetrics, type EvalJobResult } from './metrics';

/** File name of the chief's state in `<logdir>/<chiefName>/`, rewritten atomically after every change. */
export const CHIEF_STATE_FILE = 'eval_chief_state.json';

/** One evaluation of one checkpoint, as a worker receives it. */
export interface EvalJob {
  /** `<checkpoint index>/<task index>`. */
  id: string;
  /** Index n of `params_<n>`. */
  group: number;
  taskIndex: number;
  task: EvalTaskConfig;
  /** The outer step of the checkpoint's θ. */
  step: number;
  /** The chief's copy of the checkpoint's θ. */
  paramsPath: string;
  /** The run's learned optimizer, to rebuild θ's template. */
  learnedOptimizer: { name: string; config: Record<string, unknown> };
}

interface GroupState {
  index: number;
  step: number;
  paramsPath: string;
  tasks: EvalTaskConfig[];
  results: Array<EvalJobResult | null>;
}

/**
 * A checkpoint whose evaluation is complete and written to TensorBoard: its `params_<n>` index, the outer
 * step and the metrics by name.
 */
export interface WrittenGroup {
  index: number;
  step: number;
  metrics: Record<string, number>;
}

interface ChiefState {
  version: 1;
  chiefName: string;
  /** The newest `params_<n>` taken (evaluated or skipped); -1 before the first. */
  lastIndex: number;
  queue: EvalJob[];
  /** The job each worker holds (null: idle). */
  workers: Record<string, EvalJob | null>;
  groups: GroupState[];
  written: WrittenGroup[];
  skipped: number[];
  /** The results event file's name (fixed for the run). */
  eventsFile: string;
}

/**
 * Options of {@link EvalChief.open}: the run to watch, the `eval:` config and evaluation set, the learned
 * optimizer the checkpoints hold, and callbacks.
 */
export interface EvalChiefOptions {
  /** The training run's log directory (holds `checkpoints/`). */
  logdir: string;
  config: ContinuousEvalConfig;
  evaluationSet: EvalTaskConfig[];
  learnedOptimizer: { name: string; config: Record<string, unknown> };
  /** Workers expected (for skipCheckpointsIfBusy; default config.numWorkers). */
  numWorkers?: number;
  log?: (line: string) => void;
  /**
   * Called once per checkpoint after its metrics are in TensorBoard (e.g. for a population
   * controller, the reference's `write_result_to_population`); at most once: a kill between the
   * write and the call skips it, a restart does not repeat it.
   */
  onWritten?: (group: WrittenGroup) => void;
}

/**
 * The evaluation chief (reference `continuous_eval/run_eval_chief.py`, `TaskGroupChief` of
 * `task_group_server.py`): turns each new `params_<n>` checkpoint into a group of jobs, hands them to
 * workers, and writes each complete group's metrics to TensorBoard; its state survives a kill.
 */
export class EvalChief {
  readonly dir: string;
  readonly chiefName: string;
  private state!: ChiefState;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly log: (line: string) => void;

  private constructor(private readonly o: EvalChiefOptions) {
    this.chiefName = o.config.chiefName;
    this.dir = path.join(o.logdir, this.chiefName);
    this.log = o.log ?? (() => {});
  }

  /** Opens the chief of `logdir` (resuming its state file when there is one). */
  static async open(o: EvalChiefOptions): Promise<EvalChief> {
    if (!o.evaluationSet.length) throw new Error('continuous eval: the evaluation set is empty (eval.tasks and the experiment name no task)');
    const c = new EvalChief(o);
    await c.restore();
    return c;
  }

  private get statePath(): string {
    return path.join(this.dir, CHIEF_STATE_FILE);
  }

  private get resultsDir(): string {
    return path.join(this.dir, 'results');
  }

  /** Serialises every operation: message handlers interleave at their awaits. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async save(): Promise<void> {
    await atomicWriteFile(this.statePath, JSON.stringify(this.state));
  }

  private async restore(): Promise<void> {
    fs.mkdirSync(path.join(this.dir, 'results'), { recursive: true });
    if (fs.existsSync(this.statePath)) {
      try {
        this.state = JSON.parse(fs.readFileSync(this.statePath, 'utf8'));
      } catch (e) {
        throw new Error(`continuous eval: cannot read ${this.statePath} (${(e as Error).message}); move it aside to start the evaluation over`);
      }
      if (this.state.version !== 1) throw new Error(`continuous eval: ${this.statePath} has version ${this.state.version}, expected 1`);
      this.log(`continuous eval: resuming ${this.chiefName} (${this.state.written.length} checkpoints written, ${this.state.groups.length} in progress)`);
    } else {
      const secs = Math.floor(Date.now() / 1000);
      this.state = {
        version: 1,
        chiefName: this.chiefName,
        lastIndex: -1,
        queue: [],
        workers: {},
        groups: [],
        written: [],
        skipped: [],
        eventsFile: `events.out.tfevents.${secs}.${os.hostname()}.${this.chiefName}.eval`,
      };
    }
    await atomicWriteFile(path.join(this.dir, 'evaluation_set.json'), JSON.stringify(this.o.evaluationSet, null, 2) + '\n');
    await atomicWriteFile(path.join(this.dir, 'task_names.txt'), JSON.stringify(this.o.evaluationSet.map((t) => t.name)));
    await this.save();
    this.reconcileEvents();
    // copies of checkpoints no group refers to any more (a crash between writing and removing)
    const live = new Set(this.state.groups.map((g) => g.index));
    for (const i of listIndices(this.dir, 'params')) if (!live.has(i)) fs.rmSync(path.join(this.dir, `${PARAMS_PREFIX}${i}`), { recursive: true, force: true });
    // temporaries of writes a kill interrupted (atomicWriteDir's `.tmp-*`, atomicWriteFile's `.<name>.tmp-*`)
    for (const name of fs.readdirSync(this.dir)) if (/^\.(tmp-|.*\.tmp-)/.test(name)) fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
    await this.writePlot();
  }

  // ---- TensorBoard ----------------------------------------------------------------------------

  private groupEvent(g: WrittenGroup): Buffer {
    return encodeRecord(
      encodeEvent({
        wall_time: Date.now() / 1000,
        step: g.step,
        summary: { value: Object.entries(g.metrics).map(([k, v]) => ({ tag: `${this.chiefName}/${k}`, simple_value: v })) },
      }),
    );
  }

  private appendEvents(records: Buffer[]): void {
    const file = path.join(this.resultsDir, this.state.eventsFile);
    const fresh = !fs.existsSync(file);
    const fd = fs.openSync(file, 'a');
    try {
      const head = fresh ? [encodeRecord(encodeEvent({ wall_time: Date.now() / 1000, step: 0, file_version: FILE_VERSION }))] : [];
      const data = Buffer.concat([...head, ...records]);
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Makes the event file hold exactly the written groups: cuts a torn tail, appends what is missing. */
  private reconcileEvents(): void {
    const file = path.join(this.resultsDir, this.state.eventsFile);
    const present = new Set<number>();
    if (fs.existsSync(file)) {
      let buf = fs.readFileSync(file);
      let records: Uint8Array[];
      try {
        records = decodeRecords(buf, file);
      } catch (e) {
        if (!(e instanceof RecordCorruptionError)) throw e;
        // a record torn by a kill mid-append: everything before it is whole
        fs.truncateSync(file, e.offset);
        buf = buf.subarray(0, e.offset);
        records = decodeRecords(buf, file);
        this.log(`continuous eval: cut a torn record at byte ${e.offset} of ${file}`);
      }
      for (const r of records) {
        const ev = decodeEvent(r);
        const ck = ev.summary?.value.find((v) => v.tag === `${this.chiefName}/checkpoint`);
        if (ck?.simple_value !== undefined) present.add(ck.simple_value);
      }
    }
    const missing = this.state.written.filter((g) => !present.has(g.index));
    if (missing.length || !fs.existsSync(file)) this.appendEvents(missing.map((g) => this.groupEvent(g)));
  }

  private async writePlot(): Promise<void> {
    const w = [...this.state.written].sort((a, b) => a.step - b.step);
    if (!w.length) return;
    // one line per evaluation task: the mean over its seeds of the final train loss
    const byTask = new Map<string, string[]>();
    for (const t of this.o.evaluationSet) {
      const base = t.name.replace(/__\d+$/, '');
      byTask.set(base, [...(byTask.get(base) ?? []), t.name]);
    }
    const series: Series[] = [...byTask.entries()].map(([base, names]) => {
      const pts = w
        .map((g) => ({ x: g.step, ys: names.map((n) => g.metrics[`${n}/nonorm_last_loss`]).filter((v) => v !== undefined) }))
        .filter((p) => p.ys.length);
      return { name: base, xs: pts.map((p) => p.x), ys: pts.map((p) => p.ys.reduce((a, b) => a + b, 0) / p.ys.length) };
    });
    const seeds = Math.max(...[...byTask.values()].map((n) => n.length));
    const plot = renderLossPlot({
      series,
      title: `${this.chiefName}: final train loss of fresh tasks trained with θ (mean of ${seeds} seed${seeds > 1 ? 's' : ''})`,
      xLabel: 'outer step',
      yLabel: 'train loss after training',
    });
    await atomicWriteFile(path.join(this.dir, 'eval.svg'), plot.svg);
    await atomicWriteFile(path.join(this.dir, 'eval.png'), plot.png);
  }

  // ---- checkpoints ----------------------------------------------------------------------------

  /**
   * Takes the newest `params_<n>` if it is newer than the last one taken (the reference's
   * `monitor_checkpoint_dir` with `only_return_latest`) and adds its jobs, unless the workers are
   * busy and `skipCheckpointsIfBusy` (then it is skipped; `force` evaluates it anyway). Resolves to
   * the index added, or null.
   */
  poll(opts: { force?: boolean } = {}): Promise<number | null> {
    return this.exclusive(async () => {
      const ckDir = path.join(this.o.logdir, 'checkpoints');
      const idx = listIndices(ckDir, 'params');
      const n = idx[idx.length - 1];
      if (n === undefined || n <= this.state.lastIndex) return null;
      const src = path.join(ckDir, `${PARAMS_PREFIX}${n}`);
      const copy = path.join(this.dir, `${PARAMS_PREFIX}${n}`);
      const busy = this.state.queue.length > 0 || this.activeWorkers() / (this.o.numWorkers ?? this.o.config.numWorkers) > 0.99;
      if (busy && this.o.config.skipCheckpointsIfBusy && !opts.force) {
        this.state.lastIndex = n;
        this.state.skipped.push(n);
        await this.save();
        this.log(`continuous eval: skipping ${PARAMS_PREFIX}${n} (eval workers busy)`);
        return null;
      }
      let step: number;
      try {
        // copy first: the run prunes its old checkpoints while they are evaluated
        if (!fs.existsSync(copy)) {
          await atomicWriteDir(copy, (tmp) => {
            for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(tmp, f));
          });
        }
        step = JSON.parse(fs.readFileSync(path.join(copy, 'meta.json'), 'utf8')).step;
      } catch (e) {
        // pruned by the run before we could copy it: a newer one exists, take that next time
        this.state.lastIndex = n;
        this.state.skipped.push(n);
        await this.save();
        this.log(`continuous eval: cannot take ${src} (${(e as Error).message}); skipped`);
        return null;
      }
      const tasks = this.o.evaluationSet;
      const jobs: EvalJob[] = tasks.map((task, i) => ({
        id: `${n}/${i}`,
        group: n,
        taskIndex: i,
        task,
        step,
        paramsPath: copy,
        learnedOptimizer: this.o.learnedOptimizer,
      }));
      this.state.lastIndex = n;
      this.state.groups.push({ index: n, step, paramsPath: copy, tasks, results: tasks.map(() => null) });
      this.state.queue.push(...jobs);
      await this.save();
      this.log(`continuous eval: ${jobs.length} jobs for ${PARAMS_PREFIX}${n} (outer step ${step})`);
      return n;
    });
  }

  // ---- workers --------------------------------------------------------------------------------

  private activeWorkers(): number {
    return Object.values(this.state.workers).filter((j) => j !== null).length;
  }

  /** The job `workerId` holds (a restarted worker resumes it), else the next queued one, else null. */
  getWork(workerId: string): Promise<EvalJob | null> {
    return this.exclusive(async () => {
      const held = this.state.workers[workerId];
      if (held) return held;
      const job = this.state.queue.shift();
      if (!job) return null;
      this.state.workers[workerId] = job;
      await this.save();
      return job;
    });
  }

  /** Records a job's result (a duplicate or stale one is ignored) and writes finished groups. */
  finishWork(workerId: string, jobId: string, result: EvalJobResult): Promise<boolean> {
    return this.exclusive(async () => {
      if (this.state.workers[workerId]?.id === jobId) this.state.workers[workerId] = null;
      const [gi, ti] = jobId.split('/').map(Number);
      const g = this.state.groups.find((x) => x.index === gi);
      if (!g || ti >= g.results.length || g.results[ti] !== null) {
        await this.save();
        return false;
      }
      // NaN as null: the state file is JSON
      g.results[ti] = JSON.parse(JSON.stringify(result));
      // another worker may still hold or queue the same job (released, then its owner came back)
      this.state.queue = this.state.queue.filter((j) => j.id !== jobId);
      for (const [w, j] of Object.entries(this.state.workers)) if (j?.id === jobId) this.state.workers[w] = null;
      await this.save();
      await this.writeFinished();
      return true;
    });
  }

  /** A worker that will not come back: its job goes back to the front of the queue. */
  releaseWorker(workerId: string): Promise<void> {
    return this.exclusive(async () => {
      const job = this.state.workers[workerId];
      delete this.state.workers[workerId];
      if (job && !this.state.queue.some((j) => j.id === job.id) && !Object.values(this.state.workers).some((j) => j?.id === job.id)) {
        this.state.queue.unshift(job);
      }
      await this.save();
    });
  }

  private async writeFinished(): Promise<void> {
    for (const g of [...this.state.groups]) {
      if (g.results.some((r) => r === null)) continue;
      const results = g.results as EvalJobResult[];
      for (const [i, r] of results.entries()) if (r.error) this.log(`continuous eval: ${g.tasks[i].name} on ${PARAMS_PREFIX}${g.index} failed: ${r.error}`);
      const w: WrittenGroup = { index: g.index, step: g.step, metrics: evalMetrics(g.index, g.tasks, results) };
      this.state.groups = this.state.groups.filter((x) => x !== g);
      this.state.written.push(w);
      await this.save();
      this.appendEvents([this.groupEvent(w)]);
      fs.rmSync(g.paramsPath, { recursive: true, force: true });
      this.o.onWritten?.(w);
      this.log(`continuous eval: wrote ${PARAMS_PREFIX}${g.index} (outer step ${g.step}): train/nonorm_last_loss ${w.metrics['train/nonorm_last_loss']}`);
      await this.writePlot();
    }
  }

  // ---- status ---------------------------------------------------------------------------------

  /** Workers that hold a job (from the state file too: workers of an earlier process). */
  get holders(): string[] {
    return Object.entries(this.state.workers)
      .filter(([, j]) => j !== null)
      .map(([w]) => w);
  }

  /** Jobs queued or held by a worker. */
  get pendingJobs(): number {
    return this.state.queue.length + this.activeWorkers();
  }

  /** Jobs queued that no worker holds yet. */
  get queuedJobs(): number {
    return this.state.queue.length;
  }

  /** Checkpoints taken but not yet written. */
  get pendingGroups(): number {
    return this.state.groups.length;
  }

  get written(): readonly WrittenGroup[] {
    return this.state.written;
  }

  get skipped(): readonly number[] {
    return this.state.skipped;
  }

  get resultsFile(): string {
    return path.join(this.resultsDir, this.state.eventsFile);
  }

  /** Waits for operations in flight. */
  async settle(): Promise<void> {
    await this.exclusive(async () => undefined);
  }
}
