/**
 * The `population:` section of an experiment config: how many members, which mutator, which
 * hyper-parameters (config paths under `thetaOptimizer.config`) it tunes and how, and how often a
 * member reports. Its plugin and path checks need the registry and the rest of the config:
 * `validatePopulation` (run.ts) makes them before anything is written.
 */
import { z } from 'zod';
import { HParamSchema } from './hparams';

/**
 * The `population:` section of an experiment config: members, mutator, tuned hyper-parameters, report
 * interval, checkpoints kept and seed; the schema holds every default.
 */
export const PopulationSchema = z
  .object({
    members: z.number().int().positive().default(4),
    /** A `population_mutator` plugin (or its reference module name, e.g. winner_take_all_genetic). */
    mutator: z
      .object({ name: z.string().min(1), config: z.record(z.string(), z.any()).default({}) })
      .strict()
      .default({ name: 'WinnerTakeAllGenetic', config: {} }),
    /** Tuned hyper-parameters by config path; default: the theta optimizer's learning rate. */
    hparams: z.record(z.string(), HParamSchema).default({ 'thetaOptimizer.config.learningRate': {} }),
    /** A member checkpoints and reports a value every this many outer steps. */
    evalEvery: z.number().int().positive().default(5),
    /**
     * What a member reports (lower is better): `trainLoss`, the mean meta-training loss of the
     * steps since its last report; or `eval`, its continuous-evaluation chief's `evalTag` for the
     * reported checkpoint (learner members: `lopt learner --population ... --eval`; members that
     * train themselves: an eval chief with worker threads each; the reference's
     * `run_eval_chief` with `log_to_population_tag`). `train_loss` is accepted for `trainLoss`.
     */
    value: z.preprocess((v) => (v === 'train_loss' ? 'trainLoss' : v), z.enum(['trainLoss', 'eval'])).default('trainLoss'),
    /**
     * With `value: eval`: the eval chief's metric reported (the reference's
     * `log_to_population_tag`, which has no default), a tag without the chief's prefix, e.g.
     * `train/nonorm_last_loss` (mean over jobs of the final training loss) or `<task>__<t>/norm_avg_loss`.
     */
    evalTag: z.string().min(1).default('train/nonorm_last_loss'),
    /** Checkpoints kept per member (a handed-over one must still be there when it is loaded). */
    keepCheckpoints: z.number().int().positive().default(20),
    /** Seed of the random perturbations (WinnerTakeAllGenetic). */
    seed: z.number().int().default(0),
  })
  .strict();

/** A parsed `population:` section, defaults filled in. */
export type PopulationConfig = z.infer<typeof PopulationSchema>;
