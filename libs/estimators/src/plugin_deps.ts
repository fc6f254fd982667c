/**
 * The typed collaborators of the plugin kinds this lib builds around other plugins, added to core's
 * `PluginDeps` so `registry.create('gradient_estimator', name, config, deps)` checks them.
 */
import type { LearnedOptimizer } from '@lopt/optimizers';
import type { TaskFamily } from '@lopt/tasks';
import type { TruncatedStep } from './truncated_step';
import type { TruncationSchedule } from './truncation_schedule';

declare module '@lopt/core' {
  interface PluginDeps {
    /** A truncated step trains `numTasks` tasks of `taskFamily` with `learnedOptimizer`. */
    truncated_step: { taskFamily: TaskFamily; learnedOptimizer: LearnedOptimizer; truncationSchedule: TruncationSchedule; numTasks: number };
    /** An estimator drives a truncated step; the full-length ones also set lengths from the schedule. */
    gradient_estimator: { truncatedStep: TruncatedStep; truncationSchedule: TruncationSchedule };
  }
}
