/**
 * The `eval:` section of an experiment config and the evaluation set it defines (reference
 * `continuous_eval/evaluation_set.py`, `eval_multiple_tasks` / `eval_task_family`): every task ×
 * every seed is one evaluation job, named `<task>__<seed index>` as the reference names them, each
 * training a fresh task for `steps` inner steps with the checkpoint's θ.
 *
 * One job is one seed of `lopt eval` (evaluation.ts): seed index t uses seed `seedOffset + t`, so a
 * job's numbers equal `lopt eval --params <checkpoint> --task <task> --steps <steps> --seed
 * <seedOffset> --seeds <seeds>` for that seed. (The reference's `eval_multiple_tasks` trains
 * `n_tasks` copies per job with an unseeded key; its `eval_task_family` names jobs by the bare
 * seed index, which collides between families, so every job here is `<task>__<t>`.)
 */
import { z } from 'zod';
import { formatZodError, type Registry } from '@lopt/core';
import { ConfigError } from '../config';
import { taskKind } from '../task_entries';

export const EvalTaskSchema = z
  .object({
    name: z.string().min(1),
    config: z.record(z.string(), z.any()).default({}),
  })
  .strict();

/**
 * The `eval:` section of an experiment config (reference `continuous_eval/evaluation_set.py` and
 * `run_eval_chief.py` options): tasks, seeds, inner steps, evaluation schedule, workers and polling; the
 * schema holds every default.
 */
export const ContinuousEvalSchema = z
  .object({
    /** The reference's `chief_name`: the TensorBoard tag prefix and `<logdir>/<chiefName>/`. */
    chiefName: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'chiefName: letters, digits, _ . - only')
      .default('eval_chief'),
    /** Tasks or task families to evaluate on; empty: the experiment's own training tasks. */
    tasks: z.array(EvalTaskSchema).default([]),
    /** Seeds per task (reference `eval_multiple_tasks(seeds=5)`). */
    seeds: z.number().int().positive().default(5),
    /** Seed index t runs seed seedOffset + t. */
    seedOffset: z.number().int().nonnegative().default(0),
    /** Inner training steps per job (reference default 1000). */
    steps: z.number().int().positive().default(1000),
    /** `lopt eval`'s evaluation schedule: every n steps (default min(10, steps/10)), batches per evaluation and at the end. */
    evalEvery: z.number().int().positive().optional(),
    evalBatches: z.number().int().positive().default(5),
    lastEvalBatches: z.number().int().positive().default(20),
    /** Eval workers `lopt run --eval` starts beside training (worker threads). */
    numWorkers: z.number().int().positive().max(64).default(1),
    /**
     * The reference's `skip_checkpoints_if_busy`: a new checkpoint is not evaluated while jobs of an
     * earlier one wait for a worker (the newest is always taken next). The final checkpoint of a run
     * is always evaluated.
     */
    skipCheckpointsIfBusy: z.boolean().default(true),
    /** How often the chief looks for new `params_<n>` (reference `sleep_time`: 10 s). */
    pollSeconds: z.number().positive().default(10),
  })
  .strict();

/** A parsed `eval:` section, defaults filled in. */
export type ContinuousEvalConfig = z.infer<typeof ContinuousEvalSchema>;
/** An `eval:` section as written (every field optional). */
export type ContinuousEvalInput = z.input<typeof ContinuousEvalSchema>;

/** One evaluation of the set: a task for one seed. */
export interface EvalTaskConfig {
  /** `<task>__<t>`: the name under which its metrics are written. */
  name: string;
  task: string;
  taskConfig: Record<string, unknown>;
  seed: number;
  steps: number;
  evalEvery?: number;
  evalBatches: number;
  lastEvalBatches: number;
}

/** The experiment's training tasks, as the default evaluation tasks. */
export interface TaskLike {
  name: string;
  config: Record<string, unknown>;
}

/** The evaluation set: tasks × seeds, in that order (task-major), as the reference lists it. */
export function evaluationSet(cfg: ContinuousEvalConfig, trainingTasks: readonly TaskLike[] = []): EvalTaskConfig[] {
  const tasks = cfg.tasks.length ? cfg.tasks : uniqueTasks(trainingTasks);
  const out: EvalTaskConfig[] = [];
  const seen = new Set<string>();
  for (const t of tasks) {
    // two entries of the same task with different configs get distinct names
    let base = t.name;
    for (let k = 2; seen.has(base); k++) base = `${t.name}_${k}`;
    seen.add(base);
    for (let i = 0; i < cfg.seeds; i++) {
      out.push({
        name: `${base}__${i}`,
        task: t.name,
        taskConfig: t.config,
        seed: cfg.seedOffset + i,
        steps: cfg.steps,
        ...(cfg.evalEvery !== undefined ? { evalEvery: cfg.evalEvery } : {}),
        evalBatches: cfg.evalBatches,
        lastEvalBatches: cfg.lastEvalBatches,
      });
    }
  }
  return out;
}

function uniqueTasks(tasks: readonly TaskLike[]): TaskLike[] {
  const seen = new Set<string>();
  return tasks.filter((t) => {
    const k = JSON.stringify([t.name, t.config]);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Checks the parsed `eval:` section against the registry: every task must be a registered task or
 * task family and its config valid for it (filled with its defaults). `path` prefixes the errors.
 */
export function validateEvalSection(cfg: ContinuousEvalConfig, registry: Registry, path = 'eval'): ContinuousEvalConfig {
  cfg.tasks.forEach((t, i) => {
    const kind = taskKind(registry, t.name);
    if (!kind) {
      const names = [...registry.list('task_family'), ...registry.list('task')].map((e) => e.name);
      throw new ConfigError(`${path}.tasks.${i}.name: unknown task or task family '${t.name}' (allowed: ${names.join(', ')})`);
    }
    const r = registry.get(kind, t.name).schema.safeParse(t.config ?? {});
    if (!r.success) throw new ConfigError(formatZodError(r.error, `${path}.tasks.${i}.config`));
    t.config = r.data as Record<string, unknown>;
  });
  return cfg;
}
