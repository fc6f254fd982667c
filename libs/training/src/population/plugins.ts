/**
 * The three mutators as `population_mutator` plugins: each is built from its config and the
 * population's hyper-parameter perturbation (its `mutate_fn`). `lopt population --mutator` also
 * takes the reference's module names (`winner_take_all_genetic`, ...), see MUTATOR_ALIASES.
 */
import { z } from 'zod';
import { registerPlugin } from '@lopt/core';
import type { HParamPerturbation } from './hparams';
import { FixedSchedule } from './mutators/fixed_schedule';
import { BranchingSingleMachine } from './mutators/single_worker_explore';
import { WinnerTakeAllGenetic } from './mutators/winner_take_all_genetic';

declare module '@lopt/core' {
  interface PluginDeps {
    /** A mutator perturbs the population's tuned hyper-parameters with this. */
    population_mutator: { perturbation: HParamPerturbation };
  }
}

/** The reference's module names for its mutator classes. */
export const MUTATOR_ALIASES: Readonly<Record<string, string>> = {
  winner_take_all_genetic: 'WinnerTakeAllGenetic',
  single_worker_explore: 'BranchingSingleMachine',
  fixed_schedule: 'FixedSchedule',
};

/** A mutator name or alias as registered (unknown names are returned as given). */
export function mutatorName(name: string): string {
  return MUTATOR_ALIASES[name] ?? name;
}

/** Mutators that drive exactly one member. */
export const SINGLE_MEMBER_MUTATORS = new Set(['BranchingSingleMachine', 'FixedSchedule']);

const WinnerTakeAllSchema = z
  .object({
    /** Steps past the start of a generation from which its values count (default 10 when neither is set). */
    stepsPerExploit: z.number().int().positive().optional(),
    secondsPerExploit: z.number().positive().optional(),
    averageOverSamples: z.boolean().default(true),
  })
  .strict()
  .refine((c) => c.stepsPerExploit === undefined || c.secondsPerExploit === undefined, { message: 'set stepsPerExploit or secondsPerExploit, not both', path: ['secondsPerExploit'] })
  .transform((c) => (c.stepsPerExploit === undefined && c.secondsPerExploit === undefined ? { ...c, stepsPerExploit: 10 } : c));

registerPlugin({
  kind: 'population_mutator',
  name: 'WinnerTakeAllGenetic',
  description: 'winner take all (population/mutators/winner_take_all_genetic.py): all members restart from the best, hyper-parameters randomly perturbed',
  schema: WinnerTakeAllSchema,
  create: (c, { perturbation }) => new WinnerTakeAllGenetic((m, draw) => perturbation.random(m, draw), c),
  cls: WinnerTakeAllGenetic,
});

registerPlugin({
  kind: 'population_mutator',
  name: 'BranchingSingleMachine',
  description: 'one member explores (single_worker_explore.py): train on, then branch down and up from the same point, keep the best',
  schema: z
    .object({
      exploreSteps: z.number().int().positive().default(10),
      exploitSteps: z.number().int().nonnegative().default(10),
    })
    .strict(),
  create: (c, { perturbation }) => new BranchingSingleMachine((m, direction) => perturbation.directed(m, direction), c),
  cls: BranchingSingleMachine,
});

registerPlugin({
  kind: 'population_mutator',
  name: 'FixedSchedule',
  description: "one member's hyper-parameters on a schedule (fixed_schedule.py): { step: { path: value } }",
  schema: z
    .object({
      schedule: z.record(z.string().regex(/^\d+$/, 'schedule keys are steps (integers >= 0)'), z.record(z.string(), z.number())).default({}),
    })
    .strict(),
  create: (c) => new FixedSchedule(c.schedule),
  cls: FixedSchedule,
});
