/**
 * The configuration of a meta-training experiment: which registered plugins it uses (learned
 * optimizer, meta-optimizer, truncation schedule, truncated step, gradient estimator, tasks), how
 * many tasks of each, the run's length, seed and random mode, and what it logs. Validation checks
 * every nested plugin config against that plugin's own schema; errors name the field path.
 */
import { z } from 'zod';
import { random, formatZodError, nonFiniteConfigField, type Registry } from '@lopt/core';
import { ConfigError, isPluginRef } from './config';
import { taskKind } from './task_entries';
import { ContinuousEvalSchema, validateEvalSection } from './continuous_eval/evaluation_set';

/** The largest seed that names its own random stream (2^32 - 1). */
export const MAX_SEED = 0xffffffff;
import { PopulationSchema } from './population/config';

const pluginRef = z
  .object({
    name: z.string().min(1),
    config: z.record(z.string(), z.any()).default({}),
  })
  .strict();

/**
 * One entry of an experiment's `tasks`: a registered task or task family, its config, and how many tasks of
 * it are trained in parallel.
 */
export const TaskEntrySchema = z
  .object({
    name: z.string().min(1),
    config: z.record(z.string(), z.any()).default({}),
    numTasks: z.number().int().positive(),
  })
  .strict();

/**
 * The `logging:` section of an experiment config: scalar, histogram and metric intervals, checkpoint
 * intervals and how many checkpoints to keep.
 */
export const LoggingSchema = z
  .object({
    /** write scalars every n outer steps */
    scalarsEvery: z.number().int().positive().default(1),
    /** histograms of θ and its gradient every n outer steps */
    histogramsEvery: z.number().int().positive().default(10),
    /** also compute the estimators' extra metrics (grad norms, Δ statistics) every n steps */
    metricsEvery: z.number().int().positive().default(10),
    checkpointEverySteps: z.number().int().positive().default(100),
    checkpointEverySeconds: z.number().positive().default(600),
    keepCheckpoints: z.number().int().positive().default(5),
  })
  .strict();

/**
 * An experiment config: mode, steps, seed, random mode, the plugins (learned optimizer, θ optimizer,
 * truncation schedule, estimator, truncated step, tasks), workers, logging, divergence limit, and optional
 * `eval` and `population` sections.
 */
export const MetaTrainingSchema = z
  .object({
    description: z.string().default(''),
    mode: z.enum(['single-machine', 'learner-worker']),
    steps: z.number().int().positive(),
    /**
     * jax.random.PRNGKey(seed) with x64 off (the reference's setting) keeps only the low 32 bits,
     * so any seed outside 0..2^32-1 would silently repeat the run of one inside it.
     */
    seed: z
      .number()
      .int()
      .min(0, { message: 'must be in 0..4294967295 (PRNGKey keeps the low 32 bits: a negative seed repeats the run of seed + 2^32)' })
      .max(MAX_SEED, { message: 'must be in 0..4294967295 (PRNGKey keeps the low 32 bits: a larger seed repeats the run of seed mod 2^32)' })
      .default(0),
    /**
     * The reference's Part 5 notebook passes the same key to every update in its first
     * (SingleMachineGradientLearner) loop.
     */
    reuseKey: z.boolean().default(false),
    /**
     * jax's random-number mode for every key this run draws (see @lopt/core random.ts): false =
     * legacy (jax < 0.5, the reference's notebooks), true = jax >= 0.5. Left out, a run takes the
     * mode it was started with on --resume, else JAX_THREEFRY_PARTITIONABLE, else false.
     */
    threefryPartitionable: z.boolean().optional(),
    learnedOptimizer: pluginRef,
    thetaOptimizer: pluginRef,
    truncationSchedule: pluginRef,
    gradientEstimator: pluginRef,
    /** The truncated step each estimator drives (its options, e.g. randomInitialIterationOffset). */
    truncatedStep: pluginRef.default({ name: 'VectorizedLOptTruncatedStep', config: {} }),
    tasks: z.array(TaskEntrySchema).min(1),
    /** learner-worker mode: in-process workers, each with its own estimators and unroll states */
    numWorkers: z.number().int().positive().default(1),
    logging: LoggingSchema.default({}),
    /**
     * Stop with an error after this many consecutive outer steps whose meta-gradients were
     * entirely non-finite (the run has diverged); the newest checkpoint stays the last finite one.
     */
    maxNonFiniteSteps: z.number().int().positive().max(1_000_000).default(20),
    /** Continuous evaluation of the run's checkpoints (`lopt run --eval`; continuous_eval/). */
    eval: ContinuousEvalSchema.optional(),
    /** Population-based training (`lopt population`): see population/config.ts. */
    population: PopulationSchema.optional(),
  })
  .strict();

/** A validated experiment config, defaults filled in. */
export type MetaTrainingConfig = z.infer<typeof MetaTrainingSchema>;
/** An experiment config as written (defaulted fields optional). */
export type MetaTrainingInput = z.input<typeof MetaTrainingSchema>;

function isPlainObject(x: unknown): x is Record<string, any> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Deep merge of plain objects (arrays and scalars in `over` replace). A plugin reference in `over`
 * that names another plugin than `base` replaces it whole: the new plugin starts from its own
 * defaults, not from the old one's fields.
 */
export function deepMerge(base: any, over: any): any {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  if (isPluginRef(base) && typeof over.name === 'string' && over.name !== base.name) return over;
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(out[k], v) : v;
  return out;
}


/**
 * Validates the whole configuration, including every nested plugin's own config against its
 * schema; errors name the field path (e.g. `gradientEstimator.config.truncLength`) and list the
 * allowed names or values.
 */
export function validateMetaTrainingConfig(input: unknown, registry: Registry): MetaTrainingConfig {
  const bad = nonFiniteConfigField(input);
  if (bad) throw new ConfigError(bad);
  const res = MetaTrainingSchema.safeParse(input);
  if (!res.success) throw new ConfigError(formatZodError(res.error));
  const cfg = res.data;
  const check = (kind: Parameters<Registry['get']>[0], ref: { name: string; config: Record<string, unknown> }, path: string) => {
    if (!registry.has(kind, ref.name)) {
      const names = registry.list(kind).map((e) => e.name);
      throw new ConfigError(`${path}.name: unknown ${kind} '${ref.name}' (allowed: ${names.join(', ')})`);
    }
    const entry = registry.get(kind, ref.name);
    const r = entry.schema.safeParse(ref.config ?? {});
    if (!r.success) throw new ConfigError(formatZodError(r.error, `${path}.config`));
    ref.config = r.data as Record<string, unknown>;
  };
  check('learned_optimizer', cfg.learnedOptimizer, 'learnedOptimizer');
  check('optimizer', cfg.thetaOptimizer, 'thetaOptimizer');
  check('truncation_schedule', cfg.truncationSchedule, 'truncationSchedule');
  check('gradient_estimator', cfg.gradientEstimator, 'gradientEstimator');
  check('truncated_step', cfg.truncatedStep, 'truncatedStep');
  cfg.tasks.forEach((t, i) => {
    const kind = taskKind(registry, t.name);
    if (!kind) {
      const names = [...registry.list('task_family'), ...registry.list('task')].map((e) => e.name);
      throw new ConfigError(`tasks.${i}.name: unknown task or task family '${t.name}' (allowed: ${names.join(', ')})`);
    }
    check(kind, t, `tasks.${i}`);
  });
  if (cfg.eval) validateEvalSection(cfg.eval, registry);
  return cfg;
}


/**
 * The config with its random mode decided: the config's own, else `recorded` (the mode a resumed
 * run was started with), else the environment's JAX_THREEFRY_PARTITIONABLE, else legacy.
 */
export function withRandomMode(cfg: MetaTrainingConfig, recorded?: boolean): MetaTrainingConfig {
  if (cfg.threefryPartitionable !== undefined) return cfg;
  return { ...cfg, threefryPartitionable: recorded ?? random.envFlag('JAX_THREEFRY_PARTITIONABLE') ?? false };
}


/** A split's stream position for checkpoints, for every dataset the run uses. */
