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
    /** What a member reports: the mean meta-training loss of the steps since its last report. */
    value: z.enum(['trainLoss']).default('trainLoss'),
    /** Checkpoints kept per member (a handed-over one must still be there when it is loaded). */
    keepCheckpoints: z.number().int().positive().default(20),
    /** Seed of the random perturbations (WinnerTakeAllGenetic). */
    seed: z.number().int().default(0),
  })
  .strict();

/** A parsed `population:` section, defaults filled in. */
export type PopulationConfig = z.infer<typeof PopulationSchema>;
