/** Building the experiment config a learner and its workers share, and its hash. */
import { Registry } from '@lopt/core';
import { MetaTrainingConfig, validateMetaTrainingConfig } from '../experiments/meta_training';
import { configHash } from '../checkpoints';
import { loadExperimentConfig } from '../config';

export interface ExperimentSpec {
  name: string;
  config: MetaTrainingConfig;
  /** hash of the fields that change what a worker computes (not steps, logging, mode, description) */
  hash: string;
}

/** Fields left out of the shared hash: the learner may change them (e.g. `--steps` on resume). */
export const UNHASHED_FIELDS = ['steps', 'logging', 'mode', 'description', 'numWorkers'] as const;

export function workerConfigHash(config: MetaTrainingConfig): string {
  const c: Record<string, unknown> = { ...config };
  for (const k of UNHASHED_FIELDS) delete c[k];
  return configHash(c);
}

export function buildExperiment(
  registry: Registry,
  name: string,
  opts: { configFile?: string; set?: string[]; steps?: number } = {},
): ExperimentSpec {
  if (!registry.has('experiment', name)) {
    const names = registry.list('experiment').map((e) => e.name);
    throw new Error(`unknown experiment '${name}' (allowed: ${names.join(', ')})`);
  }
  const raw = loadExperimentConfig(opts.configFile, opts.set ?? []);
  if (opts.steps !== undefined) raw.steps = opts.steps;
  const config = validateMetaTrainingConfig(registry.parseConfig('experiment', name, raw), registry);
  return { name, config, hash: workerConfigHash(config) };
}
