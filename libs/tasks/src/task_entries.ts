/** A task entry (`{name, config}`) names either a task family or a single task (wrapped as a family of one). */
import type { Registry } from '@lopt/core';
import type { Task, TaskFamily } from './base';
import { singleTaskToFamily } from './task';

/** Whether a task entry names a task family or a single task (undefined: neither). */
export function taskKind(registry: Registry, name: string): 'task_family' | 'task' | undefined {
  if (registry.has('task_family', name)) return 'task_family';
  if (registry.has('task', name)) return 'task';
  return undefined;
}

/** The family a task entry names; a single task becomes a family of one (`single_task_to_family`). */
export function taskFamilyFromEntry(registry: Registry, entry: { name: string; config?: Record<string, unknown> }): TaskFamily {
  const kind = taskKind(registry, entry.name);
  if (kind === 'task_family') return registry.create<TaskFamily>('task_family', entry.name, entry.config ?? {});
  if (kind === 'task') return singleTaskToFamily(registry.create<Task>('task', entry.name, entry.config ?? {}));
  const names = [...registry.list('task_family'), ...registry.list('task')].map((e) => e.name).sort();
  throw new Error(`unknown task or task family '${entry.name}' (allowed: ${names.join(', ')})`);
}
