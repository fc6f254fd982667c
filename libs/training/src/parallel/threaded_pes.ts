/**
 * TruncatedPES with its two antithetic branches in two worker threads (`--threads 2`).
 *
 * The main thread keeps everything that is cheap and stateful for the learner — the perturbation
 * draw, the data stream, the key schedule, the PES accumulator and the gradient arithmetic
 * (`computePesGrad`, inherited unchanged) — and only the T-step unrolls move: thread 0 advances
 * the θ+ε branch, thread 1 the θ−ε branch, each with its own tf.js backend and its own copy of the
 * branch state. Both receive the same keys and the same data (one shared copy), so the estimate is
 * the sequential (unstacked) one by construction; only θ, data, losses and counters cross threads.
 *
 * The branch states live in the threads: the main-thread `PESWorkerState` holds placeholders for
 * them. `exportState` fetches them back (a state with the single-thread layout, for checkpoints)
 * and `importState` sends such a state to the threads (resume).
 */
import * as path from 'path';
import * as fs from 'fs';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, treeMap, type PRNGKey, type PyTree } from '@lopt/core';
import type { Theta } from '@lopt/optimizers';
import {
  TruncatedPES,
  type TruncatedPESOptions,
  type TruncatedStep,
  type TruncatedUnrollState,
  type PESWorkerState,
  type UnrollYs,
  type WorkerWeights,
} from '@lopt/estimators';
import type { BranchChunk, BranchRequest, BranchSpec } from './branch_worker';
import { fromWire, toWire, wireBytes, SharedArena, type WireTree } from './wire';

type Pending = { resolve: (v: any) => void; reject: (e: Error) => void };

/** Code run by a worker started from TypeScript sources (tests): compile .ts on the fly with swc. */
export function tsBootstrap(entry: string, root: string): string {
  return `
const Module = require('module'); const path = require('path'); const fs = require('fs');
const swc = require(${JSON.stringify(require.resolve('@swc/core'))});
const root = ${JSON.stringify(root)};
const orig = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const m = /^@lopt\\/(core|tasks|optimizers|estimators|training)$/.exec(request);
  if (m) request = path.join(root, 'libs', m[1], 'src/index.ts');
  return orig.call(this, request, parent, ...rest);
};
require.extensions['.ts'] = (module, filename) => {
  const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), { filename,
    jsc: { parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true }, target: 'es2022' },
    module: { type: 'commonjs' } });
  module._compile(out.code, filename);
};
require(${JSON.stringify(entry)});
`;
}

/** Two (or more) branch threads; request/response by id. */
export class BranchPool {
  readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly ready: Promise<void[]>;
  private isReady = false;
  private nextEst = 1;

  constructor(readonly size: number, readonly backend: string, plugins: string[] = []) {
    const fromTs = __filename.endsWith('.ts');
    const entry = path.join(__dirname, fromTs ? 'branch_worker.ts' : 'branch_worker.js');
    if (!fs.existsSync(entry)) throw new Error(`branch worker script not found: ${entry}`);
    const root = path.resolve(__dirname, '../../../..');
    this.workers = [];
    const readies: Array<Promise<void>> = [];
    for (let i = 0; i < size; i++) {
      const workerData = { backend, plugins, random: random.getConfig() };
      const w = fromTs
        ? new Worker(tsBootstrap(entry, root), { eval: true, workerData })
        : new Worker(entry, { workerData });
      readies.push(
        new Promise<void>((resolve, reject) => {
          const onMsg = (m: any) => {
            if (m.id !== 0) return;
            w.off('message', onMsg);
            if (m.error) reject(new Error(`branch worker ${i} failed to start: ${m.error}`));
            else resolve();
          };
          w.on('message', onMsg);
          w.once('error', reject);
        }),
      );
      w.on('message', (m: any) => {
        if (!m.id) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`branch worker ${i}: ${m.error}`));
        else p.resolve(m);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
    this.ready = Promise.all(readies);
    this.ready.then(
      () => (this.isReady = true),
      () => undefined,
    );
  }

  newEstimatorId(): number {
    return this.nextEst++;
  }

  /**
   * Sends `msg` to a thread and resolves with its reply. Once the threads are up the message is
   * posted synchronously, in this call: a caller that goes on with synchronous work (the main
   * thread's own unroll of another estimator) must not hold the threads' work back until its next
   * await, as an `await` before the post would.
   */
  request(worker: number, msg: Omit<BranchRequest, 'id'> & Record<string, unknown>): Promise<any> {
    const post = () => {
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.workers[worker].postMessage({ ...msg, id });
      });
    };
    // before the threads are up, requests wait for them in call order (the reactions run in order)
    return this.isReady ? post() : this.ready.then(post);
  }

  /** Tensors held by every thread. */
  async memory(): Promise<Array<{ numTensors: number; numBytes: number }>> {
    return Promise.all(this.workers.map((_, i) => this.request(i, { op: 'memory' })));
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const keyArr = (k: PRNGKey) => Array.from(k as Uint32Array);

/** Placeholder for a branch state held by a thread. */
function remoteState(estId: number, branch: 'pos' | 'neg'): TruncatedUnrollState {
  return { remote: { estId, branch } } as unknown as TruncatedUnrollState;
}

/**
 * `TruncatedPES` (@lopt/estimators) with its two antithetic unrolls in two worker threads (`--threads 2`);
 * the estimate is the sequential (unstacked) one's.
 */
export class ThreadedPES extends TruncatedPES {
  readonly runsOffThread = true;
  readonly estId: number;
  private readonly arena = new SharedArena();

  constructor(
    truncatedStep: TruncatedStep,
    opts: TruncatedPESOptions,
    readonly pool: BranchPool,
    readonly spec: BranchSpec,
  ) {
    super(truncatedStep, opts);
    if (pool.size !== 2) throw new Error(`ThreadedPES needs a pool of 2 threads (one per antithetic branch), got ${pool.size}`);
    this.estId = pool.newEstimatorId();
  }

  override async initWorkerState(workerWeights: WorkerWeights, key: PRNGKey): Promise<PESWorkerState> {
    const theta = toWire(workerWeights.theta);
    const msg = { op: 'init' as const, estId: this.estId, spec: this.spec, theta, outerState: workerWeights.outerState, key: keyArr(key) };
    const replies = Promise.all([this.pool.request(0, msg), this.pool.request(1, msg)]);
    // the data streams' first shuffles while the threads start (they load their copies of the data
    // after replying; this thread hands out example indices and, where the streams know their
    // sizes, never loads the data itself)
    try {
      this.truncatedStep.prefetch?.();
    } catch {
      /* a data error surfaces at the first batch, as without the prefetch */
    }
    await replies;
    const n = this.truncatedStep.numTasks;
    const accumulator = treeMap((l: tf.Tensor) => tf.zeros([n, ...l.shape]), workerWeights.theta);
    return { posState: remoteState(this.estId, 'pos'), negState: remoteState(this.estId, 'neg'), accumulator };
  }

  protected override async unrollBranches(
    workerWeights: WorkerWeights,
    posTheta: Theta,
    negTheta: Theta,
    state: PESWorkerState,
    rng: random.PRNGSequence,
    datasList?: PyTree[],
  ): Promise<{ posState: TruncatedUnrollState; negState: TruncatedUnrollState; pYs: UnrollYs; nYs: UnrollYs }> {
    const chunks: BranchChunk[] = [];
    const count = this.truncLength / this.stepsPerJit;
    const datas: PyTree[] = [];
    for (let c = 0; c < count; c++) {
      // Index-addressable data (Fashion-MNIST) goes as example indices: each thread gathers the
      // batches from its own copy of the split (the stream's position stays here).
      const indices = datasList ? null : this.truncatedStep.getBatchIndices?.(this.stepsPerJit) ?? null;
      datas.push(datasList ? datasList[c] : indices ? null : this.truncatedStep.getBatch(this.stepsPerJit));
      const unrollKey = rng.next();
      rng.next(); // the reference's summary key
      chunks.push({ key: keyArr(unrollKey), data: null, indices });
    }
    // The threads copy the data out before they answer, so one buffer serves every step.
    this.arena.reset(datas.reduce<number>((n, d) => n + wireBytes(d), 0));
    datas.forEach((d, c) => {
      if (d !== null && d !== undefined) chunks[c].data = toWire(d, this.arena);
      if (!datasList) disposeReplaced(d, {});
    });
    const common = { op: 'unroll' as const, estId: this.estId, outerState: workerWeights.outerState, stepsPerJit: this.stepsPerJit, chunks };
    const replies = Promise.all([
      this.pool.request(0, { ...common, theta: toWire(posTheta), keepTaskParams: true }),
      this.pool.request(1, { ...common, theta: toWire(negTheta), keepTaskParams: false }),
    ]);
    // while the threads unroll: the next epoch's shuffle, which would otherwise delay a later step's start
    this.truncatedStep.prefetch?.();
    const [pr, nr] = await replies;
    const ys = (r: any): UnrollYs => {
      const rows = (flat: Int32Array) => Array.from({ length: r.T }, (_, t) => flat.slice(t * r.N, (t + 1) * r.N));
      return {
        loss: tf.tensor(r.loss, [r.T, r.N]),
        mask: rows(r.mask),
        isDone: rows(r.isDone),
        iteration: rows(r.iteration),
        taskParam: (r.taskParams as WireTree[]).map((w) => fromWire(w)),
      };
    };
    return { posState: state.posState, negState: state.negState, pYs: ys(pr), nYs: ys(nr) };
  }

  /** Whether `state` holds placeholders for branch states kept by the threads. */
  static isRemote(state: PESWorkerState): boolean {
    return Boolean((state?.posState as any)?.remote);
  }

  /**
   * The same state with both branch states fetched from the threads (the layout of the
   * single-thread TruncatedPES). The fetched branch tensors belong to the caller; the accumulator
   * is `state`'s own.
   */
  async exportState(state: PESWorkerState): Promise<PESWorkerState> {
    if (!ThreadedPES.isRemote(state)) return state;
    const [pr, nr] = await Promise.all([0, 1].map((w) => this.pool.request(w, { op: 'getState', estId: this.estId })));
    return {
      posState: fromWire(pr.state) as unknown as TruncatedUnrollState,
      negState: fromWire(nr.state) as unknown as TruncatedUnrollState,
      accumulator: state.accumulator,
    };
  }

  /** Sends a full (single-thread layout) state's branch states to the threads; disposes them here
   * and returns the state with placeholders (the accumulator is kept). */
  async importState(state: PESWorkerState): Promise<PESWorkerState> {
    if (ThreadedPES.isRemote(state)) return state;
    await Promise.all([
      this.pool.request(0, { op: 'setState', estId: this.estId, spec: this.spec, state: toWire(state.posState) }),
      this.pool.request(1, { op: 'setState', estId: this.estId, spec: this.spec, state: toWire(state.negState) }),
    ]);
    const keep = state.accumulator as unknown as PyTree;
    disposeReplaced(state.posState, keep);
    disposeReplaced(state.negState, keep);
    return { posState: remoteState(this.estId, 'pos'), negState: remoteState(this.estId, 'neg'), accumulator: state.accumulator };
  }

  async dispose(): Promise<void> {
    await Promise.all([0, 1].map((w) => this.pool.request(w, { op: 'dispose', estId: this.estId })));
  }
}
