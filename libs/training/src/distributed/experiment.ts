/** Building the experiment config a learner and its workers share, and its hash. */
import { configHash, Registry } from '@lopt/core';
import { type MetaTrainingConfig, withRandomMode } from '../experiment_config';
import { resolveRunConfig } from '../train';


/** The experiment a learner and its workers share: name, validated config and {@link workerConfigHash}. */
export interface ExperimentSpec {
  name: string;
  config: MetaTrainingConfig;
  /** hash of the fields that change what a worker computes (not steps, logging, mode, description) */
  hash: string;
}

/** Fields left out of the shared hash: the learner may change them (e.g. `--steps` on resume). */
export const UNHASHED_FIELDS = ['steps', 'logging', 'mode', 'description', 'numWorkers', 'eval'] as const;

/**
 * Hash of the config fields that change what a worker computes (all but {@link UNHASHED_FIELDS}); a worker
 * whose hash differs from the learner's is refused.
 */
export function workerConfigHash(config: MetaTrainingConfig): string {
  const c: Record<string, unknown> = { ...config };
  for (const k of UNHASHED_FIELDS) delete c[k];
  // legacy randomness hashes as before the field existed; a worker in the other mode is refused
  if (!c.threefryPartitionable) delete c.threefryPartitionable;
  return configHash(c);
}

/**
 * The experiment config exactly as `lopt run` resolves it (preset, then file, then --set, then
 * --steps), with its random mode decided (the config's, else JAX_THREEFRY_PARTITIONABLE).
 */
export function buildExperiment(
  registry: Registry,
  name: string,
  opts: { configFile?: string; set?: string[]; steps?: number } = {},
): ExperimentSpec {
  const config = withRandomMode(resolveRunConfig(registry, name, { configFile: opts.configFile, set: opts.set ?? [], steps: opts.steps }));
  return { name, config, hash: workerConfigHash(config) };
}
