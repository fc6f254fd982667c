/**
 * The learner of distributed meta-training (reference `outer_train.py`, `train_learner`): owns the
 * GradientLearner state, serves θ to workers, gathers their gradients through an async staleness
 * buffer or sync per-worker slots, applies them with `GradientLearner.update`, writes TensorBoard
 * scalars and checkpoints (learner state only, as the reference).
 *
 * Keys follow `MetaTrainer.step`: the update of step s uses `split(stepKey(s))[1]`, so a sync
 * learner with the workers of a `MetaTrainer` run reproduces its meta-loss trajectory.
 */
import { randomBytes } from 'crypto';
import * as tf from '@tensorflow/tfjs';
import { PyTree, random, toHostTree, treeDispose, treeLeavesWithPath, treeMap } from '@lopt/core';
import type { AggregatedGradient, GradientLearnerState } from '@lopt/estimators';
import { MetaTrainer } from '../meta_trainer';
import { CheckpointManager } from '../checkpoints';
import { SummaryWriter } from '../tensorboard';
import { ExperimentSpec } from './experiment';
import { AsyncGradientBuffer, GradientGate, SyncGradientSlots, batchMetrics } from './buffer';
import {
  ExperimentId,
  GradientRequest,
  PutReply,
  RpcError,
  Status,
  WeightsReply,
  WeightsRequest,
  WireTree,
  checkWireTree,
  countNonFinite,
  treeSignature,
  treeToWire,
  wireToTree,
} from './protocol';
import { CallContext, LearnerHandler } from './transport';

/** How a learner gathers gradients: `async` (staleness buffer) or `sync` (one per worker per step). */
export type LearnerMode = 'async' | 'sync';

/**
 * Options of a distributed learner: experiment, mode and its buffer sizes, workers, log directory, resume and
 * timings.
 */
export interface LearnerOptions {
  spec: ExperimentSpec;
  trainer?: MetaTrainer;
  mode?: LearnerMode;
  /** async: gradients per update (default 1) */
  batchSize?: number;
  /** async: max accepted `current - step` (default 1) */
  staleness?: number;
  /** sync: number of workers (ids 0..N-1); both modes: N for the per-worker key derivation */
  numWorkers?: number;
  /** TensorBoard + checkpoints; none without it */
  logdir?: string;
  resume?: boolean;
  /** sync: how long a blocked GetWorkerWeights waits before answering `wait` (default 5 s) */
  waitSeconds?: number;
  /** after the last step, keep answering `finished` this long so workers exit (default 5 s) */
  lingerSeconds?: number;
  log?: (line: string) => void;
  /** print a progress line every n steps (default: about 100 lines per run) */
  logEvery?: number;
  registry?: import('@lopt/core').Registry;
}

interface QueuedGrad {
  thetaGrads: WireTree;
  meanLoss: number;
  metrics: Record<string, number>;
}

/**
 * What a learner run did: final step, the loss of each update, the workers used, and counts of refused, stale
 * and duplicate gradients.
 */
export interface LearnerResult {
  step: number;
  /** mean meta-loss of each update, in order */
  losses: number[];
  /** every worker id whose gradient was used */
  workers: number[];
  rejectedMessages: number;
  removedStaleGrads: number;
  /** sync: gradients refused because the worker had already submitted one for this step (a resend) */
  duplicateGrads: number;
}

/**
 * The learner of distributed meta-training (reference `outer_train.py`, `train_learner`): serves θ to
 * workers, gathers their gradients (async or sync), updates, logs and checkpoints.
 */
export class DistributedLearner implements LearnerHandler {
  readonly spec: ExperimentSpec;
  readonly trainer: MetaTrainer;
  readonly mode: LearnerMode;
  readonly numWorkers: number;
  readonly experiment: ExperimentId;
  step = 0;
  finished = false;
  rejectedMessages = 0;
  /** sync-mode resends of a gradient for a step the worker already submitted (refused, counted) */
  duplicateGrads = 0;
  readonly contributors = new Set<number>();
  readonly losses: number[] = [];
  genId = '';
  private state: GradientLearnerState | null = null;
  private gate!: GradientGate<QueuedGrad>;
  private sig = new Map<string, number[]>();
  private thetaTemplate: PyTree = null;
  private cache: { step: number; theta: WireTree; modelState: WireTree | null; outerIteration: number } | null = null;
  private waiters = new Set<() => void>();
  private stopRequested = false;
  private ckpt: CheckpointManager | null = null;
  private writer: SummaryWriter | null = null;
  private elapsedBefore = 0;
  private readonly log: (line: string) => void;
  private lastSeen = new Map<number, number>();
  private toldFinished = new Set<number>();

  constructor(readonly opts: LearnerOptions) {
    this.spec = opts.spec;
    if (!opts.trainer && !opts.registry) throw new Error('DistributedLearner needs a trainer or a registry');
    this.trainer = opts.trainer ?? new MetaTrainer(opts.spec.config, opts.registry!);
    this.mode = opts.mode ?? 'async';
    const cfg = opts.spec.config;
    this.numWorkers = opts.numWorkers ?? (cfg.mode === 'learner-worker' ? cfg.numWorkers : 1);
    this.experiment = { name: opts.spec.name, configHash: opts.spec.hash };
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
  }

  get steps(): number {
    return this.spec.config.steps;
  }

  /** Initializes (or restores with `resume`) the learner state; writes checkpoint 0 on a fresh start. */
  async init(): Promise<void> {
    const cfg = this.spec.config;
    const [key1] = random.split(random.PRNGKey(cfg.seed));
    let state = await this.trainer.learner.init(key1);
    this.genId = randomBytes(6).toString('hex');
    if (this.opts.logdir) {
      this.ckpt = new CheckpointManager({
        dir: this.opts.logdir,
        keep: cfg.logging.keepCheckpoints,
        everySteps: cfg.logging.checkpointEverySteps,
        everySeconds: cfg.logging.checkpointEverySeconds,
      });
      if (this.opts.resume) {
        const restored = await this.ckpt.restoreLatest<GradientLearnerState>({ configHash: this.spec.hash });
        if (restored) {
          // every leaf's path, dtype and shape (the meta-optimizer's int32 counters stay int32 across updates)
          const spec = (t: PyTree) =>
            JSON.stringify(treeLeavesWithPath<unknown>(t).map(([p, l]) => [p, l instanceof tf.Tensor ? [l.dtype, l.shape] : typeof l]));
          if (spec(restored.state) !== spec(state)) {
            throw new Error(`checkpoint ${restored.path} does not match this experiment's learner state: expected ${spec(state)}, found ${spec(restored.state)}`);
          }
          treeDispose(state);
          state = restored.state;
          this.step = restored.step;
          this.elapsedBefore = restored.meta.elapsedTime;
          this.genId = String(restored.meta.extra?.genId ?? this.genId);
          this.log(`[learner] resumed from ${restored.path} at step ${this.step}`);
        } else {
          // as `lopt run --resume`: a resume with nothing to resume from is a mistake, not a fresh start
          throw new Error(`--resume: no checkpoint to resume from in ${this.ckpt.dir}`);
        }
      } else if (this.ckpt.latest() !== null) {
        this.log(`[learner] warning: ${this.ckpt.dir} already holds checkpoints; starting fresh (use --resume to continue from them)`);
      }
    } else if (this.opts.resume) {
      throw new Error('--resume needs --logdir (the checkpoints live there)');
    }
    this.state = state;
    const theta = this.trainer.learner.getMetaParams(state);
    this.thetaTemplate = theta;
    this.sig = treeSignature(theta);
    this.gate =
      this.mode === 'sync'
        ? new SyncGradientSlots<QueuedGrad>({ numWorkers: this.numWorkers, current: this.step })
        : new AsyncGradientBuffer<QueuedGrad>({ batchSize: this.opts.batchSize ?? 1, staleness: this.opts.staleness ?? 1, current: this.step });
    await this.refreshCache();
    if (this.ckpt && this.ckpt.latest() === null) await this.saveCheckpoint();
    if (this.opts.logdir) {
      this.writer = new SummaryWriter(this.opts.logdir, { filenameSuffix: '.learner' });
      // as `lopt run --resume` (train.ts): TensorBoard drops any record past the resumed step
      if (this.opts.resume) this.writer.sessionStart(this.step);
    }
    if (this.step >= this.steps) this.finished = true;
  }

  private async refreshCache(): Promise<void> {
    const ww = this.trainer.learner.getStateForWorker(this.state!);
    this.cache = {
      step: this.step,
      theta: await treeToWire(ww.theta),
      modelState: ww.thetaModelState === null || ww.thetaModelState === undefined ? null : await treeToWire(ww.thetaModelState),
      outerIteration: ww.outerState.outerIteration,
    };
  }

  private async saveCheckpoint(): Promise<void> {
    if (!this.ckpt || !this.state) return;
    await this.ckpt.saveNow(this.checkpointPayload());
  }

  private checkpointPayload() {
    return {
      step: this.step,
      state: this.state as unknown as PyTree,
      theta: this.trainer.learner.getMetaParams(this.state!),
      elapsedTime: this.elapsed(),
      configHash: this.spec.hash,
      extra: { genId: this.genId, experiment: this.spec.name, mode: this.mode },
    };
  }

  private startTime = Date.now();
  private elapsed(): number {
    return this.elapsedBefore + (Date.now() - this.startTime) / 1000;
  }

  private notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    ws.forEach((w) => w());
  }

  /** Resolves when `pred()` holds, or after `timeoutMs` (to false). */
  private waitFor(pred: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const check = () => {
        if (pred()) {
          if (timer) clearTimeout(timer);
          resolve(true);
        } else this.waiters.add(check);
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.waiters.delete(check);
          resolve(pred());
        }, timeoutMs);
      }
      check();
    });
  }

  /** Stops after the current update (a checkpoint is written). */
  requestStop(): void {
    this.stopRequested = true;
    this.notify();
  }

  private reject(code: number, message: string): never {
    this.rejectedMessages++;
    throw new RpcError(code, message);
  }

  /** Counts a call refused before it reached the learner (e.g. authentication). */
  countRejected(): void {
    this.rejectedMessages++;
  }

  private checkCommon(experiment: ExperimentId, workerId: number): void {
    if (experiment.name !== this.experiment.name || experiment.configHash !== this.experiment.configHash) {
      this.reject(
        Status.FAILED_PRECONDITION,
        `this learner runs experiment '${this.experiment.name}' with config hash ${this.experiment.configHash}; ` +
          `the worker has '${experiment.name}' with config hash ${experiment.configHash || '(none)'} ` +
          `(start the worker with the same experiment and --set overrides as the learner)`,
      );
    }
    if (!Number.isSafeInteger(workerId) || workerId < 0) this.reject(Status.INVALID_ARGUMENT, `worker_id must be a non-negative integer, got ${workerId}`);
    if (this.mode === 'sync' && workerId >= this.numWorkers) {
      this.reject(Status.INVALID_ARGUMENT, `sync learner has ${this.numWorkers} workers (ids 0..${this.numWorkers - 1}); got worker_id ${workerId}`);
    }
  }

  private finishedReply(): WeightsReply {
    return {
      experiment: this.experiment,
      step: this.step,
      theta: toHostTree({}), // no weights: the worker exits
      thetaModelState: null,
      outerIteration: 0,
      genId: this.genId,
      finished: true,
      wait: false,
      numWorkers: this.numWorkers,
    };
  }

  async getWorkerWeights(req: WeightsRequest, _ctx: CallContext): Promise<WeightsReply> {
    if (!this.state && !this.finished) throw new RpcError(Status.UNAVAILABLE, 'learner is not ready');
    this.checkCommon(req.experiment, req.workerId);
    this.lastSeen.set(req.workerId, Date.now());
    if (this.finished) {
      this.toldFinished.add(req.workerId);
      this.notify();
      return this.finishedReply();
    }
    if (!this.gate.canGetWeights(req.workerId)) {
      await this.waitFor(() => this.finished || this.gate.canGetWeights(req.workerId), 1000 * (this.opts.waitSeconds ?? 5));
      if (this.finished) return this.getWorkerWeights(req, _ctx);
      if (!this.gate.canGetWeights(req.workerId)) return { ...this.finishedReply(), finished: false, wait: true };
    }
    const c = this.cache!;
    return {
      experiment: this.experiment,
      step: c.step,
      theta: c.theta,
      thetaModelState: c.modelState,
      outerIteration: c.outerIteration,
      genId: this.genId,
      finished: false,
      wait: false,
      numWorkers: this.numWorkers,
    };
  }

  async putGradient(req: GradientRequest, _ctx: CallContext): Promise<PutReply> {
    if (!this.state && !this.finished) throw new RpcError(Status.UNAVAILABLE, 'learner is not ready');
    this.checkCommon(req.experiment, req.workerId);
    this.lastSeen.set(req.workerId, Date.now());
    if (!Number.isSafeInteger(req.step) || req.step < 0) this.reject(Status.INVALID_ARGUMENT, `step must be a non-negative integer, got ${req.step}`);
    const bad = checkWireTree(req.thetaGrads, this.sig, 'theta_grads');
    if (bad) this.reject(Status.INVALID_ARGUMENT, bad);
    if (!Number.isFinite(req.meanLoss)) this.reject(Status.INVALID_ARGUMENT, `mean_loss must be finite, got ${req.meanLoss}`);
    const { size, nonFinite } = countNonFinite(req.thetaGrads);
    if (size > 0 && nonFinite === size) this.reject(Status.INVALID_ARGUMENT, `theta_grads: all ${size} values are NaN/Inf`);
    const reply = (accepted: boolean, reason: string): PutReply => ({ accepted, reason, currentStep: this.step, finished: this.finished });
    if (this.finished) {
      this.toldFinished.add(req.workerId);
      this.notify();
      return reply(false, 'finished');
    }
    if (req.genId && req.genId !== this.genId) {
      this.gate.removedStaleTotal++;
      return reply(false, `generation ${req.genId} is not the current ${this.genId}`);
    }
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(req.metrics)) if (Number.isFinite(v)) metrics[k] = v;
    const outcome = this.gate.put(req.workerId, req.step, { thetaGrads: req.thetaGrads, meanLoss: req.meanLoss, metrics });
    if (outcome === 'unknown_worker') this.reject(Status.INVALID_ARGUMENT, `unknown worker_id ${req.workerId}`);
    if (outcome === 'duplicate') this.duplicateGrads++;
    this.notify();
    return reply(outcome === 'accepted', outcome === 'accepted' ? '' : outcome);
  }

  /** Runs updates until the step count (or a stop request); resolves with the trajectory. */
  async run(): Promise<LearnerResult> {
    if (!this.state) await this.init();
    const cfg = this.spec.config;
    const logEvery = this.opts.logEvery ?? Math.max(1, Math.floor(this.steps / 100));
    const t0 = Date.now();
    const step0 = this.step;
    while (this.step < this.steps && !this.stopRequested) {
      await this.waitFor(() => this.stopRequested || this.gate.ready());
      if (this.stopRequested) break;
      const batch = this.gate.take();
      const grads: AggregatedGradient[] = batch.entries.map((e) => ({
        thetaGrads: tf.tidy(() =>
          treeMap((l: tf.Tensor) => tf.where(tf.isFinite(l), l, tf.zerosLike(l)), wireToTree(e.grad.thetaGrads, this.thetaTemplate)),
        ),
        thetaModelState: null,
        meanLoss: e.grad.meanLoss,
      }));
      const [, key2] = random.split(this.trainer.stepKey(this.step));
      const withMetrics = (this.step + 1) % cfg.logging.metricsEvery === 0;
      const [next, lm] = await this.trainer.learner.update(this.state!, grads, { key: key2, withMetrics });
      this.state = next;
      this.thetaTemplate = this.trainer.learner.getMetaParams(next);
      const newStep = this.step + 1;
      const loss = batch.entries.reduce((a, e) => a + e.grad.meanLoss, 0) / batch.entries.length;
      this.losses.push(loss);
      batch.entries.forEach((e) => this.contributors.add(e.workerId));
      this.step = newStep;
      await this.refreshCache();
      const removed = this.gate.advance(newStep);
      this.notify();

      const secs = (Date.now() - t0) / 1000;
      const metrics: Record<string, number> = {
        mean_loss: loss,
        ...batchMetrics(newStep, batch),
        removed_stale_grads: removed.length,
        removed_stale_grads_total: this.gate.removedStaleTotal,
        dropped_full_buffer_total: this.gate.droppedTotal,
        rejected_messages: this.rejectedMessages,
        global_step: newStep,
        global_step_per_second: secs > 0 ? (newStep - step0) / secs : 0,
        elapsed_time: this.elapsed(),
      };
      for (const [k, v] of Object.entries(lm)) metrics[k.split('||').pop()!] = v;
      const workerKeys = new Set(batch.entries.flatMap((e) => Object.keys(e.grad.metrics)));
      for (const k of workerKeys) {
        const vals = batch.entries.map((e) => e.grad.metrics[k]).filter((v) => v !== undefined);
        if (vals.length) metrics[`worker/${k.split('||').pop()}`] = vals.reduce((a, b) => a + b, 0) / vals.length;
      }
      if (this.writer && newStep % cfg.logging.scalarsEvery === 0) {
        this.writer.scalars(metrics, newStep);
        this.writer.flush(); // a killed learner loses at most this step's scalars
      }
      if (newStep % logEvery === 0 || newStep === this.steps) {
        this.log(
          `[learner] step ${newStep}/${this.steps} loss ${loss.toFixed(4)} workers [${batch.entries.map((e) => e.workerId).join(',')}] ` +
            `avg_staleness ${metrics.avg_staleness.toFixed(2)} max_staleness ${metrics.max_staleness} buffer_size ${metrics.buffer_size} ` +
            `removed_stale ${this.gate.removedStaleTotal} rejected ${this.rejectedMessages} ${metrics.global_step_per_second.toFixed(2)} steps/s`,
        );
      }
      if (this.ckpt) await this.ckpt.maybeSave(newStep, () => this.checkpointPayload());
    }
    if (this.step >= this.steps) this.finished = true;
    this.notify();
    await this.saveCheckpoint();
    this.writer?.flush();
    const result: LearnerResult = {
      step: this.step,
      losses: [...this.losses],
      workers: [...this.contributors].sort((a, b) => a - b),
      rejectedMessages: this.rejectedMessages,
      removedStaleGrads: this.gate.removedStaleTotal,
      duplicateGrads: this.duplicateGrads,
    };
    this.log(`[learner] ${this.finished ? 'finished' : 'stopped'} at step ${this.step}; summary ${JSON.stringify({ ...result, losses: undefined })}`);
    return result;
  }

  /** After finishing: keep answering until every recently seen worker was told, or `lingerSeconds`. */
  async linger(): Promise<void> {
    if (!this.finished) return;
    const recent = () => [...this.lastSeen].filter(([, t]) => Date.now() - t < 60_000).map(([w]) => w);
    await this.waitFor(() => recent().every((w) => this.toldFinished.has(w)), 1000 * (this.opts.lingerSeconds ?? 5));
  }

  close(): void {
    this.writer?.close();
    this.writer = null;
    if (this.state) treeDispose(this.state as unknown as PyTree);
    this.state = null;
  }
}
