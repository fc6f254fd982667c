/** An experiment's task entries name either a task family or a single task (wrapped as a family of one); the logic lives in @lopt/tasks. */
export { taskKind, taskFamilyFromEntry as makeTaskFamily } from '@lopt/tasks';
