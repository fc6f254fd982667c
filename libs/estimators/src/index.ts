/**
 * @lopt/estimators: truncation schedules, truncated steps, gradient estimators and learners.
 */
export * from './truncation_schedule';
export * from './truncated_step';
export * from './common';
export * from './gradient_estimator';
export * from './truncated_pes';
export * from './gradient_learner';
export { hostTensor, hostValues } from './host_ints';
export * from './es_estimators';
export * from './grad_estimators';
export * from './training';
