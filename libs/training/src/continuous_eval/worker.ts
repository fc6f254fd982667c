/**
 * What an eval worker does with one job (reference `run_eval_worker.py`, `load_gin_and_run` and
 * `lopt_eval`): load the checkpoint's θ (cached: a worker usually runs several tasks of the same
 * checkpoint), build the job's task (cached per task and config, as the reference caches task
 * families), and train it for one seed with `lopt eval`'s code (evaluation.ts).
 */
import { deserializeTree, loadParams, random, treeDispose, type PyTree, type Registry } from '@lopt/core';
import type { LearnedOptimizer, Theta } from '@lopt/optimizers';
import { makeEvalTask, nonFiniteLeaves, resolveEvalCurveOptions, seedTrainingCurves, type EvalTaskObject } from '../evaluation';
import type { EvalJob } from './chief';
import type { EvalJobResult } from './metrics';

/**
 * Runs eval jobs for an eval worker (reference `continuous_eval/run_eval_worker.py`, `load_gin_and_run`):
 * trains the job's task for one seed with the checkpoint's θ, caching θ and the built tasks between jobs.
 */
export class EvalJobRunner {
  private readonly tasks = new Map<string, EvalTaskObject>();
  private theta: { path: string; theta: PyTree; step: number } | null = null;

  constructor(private readonly registry: Registry) {}

  /**
   * Runs one job; a job that cannot run (bad θ, unknown task) resolves to a result with `error`.
   * θ comes from `job.paramsPath`, or from `thetaTree` (its bytes in core's tree format, as a
   * remote eval worker receives it).
   */
  async run(job: EvalJob, thetaTree?: Uint8Array): Promise<EvalJobResult> {
    const t0 = Date.now();
    let lopt: LearnedOptimizer;
    let taskObj: EvalTaskObject;
    let step = 0;
    try {
      const lo = job.learnedOptimizer;
      lopt = this.registry.create<LearnedOptimizer>('learned_optimizer', lo.name, this.registry.parseConfig('learned_optimizer', lo.name, lo.config));
      const key = JSON.stringify([job.task.task, job.task.taskConfig]);
      if (!this.tasks.has(key)) this.tasks.set(key, makeEvalTask(this.registry, job.task.task, job.task.taskConfig, 'eval.tasks'));
      taskObj = this.tasks.get(key)!;
      step = (await this.loadTheta(job, lopt, thetaTree)).step;
    } catch (e) {
      return { step, totalTime: (Date.now() - t0) / 1000, curves: {}, error: (e as Error).message };
    }
    const opt = lopt.optFn(this.theta!.theta as Theta);
    const curves = await seedTrainingCurves(taskObj.task, opt, job.task.steps, job.task.seed, resolveEvalCurveOptions(job.task.steps, job.task));
    const keep: Record<string, Array<number | null>> = {};
    // the evaluations only (the metrics read nothing else): the chief keeps results in its state file
    for (const [k, v] of Object.entries(curves)) if (k.startsWith('eval/')) keep[k] = v.map((x) => (Number.isNaN(x) ? null : x));
    return { step, totalTime: (Date.now() - t0) / 1000, curves: keep };
  }

  private async loadTheta(job: EvalJob, lopt: LearnedOptimizer, thetaTree?: Uint8Array): Promise<{ step: number }> {
    const p = job.paramsPath;
    if (this.theta?.path === p) return this.theta;
    this.dispose();
    const r = thetaTree ? { theta: deserializeTree(thetaTree, p), step: job.step } : await loadParams(p);
    const template = lopt.init(random.PRNGKey(0));
    try {
      const want = JSON.stringify(shapes(template));
      const got = JSON.stringify(shapes(r.theta));
      if (want !== got) throw new Error(`θ in ${p} does not fit the run's learned optimizer (expected ${want.slice(0, 200)}, got ${got.slice(0, 200)})`);
    } finally {
      treeDispose(template);
    }
    const bad = nonFiniteLeaves(r.theta);
    if (bad.length) {
      treeDispose(r.theta);
      throw new Error(`θ in ${p} is not finite (NaN or Inf in ${bad.join(', ')})`);
    }
    this.theta = { path: p, theta: r.theta, step: r.step ?? 0 };
    return this.theta;
  }

  dispose(): void {
    if (this.theta) treeDispose(this.theta.theta);
    this.theta = null;
  }
}

function shapes(tree: PyTree): unknown {
  if (tree && typeof tree === 'object' && 'shape' in (tree as object) && 'dtype' in (tree as object)) return (tree as { shape: number[] }).shape;
  if (Array.isArray(tree)) return tree.map(shapes);
  if (tree && typeof tree === 'object') return Object.fromEntries(Object.keys(tree).sort().map((k) => [k, shapes((tree as Record<string, PyTree>)[k])]));
  return tree;
}
