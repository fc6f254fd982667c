/**
 * `MetaTrainer`: assembles a validated experiment configuration into the reference's pipelines
 * (`SingleMachineGradientLearner`, or a central `GradientLearner` fed by `gradient_worker_compute`
 * on in-process workers) and runs outer steps. Keys are derived from (seed, step), so a resumed run
 * draws the same randomness as an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs';
import { random, PRNGKey, Registry, PyTree, treeLeaves, treeDispose, treeSize } from '@lopt/core';
import type { TaskFamily, BatchStream } from '@lopt/tasks';
import { SPLITS } from '@lopt/tasks';
import type { LearnedOptimizer, Optimizer } from '@lopt/optimizers';
import { BranchPool, ThreadedPES } from './parallel/threaded_pes';
import type { BranchSpec } from './parallel/branch_worker';
import { ConfigError } from './config';
import { makeTaskFamily } from './task_entries';
import type { MetaTrainingConfig } from './experiment_config';
import {
  type TruncatedPESOptions,
  VectorizedLOptTruncatedStep,
  GradientLearner,
  GradientLearnerState,
  gradientWorkerCompute,
  GradientEstimator,
  TruncationSchedule,
  type TruncatedStep,
  AggregatedGradient,
  WorkerWeights,
} from '@lopt/estimators';

type StreamStates = Record<string, Record<string, { seed: number; epoch: number; position: number }>>;

/**
 * A {@link MetaTrainer}'s whole state: the learner's (θ, meta-optimizer state) and each worker's estimator
 * states (unroll states).
 */
export interface MetaTrainerState {
  learnerState: GradientLearnerState;
  /** one list of estimator states per worker */
  workerStates: any[][];
}

/**
 * One outer step of {@link MetaTrainer}: its meta-loss (clipped and raw), non-finite gradient counts,
 * metrics, and optionally the θ gradient.
 */
export interface StepResult {
  /** The mean meta-loss the learner used: a non-finite one is clipped (to 20, as the reference). */
  loss: number;
  /** The mean meta-loss before that clipping: NaN or Infinity when the run diverges. */
  rawLoss: number;
  /** Non-finite elements of the meta-gradients (zeroed before the update), and all of them. */
  nonFiniteGradElements: number;
  gradElements: number;
  metrics: Record<string, number | number[]>;
  /** θ-shaped mean gradient, only when asked for (histograms); the caller disposes it */
  thetaGrad?: PyTree;
}

/** Options of {@link MetaTrainer}: threads for PES branches, their backend and plugins. */
export interface MetaTrainerOptions {
  /** 1 (default): everything on this thread. 2: estimators run their antithetic branches in worker threads. */
  threads?: number;
  /** Backend for worker threads (default: this thread's backend). */
  backend?: string;
  /** Plugin packages the worker threads load (those loaded with --plugin). */
  plugins?: string[];
}

/** Builds the plugins named by a validated config and runs outer steps. */
export class MetaTrainer {
  readonly lopt: LearnedOptimizer;
  readonly thetaOpt: Optimizer;
  readonly families: TaskFamily[];
  readonly learner: GradientLearner;
  readonly workers: GradientEstimator[][];

  constructor(
    readonly config: MetaTrainingConfig,
    readonly registry: Registry,
    readonly options: MetaTrainerOptions = {},
  ) {
    // Every key of this run (inits, truncations, data) follows the config's random mode.
    if (config.threefryPartitionable !== undefined) random.configure({ threefryPartitionable: config.threefryPartitionable });
    this.lopt = registry.create('learned_optimizer', config.learnedOptimizer.name, config.learnedOptimizer.config);
    this.thetaOpt = registry.create('optimizer', config.thetaOptimizer.name, config.thetaOptimizer.config);
    this.families = config.tasks.map((t) => makeTaskFamily(registry, t));
    this.learner = new GradientLearner(this.lopt, this.thetaOpt, { numSteps: config.steps });
    const workers = config.mode === 'learner-worker' ? config.numWorkers : 1;
    const threads = options.threads ?? 1;
    if (!(threads === 1 || threads === 2)) throw new ConfigError(`threads: ${threads} (allowed: 1, 2)`);
    if (threads === 2) this.pool = new BranchPool(2, options.backend ?? tf.getBackend(), options.plugins ?? []);
    this.workers = Array.from({ length: workers }, () => this.makeEstimators());
  }

  /** Worker threads of `threads: 2` (one per antithetic branch), else null. */
  readonly pool: BranchPool | null = null;

  /** One estimator per task entry, as the seed's `grad_est_fn(task_family)`. */
  makeEstimators(): GradientEstimator[] {
    const cfg = this.config;
    return cfg.tasks.map((t, i) => {
      const truncationSchedule: TruncationSchedule = this.registry.create('truncation_schedule', cfg.truncationSchedule.name, cfg.truncationSchedule.config);
      const estimator = this.registry.get('gradient_estimator', cfg.gradientEstimator.name);
      // A full-unroll estimator (FullES, FullGrad) sets trajectory lengths itself from the configured
      // schedule; its truncated step never ends a trajectory, as the reference builds them
      // (outer_trainers/full_es.py: the truncated step takes a NeverEndingTruncationSchedule).
      const stepSchedule = estimator.traits?.fullUnroll ? this.registry.create<TruncationSchedule>('truncation_schedule', 'NeverEndingTruncationSchedule', {}) : truncationSchedule;
      const truncatedStep = this.registry.create<TruncatedStep, 'truncated_step'>('truncated_step', cfg.truncatedStep.name, cfg.truncatedStep.config, {
        taskFamily: this.families[i],
        learnedOptimizer: this.lopt,
        truncationSchedule: stepSchedule,
        numTasks: t.numTasks,
      });
      if (this.pool && estimator.traits?.threadedBranches && truncatedStep instanceof VectorizedLOptTruncatedStep && this.paramsPerTask(i) >= MetaTrainer.threadMinParams) {
        const spec: BranchSpec = {
          task: { name: t.name, config: t.config },
          numTasks: t.numTasks,
          learnedOptimizer: cfg.learnedOptimizer,
          truncationSchedule: cfg.truncationSchedule,
          truncatedStep: cfg.truncatedStep,
        };
        return new ThreadedPES(truncatedStep, cfg.gradientEstimator.config as TruncatedPESOptions, this.pool, spec);
      }
      return this.registry.create<GradientEstimator, 'gradient_estimator'>('gradient_estimator', cfg.gradientEstimator.name, cfg.gradientEstimator.config, {
        truncatedStep,
        truncationSchedule,
      });
    });
  }

  /**
   * With `threads: 2`, tasks with fewer parameters than this keep their PES estimator on the main
   * thread, where it runs while the threads compute the larger tasks (a 10-d quadratic's unroll
   * costs less than the messages to the threads; seed A: 0.114 → see docs/performance.md).
   */
  static threadMinParams = 1000;

  /** Parameters of one task of family i (from a throw-away sample). */
  private paramsPerTask(i: number): number {
    const key = random.PRNGKey(0);
    const taskParam = this.families[i].sample(key);
    const params = this.families[i].taskFn(taskParam).init(key);
    const n = treeSize(params);
    treeDispose([taskParam, params]);
    return n;
  }

  /**
   * A lower bound on {@link estimateStateBytes} from sizes alone, or undefined when a task entry's
   * family cannot give its sizes without sampling (`TaskFamily.valueCounts`). Every branch of every task
   * holds at least its inner params and its task param, so a run this refuses cannot fit; it lets a
   * huge config fail at once instead of after sampling and initialising a huge task.
   */
  stateBytesLowerBound(): number | undefined {
    const antithetic = this.registry.get('gradient_estimator', this.config.gradientEstimator.name).traits?.antithetic ? 2 : 1;
    let values = 0;
    for (let i = 0; i < this.families.length; i++) {
      const sizes = this.families[i].valueCounts?.();
      if (!sizes) return undefined;
      values += this.workers.length * this.config.tasks[i].numTasks * antithetic * (sizes.params + sizes.taskParam);
    }
    return values * 4;
  }

  /**
   * Bytes the run's state will take (float32/int32 values), measured on one task of each entry
   * before anything large is made: per task its parameters, task parameter and learned-optimizer
   * state, on both antithetic branches, plus a θ-sized accumulator; and θ with the meta-optimizer's
   * state. Activations and datasets come on top.
   */
  estimateStateBytes(): number {
    const key = random.PRNGKey(0);
    const theta = this.lopt.init(key);
    const thetaSize = treeSize(theta);
    const thetaOptState = this.thetaOpt.init(theta, { numSteps: 1 });
    let values = treeSize(thetaOptState);
    const made = new Set<tf.Tensor>();
    const keep = (t: PyTree) => treeLeaves<unknown>(t).forEach((l) => l instanceof tf.Tensor && made.add(l));
    keep(theta);
    keep(thetaOptState);
    const antithetic = this.registry.get('gradient_estimator', this.config.gradientEstimator.name).traits?.antithetic ? 2 : 1;
    this.config.tasks.forEach((t, i) => {
      const taskParam = this.families[i].sample(key);
      const params = this.families[i].taskFn(taskParam).init(key);
      const state = this.lopt.optFn(theta).init(params, { numSteps: 1 });
      keep(taskParam);
      keep(params);
      keep(state);
      const perTask = treeSize(state) + treeSize(taskParam);
      values += this.workers.length * t.numTasks * (antithetic * perTask + thetaSize);
    });
    made.forEach((t) => t.isDisposed || t.dispose());
    return values * 4;
  }

  private baseKey(): PRNGKey {
    return random.PRNGKey(this.config.seed);
  }

  /** The key of outer step `step` (the same every step with `reuseKey`, as the seed's first loop). */
  stepKey(step: number): PRNGKey {
    return this.config.reuseKey ? this.baseKey() : random.foldIn(this.baseKey(), step + 1);
  }

  async init(): Promise<MetaTrainerState> {
    const [key1, key2] = random.split(this.baseKey());
    const learnerState = await this.learner.init(key1);
    const ww = this.learner.getStateForWorker(learnerState);
    const workerStates: any[][] = [];
    for (let w = 0; w < this.workers.length; w++) {
      const keys = random.split(random.foldIn(key2, w), this.workers[w].length);
      const states = [];
      for (let i = 0; i < this.workers[w].length; i++) states.push(await this.workers[w][i].initWorkerState(ww, keys[i]));
      workerStates.push(states);
    }
    return { learnerState, workerStates };
  }

  /** A worker's fresh unroll states (a restarted worker rejoins with these). */
  async initWorkerStates(ww: WorkerWeights, workerId: number, estimators = this.workers[0]): Promise<any[]> {
    const keys = random.split(random.foldIn(random.foldIn(this.baseKey(), 0x5eed), workerId), estimators.length);
    const out = [];
    for (let i = 0; i < estimators.length; i++) out.push(await estimators[i].initWorkerState(ww, keys[i]));
    return out;
  }

  /** Total inner task-steps per outer step (both antithetic branches count). */
  innerStepsPerOuterStep(): number {
    const per = this.config.tasks.reduce((n, t) => n + t.numTasks, 0);
    const est = this.config.gradientEstimator;
    const len = Number(est.config.truncLength ?? est.config.unrollLength ?? 0);
    const antithetic = this.registry.get('gradient_estimator', est.name).traits?.antithetic ? 2 : 1;
    return per * len * antithetic * this.workers.length;
  }

  /** One outer step. Donates `state`. */
  async step(state: MetaTrainerState, step: number, opts: { withMetrics?: boolean; keepGrad?: boolean } = {}): Promise<[MetaTrainerState, StepResult]> {
    const key = this.stepKey(step);
    const [key1, key2] = random.split(key);
    const ww = this.learner.getStateForWorker(state.learnerState);
    const puts: AggregatedGradient[] = [];
    const workerStates: any[][] = [];
    const metricsList: Array<Record<string, number | number[]>> = [];
    const health: Array<{ rawMeanLoss: number; nonFiniteGradElements: number; gradElements: number }> = [];
    for (let w = 0; w < this.workers.length; w++) {
      const wk = this.workers.length === 1 ? key1 : random.foldIn(key1, w);
      // With threads, one estimator's main-thread part overlaps the other's unroll in the threads.
      const out = await gradientWorkerCompute(ww, this.workers[w], state.workerStates[w], {
        key: wk,
        withMetrics: opts.withMetrics ?? false,
        concurrent: this.pool !== null,
      });
      puts.push(out.toPut);
      workerStates.push(out.unrollStates);
      metricsList.push(out.metrics);
      health.push(out.health);
    }
    const thetaGrad = opts.keepGrad
      ? tf.tidy(() => {
          const leaves = puts.map((p) => treeLeaves<tf.Tensor>(p.thetaGrads));
          return leaves[0].map((_, j) => tf.div(tf.addN(leaves.map((l) => l[j])), leaves.length));
        })
      : undefined;
    const loss = puts.reduce((a, p) => a + p.meanLoss, 0) / puts.length;
    const [learnerState, lm] = await this.learner.update(state.learnerState, puts, { key: key2, withMetrics: opts.withMetrics ?? false });
    const metrics: Record<string, number | number[]> = { ...metricsList[0], ...lm };
    const rawLoss = health.reduce((a, h) => a + h.rawMeanLoss, 0) / health.length;
    const nonFiniteGradElements = health.reduce((a, h) => a + h.nonFiniteGradElements, 0);
    const gradElements = health.reduce((a, h) => a + h.gradElements, 0);
    return [{ learnerState, workerStates }, { loss, rawLoss, nonFiniteGradElements, gradElements, metrics, thetaGrad }];
  }

  /**
   * `state` with every estimator state complete on this thread, in the layout of a single-thread
   * run (checkpoints): with threads, the branch states are fetched from the worker threads.
   * `release()` disposes what was fetched (not `state`'s own tensors).
   */
  async exportState(state: MetaTrainerState): Promise<{ state: MetaTrainerState; release: () => void }> {
    if (!this.pool) return { state, release: () => undefined };
    const fetched: PyTree[] = [];
    const workerStates: any[][] = [];
    for (let w = 0; w < this.workers.length; w++) {
      const row: any[] = [];
      for (let i = 0; i < this.workers[w].length; i++) {
        const est = this.workers[w][i];
        const s = state.workerStates[w][i];
        if (est instanceof ThreadedPES && ThreadedPES.isRemote(s)) {
          const full = await est.exportState(s);
          fetched.push({ p: full.posState, n: full.negState } as unknown as PyTree);
          row.push(full);
        } else row.push(s);
      }
      workerStates.push(row);
    }
    const release = () => fetched.forEach((t) => treeDispose(t));
    return { state: { learnerState: state.learnerState, workerStates }, release };
  }

  /** The inverse of `exportState` (resume): hands the branch states of a complete state to the
   * worker threads (disposing them here). Donates `state`; without threads returns it. */
  async importState(state: MetaTrainerState): Promise<MetaTrainerState> {
    if (!this.pool) return state;
    const workerStates: any[][] = [];
    for (let w = 0; w < this.workers.length; w++) {
      const row: any[] = [];
      for (let i = 0; i < this.workers[w].length; i++) {
        const est = this.workers[w][i];
        const s = state.workerStates[w][i];
        row.push(est instanceof ThreadedPES ? await est.importState(s) : s);
      }
      workerStates.push(row);
    }
    return { learnerState: state.learnerState, workerStates };
  }

  /** Dispose a state's tensors (and stop worker threads, if any). */
  async dispose(state: MetaTrainerState | null): Promise<void> {
    if (state) {
      for (const l of treeLeaves<unknown>(state as unknown as PyTree)) if (l instanceof tf.Tensor && !l.isDisposed) l.dispose();
    }
    if (this.pool) await this.pool.terminate();
  }

  /** Tensors held by this thread and by every worker thread. */
  async numTensors(): Promise<{ main: number; threads: number[] }> {
    const threads = this.pool ? (await this.pool.memory()).map((m) => m.numTensors) : [];
    return { main: tf.memory().numTensors, threads };
  }

  /** Positions of every data stream the run reads, for an exact resume. */
  streamStates(): StreamStates {
    const out: StreamStates = {};
    this.families.forEach((f, i) => {
      if (!f.datasets) return;
      const per: Record<string, any> = {};
      for (const s of SPLITS) per[s] = (f.datasets.split(s) as BatchStream).getState();
      out[`${i}:${f.name}`] = per;
    });
    return out;
  }

  restoreStreamStates(states: StreamStates): void {
    this.families.forEach((f, i) => {
      const per = states[`${i}:${f.name}`];
      if (!f.datasets || !per) return;
      for (const s of SPLITS) if (per[s]) f.datasets.split(s).setState(per[s]);
    });
  }
}
