/**
 * The worker of distributed meta-training (reference `outer_train.py`, `train_worker`): builds the
 * experiment's estimators for one worker, keeps their unroll states locally, and loops get weights
 * -> gradientWorkerCompute -> put gradient until the learner reports it finished. An unreachable
 * learner is retried with exponential backoff (capped); a refused call (token, experiment, bad
 * message) ends the worker.
 *
 * Keys follow `MetaTrainer`: the gradient of step s uses `split(stepKey(s))[0]` (folded with the
 * worker id when the learner has several workers), and a worker that joins at step 0 initialises
 * its unroll states as `MetaTrainer.init` does, so a sync learner with this worker reproduces a
 * single-machine run. A worker joining later (a restart) gets fresh states from `initWorkerStates`.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, PyTree, random, treeDispose } from '@lopt/core';
import { gradientWorkerCompute, type GradientEstimator, type WorkerWeights } from '@lopt/estimators';
import { MetaTrainer } from '../meta_trainer';
import { ExperimentSpec } from './experiment';
import { ExperimentId, RpcError, Status, WeightsReply, checkWireTree, isRetryable, statusName, treeSignature, treeToWire, wireToTree } from './protocol';
import { LearnerClient } from './transport';

/**
 * Options of {@link runWorker}: experiment, learner client, worker id, and retry, stop and thread settings.
 */
export interface WorkerOptions {
  spec: ExperimentSpec;
  client: LearnerClient;
  workerId: number;
  trainer?: MetaTrainer;
  registry?: import('@lopt/core').Registry;
  log?: (line: string) => void;
  /** backoff cap in seconds (default 4) */
  maxBackoffSeconds?: number;
  /** give up after the learner was unreachable this long (default: never) */
  giveUpSeconds?: number;
  /** checked between iterations: stop when it returns true */
  shouldStop?: () => boolean;
  /** print a progress line every n gradients (default 10) */
  logEvery?: number;
  /** 1 (default) or 2: PES estimators unroll their antithetic branches in two worker threads
   * (MetaTrainerOptions.threads; same gradients). Only when no `trainer` is given. */
  threads?: number;
  /** Plugin packages the threads load (those named with --plugin). */
  plugins?: string[];
}

/**
 * What a worker did: the step of each gradient sent, their losses, how many were accepted, and why it
 * stopped.
 */
export interface WorkerResult {
  /** gradients sent, with the step each was computed at */
  steps: number[];
  losses: number[];
  accepted: number;
  reason: 'finished' | 'stopped';
}

/**
 * Ends a worker's run: the learner refused a call for good (bad token, another experiment, bad message),
 * stayed unreachable past `giveUpSeconds`, or `shouldStop` said stop; `code` is the gRPC status.
 */
export class WorkerRefusedError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerRefusedError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A distributed worker (reference `outer_train.py`, `train_worker`): loops get θ, `gradientWorkerCompute`
 * (@lopt/estimators), put gradient until the learner is finished or `shouldStop`; retries an unreachable
 * learner with backoff.
 */
export async function runWorker(opts: WorkerOptions): Promise<WorkerResult> {
  const { spec, client, workerId } = opts;
  if (!opts.trainer && !opts.registry) throw new Error('runWorker needs a trainer or a registry');
  const trainer = opts.trainer ?? new MetaTrainer(spec.config, opts.registry!, { threads: opts.threads ?? 1, plugins: opts.plugins ?? [] });
  const estimators: GradientEstimator[] = trainer.workers[0];
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const tag = `[worker ${workerId}]`;
  const experiment: ExperimentId = { name: spec.name, configHash: spec.hash };
  const maxBackoff = 1000 * (opts.maxBackoffSeconds ?? 4);
  const logEvery = opts.logEvery ?? 10;

  // θ's structure (for rebuilding the wire tree) from a throwaway learner state.
  const tmpl = await trainer.learner.init(random.PRNGKey(0));
  const tmplWW = trainer.learner.getStateForWorker(tmpl);
  const thetaTemplate = tmplWW.theta;
  const modelTemplate = tmplWW.thetaModelState ?? null;
  const thetaSig = treeSignature(thetaTemplate);
  const modelSig = modelTemplate ? treeSignature(modelTemplate) : null;
  treeDispose(tmpl as unknown as PyTree);

  /** Calls `fn`, retrying while the learner is unreachable. */
  let unreachableSince: number | null = null;
  async function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let backoff = 200;
    for (;;) {
      try {
        const out = await fn();
        if (unreachableSince !== null) log(`${tag} connected to learner at ${client.address}`);
        unreachableSince = null;
        return out;
      } catch (e) {
        const code = e instanceof RpcError ? e.code : undefined;
        if (!isRetryable(code)) {
          const c = code ?? Status.UNKNOWN;
          throw new WorkerRefusedError(c, `learner at ${client.address} refused ${what}: ${statusName(c)}: ${(e as Error).message}`);
        }
        if (unreachableSince === null) unreachableSince = Date.now();
        const waited = (Date.now() - unreachableSince) / 1000;
        if (opts.giveUpSeconds && waited > opts.giveUpSeconds) {
          throw new WorkerRefusedError(code!, `learner at ${client.address} unreachable for ${waited.toFixed(0)} s; giving up`);
        }
        log(`${tag} waiting for learner at ${client.address} (${what}: ${statusName(code!)}: ${(e as Error).message.split('\n')[0]}); retry in ${(backoff / 1000).toFixed(1)} s`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
        if (opts.shouldStop?.()) throw new WorkerRefusedError(Status.CANCELLED, 'stopped');
      }
    }
  }

  let unrollStates: any[] | null = null;
  const result: WorkerResult = { steps: [], losses: [], accepted: 0, reason: 'finished' };
  let lastStep = -1;
  let repeats = 0;
  try {
    while (!opts.shouldStop?.()) {
      const reply: WeightsReply = await withRetry('GetWorkerWeights', () => client.getWorkerWeights({ experiment, workerId }));
      if (reply.finished) {
        log(`${tag} learner finished at step ${reply.step}; exiting after ${result.steps.length} gradients`);
        return result;
      }
      if (reply.wait) continue;
      const bad = checkWireTree(reply.theta, thetaSig, 'theta') ?? (modelSig && reply.thetaModelState ? checkWireTree(reply.thetaModelState, modelSig, 'theta_model_state') : null);
      if (bad) throw new WorkerRefusedError(Status.INVALID_ARGUMENT, `learner sent weights that do not match this experiment: ${bad}`);
      const ww: WorkerWeights = {
        theta: wireToTree(reply.theta, thetaTemplate),
        thetaModelState: modelTemplate && reply.thetaModelState ? wireToTree(reply.thetaModelState, modelTemplate) : null,
        outerState: { outerIteration: reply.outerIteration },
      };
      const numWorkers = Math.max(1, reply.numWorkers);
      if (!unrollStates) {
        if (reply.step === 0) {
          // As MetaTrainer.init: key2 of split(PRNGKey(seed)), folded with the worker index.
          const [, key2] = random.split(random.PRNGKey(spec.config.seed));
          const keys = random.split(random.foldIn(key2, workerId), estimators.length);
          unrollStates = [];
          for (let i = 0; i < estimators.length; i++) unrollStates.push(await estimators[i].initWorkerState(ww, keys[i]));
        } else {
          unrollStates = await trainer.initWorkerStates(ww, workerId, estimators);
        }
        log(`${tag} initialised ${estimators.length} estimator state(s) at learner step ${reply.step}`);
      }
      // As MetaTrainer.step: key1 of split(stepKey(step)); folded with the worker id when N > 1.
      const [key1] = random.split(trainer.stepKey(reply.step));
      let key = numWorkers === 1 ? key1 : random.foldIn(key1, workerId);
      repeats = reply.step === lastStep ? repeats + 1 : 0;
      lastStep = reply.step;
      if (repeats > 0) key = random.foldIn(key, 0x7e9ea7 + repeats);
      const withMetrics = reply.step % spec.config.logging.metricsEvery === 0;
      const out = await gradientWorkerCompute(ww, estimators, unrollStates, { key, withMetrics, concurrent: trainer.pool !== null });
      unrollStates = out.unrollStates;
      const thetaGrads = await treeToWire(out.toPut.thetaGrads);
      treeDispose(out.toPut.thetaGrads);
      disposeReplaced(ww.theta, unrollStates);
      if (ww.thetaModelState) disposeReplaced(ww.thetaModelState, unrollStates);
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(out.metrics)) if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
      const put = await withRetry('PutGradient', () =>
        client.putGradient({ experiment, workerId, step: reply.step, thetaGrads, meanLoss: out.toPut.meanLoss, metrics, genId: reply.genId }),
      );
      result.steps.push(reply.step);
      result.losses.push(out.toPut.meanLoss);
      if (put.accepted) result.accepted++;
      if (result.steps.length % logEvery === 0) {
        log(`${tag} sent ${result.steps.length} gradients (${result.accepted} accepted); last: step ${reply.step} loss ${out.toPut.meanLoss.toFixed(4)}${put.accepted ? '' : ` dropped: ${put.reason}`}; tensors ${tf.memory().numTensors}`);
      }
      if (put.finished) {
        log(`${tag} learner finished at step ${put.currentStep}; exiting after ${result.steps.length} gradients`);
        return result;
      }
    }
    result.reason = 'stopped';
    return result;
  } finally {
    if (unrollStates) treeDispose(unrollStates as PyTree);
    if (!opts.trainer) await trainer.dispose(null); // stops this worker's threads, if any
  }
}
