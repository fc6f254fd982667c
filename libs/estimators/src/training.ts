/**
 * Training curves (reference `eval_training.py`, `single_task_training_curves` and
 * `multi_task_training_curves`).
 *
 * `singleTaskTrainingCurves` trains one task with an optimizer for `numSteps` steps, evaluating
 * every `evalEvery` steps on train / outer_valid / test. `multiTaskTrainingCurves` trains
 * `nTasks` tasks sampled from a family with a learned optimizer, all stacked along the leading
 * task axis (one batched call per step). Losses stay on the backend until the end and are read
 * back once, as plain number arrays.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves, treeMap, type PRNGKey, type PyTree, disposeReplaced } from '@lopt/core';
import type { Batch, Datasets, Task, TaskFamily } from '@lopt/tasks';
import type { LearnedOptimizer, Optimizer, OptState, Theta } from '@lopt/optimizers';

function expand(tree: PyTree): any {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.expandDims(x, 0) : x), tree);
}
function squeeze(tree: PyTree): any {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.squeeze(x, [0]) : x), tree);
}
/** Repeat every leaf's rows `reps` times each: [N, ...] -> [N·reps, ...] (row i·reps + v = row i). */
function repeatRows(tree: PyTree, reps: number): any {
  if (reps === 1) return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.clone(x) : x), tree);
  return treeMap((x: unknown) => {
    if (!(x instanceof tf.Tensor)) return x;
    const e = tf.expandDims(x, 1);
    const t = tf.tile(e, [1, reps, ...x.shape.slice(1).map(() => 1)]);
    return tf.reshape(t, [x.shape[0] * reps, ...x.shape.slice(1)]);
  }, tree);
}
/** Tile a single (unstacked) tree to a stack of n. */
function tileTree(tree: PyTree, n: number): any {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.tile(tf.expandDims(x, 0), [n, ...x.shape.map(() => 1)]) : x), tree);
}
/** Merge the two leading axes [a, b, ...] -> [a·b, ...]. */
function mergeLeading(tree: PyTree): any {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.reshape(x, [x.shape[0] * x.shape[1], ...x.shape.slice(2)]) : x), tree);
}

/** The data splits the training curves are evaluated on, as the reference names them. */
export const EVAL_SPLITS = ['train', 'outer_valid', 'test'] as const;

/** Options of `singleTaskTrainingCurves` (learned_optimization/eval_training.py, `single_task_training_curves`): how often and on how many batches to evaluate. */
export interface SingleTaskCurvesOptions {
  evalEvery?: number;
  evalBatches?: number;
  lastEvalBatches?: number;
  /** Task to evaluate with (defaults to `task`). */
  evalTask?: Task;
}

/** Curves as plain numbers; scalars (`eval/eval_batches`, ...) are one-element arrays. */
export type TrainingCurves = Record<string, number[]>;

/**
 * `single_task_training_curves`: `numSteps + 1` iterations; at `i % evalEvery == 0` evaluate on
 * train / outer_valid / test with `evalBatches` batches (`lastEvalBatches` at `i == numSteps`),
 * then take one training step. Returns `train/xs`, `train/loss` (length numSteps + 1), `eval/xs`,
 * `eval/<split>/loss`, `eval/<split>/loss_normalized`, `eval/<split>/<aux>`.
 */
export async function singleTaskTrainingCurves(
  task: Task,
  opt: Optimizer,
  numSteps: number,
  key: PRNGKey,
  options: SingleTaskCurvesOptions = {},
): Promise<TrainingCurves> {
  const evalEvery = options.evalEvery ?? 10;
  const evalBatches = options.evalBatches ?? 5;
  const lastEvalBatches = options.lastEvalBatches ?? 20;
  const evalTask = options.evalTask ?? task;
  const datasets: Datasets | null = task.datasets;

  let k = key;
  [k] = random.split(k); // key, key1 = split(key) (key1 unused, as the reference)
  const [p0, s0] = task.initWithState(k);
  let optState: OptState = opt.init(p0, { modelState: s0, numSteps });
  disposeReplaced([p0, s0], optState);

  const trainLoss: tf.Tensor[] = [];
  const evalXs: number[] = [];
  const evalVals: Record<string, tf.Tensor[]> = {};

  const batchEval = (split: string, nb: number, evalKey: PRNGKey) => {
    // All nb batches in one stacked call: params tiled to [nb, ...], data [nb, ...].
    const keys = random.split(evalKey, nb);
    const data: Batch = datasets ? datasets.split(split).next([nb]) : null;
    const out = tf.tidy(() => {
      const params = tileTree(opt.getParams(optState), nb);
      const st = opt.getState(optState);
      const r = evalTask.lossWithStateAndAuxBatch(params, st ? tileTree(st, nb) : null, keys, data);
      const res: Record<string, tf.Tensor> = {
        loss: tf.mean(r.loss),
        loss_normalized: tf.mean(evalTask.normalizer(r.loss)),
      };
      for (const [a, v] of Object.entries(r.aux)) res[a] = tf.mean(v);
      return res;
    });
    treeDispose(data);
    return out;
  };

  for (let i = 0; i <= numSteps; i++) {
    if (i % evalEvery === 0 && evalBatches) {
      const nb = i === numSteps ? lastEvalBatches : evalBatches;
      for (const s of EVAL_SPLITS) {
        const [k1, k2] = random.split(k);
        k = k1;
        const r = batchEval(s, nb, k2);
        for (const [name, v] of Object.entries(r)) (evalVals[`eval/${s}/${name}`] ??= []).push(v);
      }
      evalXs.push(i);
    }

    const data: Batch = datasets ? datasets.split('train').next() : null;
    // _next_state: key, key1 = split(key) for the loss; key, key1 = split(key) for the update
    const [ka, lossKey] = random.split(k);
    const [kb, updKey] = random.split(ka);
    k = kb;
    const step = tf.tidy(() => {
      const r = task.valueAndGradBatch(
        expand(opt.getParams(optState)),
        (() => {
          const st = opt.getState(optState);
          return st ? expand(st) : null;
        })(),
        [lossKey],
        expand(data),
      );
      const loss = tf.reshape(r.loss, []);
      const next = opt.update(optState, squeeze(r.grad), {
        loss,
        modelState: r.state ? squeeze(r.state) : null,
        isValid: false,
        key: updKey,
      });
      return { loss, next: next as unknown as tf.TensorContainer };
    }) as unknown as { loss: tf.Tensor; next: OptState };
    disposeReplaced(optState, step.next);
    optState = step.next;
    treeDispose(data);
    trainLoss.push(step.loss);
  }

  const ret: TrainingCurves = {
    'train/xs': Array.from({ length: numSteps + 1 }, (_, i) => i),
    'train/loss': Array.from(await readAll(trainLoss)),
  };
  if (evalBatches) {
    ret['eval/xs'] = evalXs;
    ret['eval/last_eval_batches'] = [lastEvalBatches];
    ret['eval/eval_batches'] = [evalBatches];
    for (const [name, vs] of Object.entries(evalVals)) ret[name] = Array.from(await readAll(vs));
  }
  treeDispose(optState);
  return ret;
}

/** Read a list of scalar tensors back in one transfer, disposing them. */
async function readAll(ts: tf.Tensor[]): Promise<Float32Array> {
  if (ts.length === 0) return new Float32Array(0);
  const s = tf.tidy(() => tf.concat(ts.map((t) => tf.reshape(t, [-1]))));
  const v = (await s.data()) as Float32Array;
  s.dispose();
  ts.forEach((t) => t.dispose());
  return v;
}

function treeDispose(tree: PyTree): void {
  for (const x of treeLeaves<unknown>(tree)) if (x instanceof tf.Tensor && !x.isDisposed) x.dispose();
}

/** Options of `multiTaskTrainingCurves`: the seed or key and the evaluation schedule. */
export interface MultiTaskCurvesOptions {
  seed?: number;
  key?: PRNGKey;
  /** Stacked task params `[nTasks, ...]` to use instead of sampling. */
  taskParams?: PyTree;
  nEvalBatchesVec?: number;
  nEvalBatches?: number;
  lastEvalBatches?: number;
  evalEvery?: number;
  evalJustAtEnd?: boolean;
  steps?: number;
  splits?: string[];
  withAuxValues?: string[];
}

/** Per-task curves: every value is `[nTasks][...]`; scalars are `[[v]]`. */
export type MultiTaskCurves = Record<string, number[][]>;

function toRows(flat: Float32Array | Int32Array, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, (_, r) => Array.from(flat.subarray(r * cols, (r + 1) * cols)));
}

/**
 * `multi_task_training_curves`: trains `nTasks` tasks from `taskFamily` with `learnedOpt.optFn(theta)`,
 * all in one stack. Evaluates every `evalEvery` steps (unless `evalJustAtEnd`) and once at the end
 * with `lastEvalBatches`. Returns `train/xs`, `train/loss` `[nTasks][steps]`, `eval/xs`,
 * `eval/<split>/loss`, `eval/<split>/norm_loss` `[nTasks][numEvals]`, `eval/<split>/aux/<k>`.
 */
export async function multiTaskTrainingCurves(
  taskFamily: TaskFamily,
  learnedOpt: LearnedOptimizer,
  theta: Theta,
  nTasks: number,
  options: MultiTaskCurvesOptions = {},
): Promise<MultiTaskCurves> {
  const steps = options.steps ?? 10000;
  const evalEvery = options.evalEvery ?? 10;
  const nVec = options.nEvalBatchesVec ?? 1;
  const nEval = options.nEvalBatches ?? 1;
  const lastEvalBatches = options.lastEvalBatches ?? 1;
  const splits = options.splits ?? ['train'];
  const withAux = options.withAuxValues ?? [];
  const key = options.key ?? random.PRNGKey(options.seed ?? 0);
  const datasets = taskFamily.datasets;

  let keys = random.split(key, nTasks);
  const opt = learnedOpt.optFn(theta);

  // init: per task (k1 -> task sample, k2 -> params, k3 -> opt init) as the reference
  const per = keys.map((k) => random.split(k, 3));
  const ownTaskParams = options.taskParams === undefined;
  const taskParams = ownTaskParams ? taskFamily.sampleBatch(per.map((p) => p[0])) : options.taskParams!;
  const task = taskFamily.taskFn(taskParams);
  const [p0, s0] = task.initWithStateBatch(per.map((p) => p[1]));
  let optState: OptState = opt.initBatch(p0, { modelState: s0, numSteps: steps, key: per[0][2] });
  disposeReplaced([p0, s0], optState);

  /** Per-task keys for this step, advancing the key chain. */
  const nextKeys = (): PRNGKey[] => {
    const sp = keys.map((k) => random.split(k));
    keys = sp.map((s) => s[0]);
    return sp.map((s) => s[1]);
  };

  // The eval stack is nTasks·nVec rows: row t·nVec + v is task t on its v-th batch.
  const evalTaskParams = nVec > 1 ? repeatRows(taskParams, nVec) : null;
  const evalTask = evalTaskParams ? taskFamily.taskFn(evalTaskParams) : task;
  const evalVals: Record<string, tf.Tensor[]> = {};
  const evalXs: number[] = [];

  const evalLoop = (nb: number) => {
    for (const s of splits) {
      const acc: Record<string, tf.Tensor[]> = {};
      for (let b = 0; b < nb; b++) {
        const dataKeys = nextKeys();
        const evalKeys = dataKeys.flatMap((k) => random.split(k, nVec));
        const data: Batch = datasets ? datasets.split(s).next([nTasks, nVec]) : null;
        const r = tf.tidy(() => {
          const params = repeatRows(opt.getParams(optState), nVec);
          const st = opt.getState(optState);
          const out = evalTask.lossWithStateAndAuxBatch(params, st ? repeatRows(st, nVec) : null, evalKeys, mergeLeading(data));
          const res: Record<string, tf.Tensor> = {
            loss: tf.mean(tf.reshape(out.loss, [nTasks, nVec]), 1),
            norm_loss: tf.mean(tf.reshape(evalTask.normalizer(out.loss), [nTasks, nVec]), 1),
          };
          for (const a of withAux) if (out.aux[a]) res[`aux/${a}`] = tf.mean(tf.reshape(out.aux[a], [nTasks, nVec]), 1);
          return res;
        });
        treeDispose(data);
        for (const [n, v] of Object.entries(r)) (acc[n] ??= []).push(v);
      }
      for (const [n, vs] of Object.entries(acc)) {
        const m = tf.tidy(() => tf.mean(tf.stack(vs), 0));
        vs.forEach((v) => v.dispose());
        (evalVals[`eval/${s}/${n}`] ??= []).push(m);
      }
    }
  };

  const trainLoss: tf.Tensor[] = [];
  for (let i = 0; i < steps; i++) {
    if (i % evalEvery === 0 && nVec > 0 && !options.evalJustAtEnd) {
      evalLoop(nEval);
      evalXs.push(i);
    }
    const data: Batch = datasets ? datasets.split('train').next([nTasks]) : null;
    const stepKeys = nextKeys().map((k) => random.split(k));
    const step = tf.tidy(() => {
      const r = task.valueAndGradBatch(opt.getParams(optState), opt.getState(optState), stepKeys.map((k) => k[0]), data);
      const next = opt.updateBatch(optState, r.grad, { loss: r.loss, modelState: r.state, key: stepKeys[0][1] });
      return { loss: r.loss, next: next as unknown as tf.TensorContainer };
    }) as unknown as { loss: tf.Tensor; next: OptState };
    disposeReplaced(optState, step.next);
    optState = step.next;
    treeDispose(data);
    trainLoss.push(step.loss);
  }
  if (nVec > 0) evalLoop(lastEvalBatches);
  evalXs.push(steps);

  const ret: MultiTaskCurves = {
    'train/xs': Array.from({ length: nTasks }, () => Array.from({ length: steps }, (_, i) => i)),
    'eval/xs': Array.from({ length: nTasks }, () => evalXs.slice()),
    'eval/last_eval_batches': [[lastEvalBatches]],
    'eval/eval_batches': [[nEval * nVec]],
  };
  if (trainLoss.length) {
    const tl = tf.tidy(() => tf.transpose(tf.stack(trainLoss))); // [nTasks, steps]
    ret['train/loss'] = toRows((await tl.data()) as Float32Array, nTasks, steps);
    tl.dispose();
    trainLoss.forEach((t) => t.dispose());
  } else {
    ret['train/loss'] = Array.from({ length: nTasks }, () => []);
  }
  for (const [name, vs] of Object.entries(evalVals)) {
    const t = tf.tidy(() => tf.transpose(tf.stack(vs))); // [nTasks, numEvals]
    ret[name] = toRows((await t.data()) as Float32Array, nTasks, vs.length);
    t.dispose();
    vs.forEach((v) => v.dispose());
  }
  treeDispose(optState);
  if (ownTaskParams) treeDispose(taskParams);
  treeDispose(evalTaskParams);
  return ret;
}
