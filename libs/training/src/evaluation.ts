/**
 * The core of `lopt eval`, shared with continuous evaluation (continuous_eval/): train one task
 * (or one task sampled from a family) with an optimizer for one seed and return its training
 * curves (`singleTaskTrainingCurves`, reference `eval_training.py`).
 *
 * Fairness and reproducibility: seed s uses `PRNGKey(s)` for the task's init and steps, samples a
 * family's task from `foldIn(PRNGKey(s), 0x7a5c)`, and restarts every data split at epoch 0 with
 * the split's own seed + s. So the same (task, seed, steps, θ) gives the same numbers whichever
 * command (`lopt eval`, an eval worker) runs it.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeLeavesWithPath, type PyTree, type Registry } from '@lopt/core';
import type { Datasets, Task, TaskFamily } from '@lopt/tasks';
import type { Optimizer } from '@lopt/optimizers';
import { singleTaskTrainingCurves, type TrainingCurves } from '@lopt/estimators';
import { taskKind } from './task_entries';

/**
 * When an evaluation trains its task: evaluation interval in inner steps, batches per evaluation and for the
 * final one.
 */
export interface EvalCurveOptions {
  /** Evaluate every n inner steps (default `defaultEvalEvery(steps)`). */
  evalEvery?: number;
  /** Batches per evaluation (default 5). */
  evalBatches?: number;
  /** Batches for the evaluation after the last step (default 20). */
  lastEvalBatches?: number;
}

/** `lopt eval`'s default evaluation interval: min(10, steps/10), at least 1. */
export function defaultEvalEvery(steps: number): number {
  return Math.max(1, Math.min(10, Math.floor(steps / 10)) || 1);
}

/** The evaluation options with their defaults filled in. */
export function resolveEvalCurveOptions(steps: number, o: EvalCurveOptions = {}): Required<EvalCurveOptions> {
  const r = { evalEvery: o.evalEvery ?? defaultEvalEvery(steps), evalBatches: o.evalBatches ?? 5, lastEvalBatches: o.lastEvalBatches ?? 20 };
  if (!(r.evalBatches >= 1 && r.lastEvalBatches >= 1)) throw new Error('--eval-batches and --last-eval-batches must be >= 1');
  return r;
}

/** A task or task family built for evaluation, with its config (schema defaults filled in). */
export interface EvalTaskObject {
  /** The task, or the family one task per seed is sampled from. */
  task: Task | TaskFamily;
  /** Its config with the schema's defaults. */
  config: Record<string, unknown>;
  isFamily: boolean;
}

/** True for a {@link TaskFamily} (it has `taskFn`), false for a task. */
export function isTaskFamily(x: unknown): x is TaskFamily {
  return typeof (x as TaskFamily).taskFn === 'function';
}

/** Builds a registered task or task family; `field` names the option in the error. */
export function makeEvalTask(registry: Registry, name: string, config: Record<string, unknown> = {}, field = '--task'): EvalTaskObject {
  const kind = taskKind(registry, name);
  if (!kind) {
    const names = [...registry.list('task_family'), ...registry.list('task')].map((e) => e.name);
    throw new Error(`${field}: unknown task or task family '${name}' (allowed: ${names.join(', ')})`);
  }
  const parsed = registry.parseConfig(kind, name, config) as Record<string, unknown>;
  const task = registry.create<Task | TaskFamily>(kind, name, parsed);
  return { task, config: parsed, isFamily: isTaskFamily(task) };
}

/** Paths of θ's leaves that hold NaN or Inf (a diverged run's θ would give NaN curves). */
export function nonFiniteLeaves(theta: PyTree): string[] {
  return treeLeavesWithPath<unknown>(theta)
    .filter(([, l]) => l instanceof tf.Tensor && tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(l as tf.Tensor))).dataSync()[0] === 1))
    .map(([p]) => p);
}

/** Trains `taskObj` (a family: one task sampled for this seed) with `opt` for `steps` steps. */
export async function seedTrainingCurves(
  taskObj: Task | TaskFamily,
  opt: Optimizer,
  steps: number,
  seed: number,
  o: Required<EvalCurveOptions>,
): Promise<TrainingCurves> {
  let task: Task;
  let taskParam: PyTree = null;
  if (isTaskFamily(taskObj)) {
    taskParam = taskObj.sample(random.foldIn(random.PRNGKey(seed), 0x7a5c));
    task = taskObj.taskFn(taskParam);
  } else {
    task = taskObj;
  }
  resetStreams(task.datasets, seed);
  try {
    return await singleTaskTrainingCurves(task, opt, steps, random.PRNGKey(seed), o);
  } finally {
    treeDispose(taskParam);
  }
}

/** Each split's stream seed when first seen (so re-seeding is relative to the task's own seeds). */
const baseStreamSeeds = new WeakMap<object, Record<string, number>>();

/** Start every split's stream at epoch 0 with a seed offset (the same for every optimizer). */
function resetStreams(datasets: Datasets | null, seed: number): void {
  if (!datasets) return;
  if (!baseStreamSeeds.has(datasets)) {
    baseStreamSeeds.set(datasets, Object.fromEntries(datasets.splits.map((s) => [s, datasets.split(s).getState().seed])));
  }
  const base = baseStreamSeeds.get(datasets)!;
  for (const s of datasets.splits) datasets.split(s).setState({ seed: base[s] + seed, epoch: 0, position: 0 });
}
