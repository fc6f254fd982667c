/** Datasets built once per process and configuration (loading and preprocessing are the slow part). */
import type { Datasets } from '../base';

const DATASET_CACHE = new Map<string, Datasets>();

/**
 * `@dataset_lru_cache`: one Datasets object per argument tuple, so every task using the same
 * dataset shares one stream per split.
 */
export function cachedDatasets(key: string, make: () => Datasets): Datasets {
  let d = DATASET_CACHE.get(key);
  if (!d) {
    d = make();
    DATASET_CACHE.set(key, d);
  }
  return d;
}

/** Forget every cached Datasets object (the next call rebuilds streams from position 0). */
export function clearDatasetCache(): void {
  DATASET_CACHE.clear();
}
