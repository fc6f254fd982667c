/**
 * A worker thread that holds one antithetic branch of each threaded PES estimator: its own tf.js
 * backend, its own TruncatedStep (built from a serialisable spec) and branch state. It receives θ
 * (per task, perturbed), keys and data, runs `truncatedUnroll` chunk by chunk exactly as
 * TruncatedPES does on one thread, and sends back losses and host counters (one read per call).
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, initBackend, loadPlugin, random, registry, treeLeaves, type PyTree } from '@lopt/core';
import { VectorizedLOptTruncatedStep, truncatedUnroll, type BatchIndices, type StepwiseData, type TruncatedUnrollState } from '@lopt/estimators';
import { fromWire, toWire, type WireTree } from './wire';
import { makeTaskFamily } from '../task_entries';

export interface BranchSpec {
  task: { name: string; config: Record<string, unknown> };
  numTasks: number;
  learnedOptimizer: { name: string; config: Record<string, unknown> };
  truncationSchedule: { name: string; config: Record<string, unknown> };
  truncatedStep: { name: string; config: Record<string, unknown> };
}

/** One `stepsPerJit` chunk of an unroll: its key, and its data as tensors or as example indices. */
export interface BranchChunk {
  key: number[];
  data: WireTree | null;
  indices: BatchIndices | null;
}

export type BranchRequest =
  | { op: 'init'; id: number; estId: number; spec: BranchSpec; theta: WireTree; outerState: any; key: number[] }
  | {
      op: 'unroll';
      id: number;
      estId: number;
      theta: WireTree;
      outerState: any;
      stepsPerJit: number;
      chunks: BranchChunk[];
      keepTaskParams: boolean;
    }
  | { op: 'getState'; id: number; estId: number }
  | { op: 'setState'; id: number; estId: number; spec: BranchSpec; state: WireTree }
  | { op: 'memory'; id: number }
  | { op: 'dispose'; id: number; estId: number };

interface Held {
  step: VectorizedLOptTruncatedStep;
  state: TruncatedUnrollState | null;
}

const held = new Map<number, Held>();

function build(spec: BranchSpec): VectorizedLOptTruncatedStep {
  const lopt = registry.create('learned_optimizer', spec.learnedOptimizer.name, spec.learnedOptimizer.config);
  const sched = registry.create('truncation_schedule', spec.truncationSchedule.name, spec.truncationSchedule.config);
  const taskFamily = makeTaskFamily(registry, spec.task);
  const step = registry.create('truncated_step', spec.truncatedStep.name, spec.truncatedStep.config, { taskFamily, learnedOptimizer: lopt, truncationSchedule: sched, numTasks: spec.numTasks });
  if (!(step instanceof VectorizedLOptTruncatedStep)) throw new Error(`branch worker: truncated step '${spec.truncatedStep.name}' is not a VectorizedLOptTruncatedStep`);
  return step;
}

const keyOf = (k: number[]) => Uint32Array.from(k);

async function handle(msg: BranchRequest): Promise<{ reply: any; transfer?: ArrayBuffer[]; after?: () => void }> {
  switch (msg.op) {
    case 'init': {
      let h = held.get(msg.estId);
      if (!h) {
        h = { step: build(msg.spec), state: null };
        held.set(msg.estId, h);
      }
      const theta = fromWire(msg.theta);
      if (h.state) disposeReplaced(h.state, {});
      h.state = h.step.initStepState(theta, msg.outerState, keyOf(msg.key), { thetaIsVector: false });
      disposeReplaced(theta, {});
      // after the reply: load this thread's copy of the data now, while the main thread loads its
      // own, rather than when the first unroll arrives (Fashion-MNIST: ~1 s of gunzip and resize)
      const step = h.step;
      return { reply: { id: msg.id }, after: () => step.prefetch() };
    }
    case 'unroll': {
      const h = held.get(msg.estId);
      if (!h || !h.state) throw new Error(`branch worker: estimator ${msg.estId} has no state (call init first)`);
      const theta = fromWire(msg.theta);
      const losses: tf.Tensor[] = [];
      const mask: Int32Array[] = [];
      const isDone: Int32Array[] = [];
      const iteration: Int32Array[] = [];
      const taskParams: WireTree[] = [];
      for (const c of msg.chunks) {
        // index-addressed data is gathered step by step (one copy of each example, no slicing),
        // or the chunk's at once for the steps that run on the host (hostRun reads it in place)
        const indices = c.indices;
        const datas: StepwiseData | PyTree = indices ? { at: (k: number) => h.step.batchFromIndices(indices, k), all: () => h.step.batchFromIndices(indices) } : fromWire(c.data);
        const [next, ys] = truncatedUnroll(h.step, msg.stepsPerJit, true, theta, keyOf(c.key), h.state, datas, msg.outerState, null, msg.keepTaskParams);
        if (!indices) disposeReplaced(datas as PyTree, {});
        disposeReplaced(h.state, next);
        h.state = next;
        losses.push(ys.loss);
        mask.push(...ys.mask);
        isDone.push(...ys.isDone);
        iteration.push(...ys.iteration);
        for (const tp of ys.taskParam) {
          taskParams.push(toWire(tp));
          disposeReplaced(tp, {});
        }
      }
      const all = tf.concat(losses, 0);
      const loss = all.dataSync() as Float32Array;
      const [T, N] = all.shape;
      all.dispose();
      losses.forEach((l) => l.dispose());
      disposeReplaced(theta, {});
      const flat = (rows: Int32Array[]) => {
        const out = new Int32Array(rows.length * N);
        rows.forEach((r, i) => out.set(r, i * N));
        return out;
      };
      const reply = { id: msg.id, T, N, loss, mask: flat(mask), isDone: flat(isDone), iteration: flat(iteration), taskParams };
      return { reply, transfer: [reply.loss.buffer as ArrayBuffer, reply.mask.buffer as ArrayBuffer, reply.isDone.buffer as ArrayBuffer, reply.iteration.buffer as ArrayBuffer] };
    }
    case 'getState': {
      const h = held.get(msg.estId);
      if (!h || !h.state) throw new Error(`branch worker: estimator ${msg.estId} has no state`);
      return { reply: { id: msg.id, state: toWire(h.state) } };
    }
    case 'setState': {
      let h = held.get(msg.estId);
      if (!h) {
        h = { step: build(msg.spec), state: null };
        held.set(msg.estId, h);
      }
      if (h.state) disposeReplaced(h.state, {});
      h.state = fromWire(msg.state) as unknown as TruncatedUnrollState;
      return { reply: { id: msg.id } };
    }
    case 'memory':
      return { reply: { id: msg.id, numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes } };
    case 'dispose': {
      const h = held.get(msg.estId);
      if (h?.state) disposeReplaced(h.state, {});
      held.delete(msg.estId);
      return { reply: { id: msg.id } };
    }
  }
}

async function main(): Promise<void> {
  const { backend, plugins, random: randomConfig } = workerData as { backend: string; plugins: string[]; random: random.RandomConfig };
  random.configure(randomConfig); // the parent's random mode (a thread does not see its configure())
  process.env.LOPT_QUIET = '1';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded for their registrations, by name
  for (const lib of ['@lopt/tasks', '@lopt/optimizers', '@lopt/estimators']) require(lib);
  for (const p of plugins ?? []) await loadPlugin(p);
  await initBackend(backend);
  // Requests are handled one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  parentPort!.on('message', (msg: BranchRequest) => {
    chain = chain.then(async () => {
      try {
        const { reply, transfer, after } = await handle(msg);
        parentPort!.postMessage(reply, transfer ?? []);
        // an error here resurfaces in the request that needs the same work
        try {
          after?.();
        } catch {
          /* ignored */
        }
      } catch (e) {
        parentPort!.postMessage({ id: msg.id, error: (e as Error).stack ?? String(e) });
      }
    });
  });
  parentPort!.postMessage({ id: 0, ready: true, backend: tf.getBackend() });
}

void main().catch((e) => parentPort!.postMessage({ id: 0, error: (e as Error).stack ?? String(e) }));
export { treeLeaves };
