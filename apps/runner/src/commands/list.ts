/** `lopt list [kind]`: every registered plugin by kind, with its one-line description. */
import { Command } from 'commander';
import { PLUGIN_KINDS, PluginKind, Registry } from '@lopt/core';
import { CliContext } from './context';

export const KIND_TITLES: Record<PluginKind, string> = {
  task: 'Tasks',
  task_family: 'Task families',
  optimizer: 'Optimizers',
  learned_optimizer: 'Learned optimizers',
  truncation_schedule: 'Truncation schedules',
  truncated_step: 'Truncated steps',
  gradient_estimator: 'Gradient estimators',
  experiment: 'Experiments',
  population_mutator: 'Population mutators',
};

/** Accepts the kind names and a few plural/dashed spellings (`tasks`, `learned-optimizers`). */
export function parseKind(raw: string): PluginKind {
  const k = raw.trim().toLowerCase().replace(/-/g, '_');
  for (const kind of PLUGIN_KINDS) if (k === kind || k === `${kind}s` || k === kind.replace(/y$/, 'ies')) return kind;
  throw new Error(`unknown plugin kind '${raw}'; allowed: ${PLUGIN_KINDS.join(', ')}`);
}

export function formatList(registry: Registry, kinds: readonly PluginKind[] = PLUGIN_KINDS): string {
  const lines: string[] = [];
  for (const kind of kinds) {
    const entries = registry.list(kind);
    lines.push(`${KIND_TITLES[kind]} (${kind}):`);
    if (!entries.length) lines.push('  (none registered)');
    const width = Math.min(36, Math.max(0, ...entries.map((e) => e.name.length)));
    for (const e of entries) {
      const desc = (e.description ?? '').split('\n')[0].trim();
      lines.push(`  ${e.name.padEnd(width)}  ${desc}`.trimEnd());
    }
    lines.push('');
  }
  return lines.join('\n');
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list registered plugins (tasks, optimizers, learned optimizers, schedules, estimators, experiments)')
    .argument('[kind]', `only this kind: ${PLUGIN_KINDS.join(', ')}`)
    .option('--json', 'print JSON: {kind: [{name, description}]}')
    .action((kindArg: string | undefined, opts: { json?: boolean }) => {
      const kinds = kindArg ? [parseKind(kindArg)] : PLUGIN_KINDS;
      if (opts.json) {
        const out = Object.fromEntries(kinds.map((k) => [k, ctx.registry.list(k)]));
        ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else {
        ctx.stdout.write(formatList(ctx.registry, kinds));
      }
    });
}
