/**
 * Metrics with the reference's `summary.py` key format: `"<agg>||<name>"`.
 *
 * `agg` says how repeated values of one metric combine (`aggregateMetricList`):
 * - `mean`: Σ of all elements of all occurrences / total element count;
 * - `sample`: one element drawn uniformly at random from all occurrences (deterministic given a key);
 * - `collect`: all occurrences raveled and concatenated (histograms);
 * - `tensor`: a single value, passed through (the last occurrence wins);
 * - `none`: must occur exactly once and be a scalar.
 * A `___N` suffix on a name (added by the reference for repeated names) is stripped, so
 * `mean||loss___1` and `mean||loss` aggregate together into `mean||loss`.
 */
import * as tf from '@tensorflow/tfjs';
import { PRNGKey, foldIn, randintArray } from './random';

/** How a metric is reduced across tasks and steps, as the reference's `mean||`, `sample||`, `collect||`, `none||` prefixes (summary.py). */
export const METRIC_AGGREGATIONS = ['mean', 'sample', 'collect', 'none', 'tensor'] as const;
/** One of `METRIC_AGGREGATIONS`. */
export type MetricAggregation = (typeof METRIC_AGGREGATIONS)[number];

/** A metric's value before aggregation. */
export type MetricValue = number | number[] | Float32Array | Int32Array | tf.Tensor;
/** Metrics by name (the name may carry an aggregation prefix, e.g. `mean||loss`). */
export type Metrics = Record<string, MetricValue>;
/** What `aggregateMetricList` returns: numbers for mean/sample/none, arrays for collect, tensor values as given. */
export type AggregatedMetrics = Record<string, number | number[] | MetricValue>;

/** A metric name or value that cannot be aggregated (unknown prefix, mismatched shapes). */
export class MetricsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricsError';
  }
}

/** Splits `"<agg>||<name>"`; throws a MetricsError naming the key and the allowed aggregations. */
export function parseMetricKey(key: string): { agg: MetricAggregation; name: string } {
  if (typeof key !== 'string') throw new MetricsError(`metric key must be a string, got ${typeof key}`);
  const parts = key.split('||');
  if (parts.length !== 2) {
    throw new MetricsError(
      `malformed metric key '${key}': expected '<agg>||<name>' with agg one of ${METRIC_AGGREGATIONS.join(', ')}`,
    );
  }
  const [agg, name] = parts;
  if (!(METRIC_AGGREGATIONS as readonly string[]).includes(agg)) {
    throw new MetricsError(`malformed metric key '${key}': unknown aggregation '${agg}'; allowed: ${METRIC_AGGREGATIONS.join(', ')}`);
  }
  if (!name) throw new MetricsError(`malformed metric key '${key}': empty name`);
  return { agg: agg as MetricAggregation, name };
}

/** Builds a metric key, validating the aggregation. */
export function metricKey(agg: MetricAggregation, name: string): string {
  const key = `${agg}||${name}`;
  parseMetricKey(key);
  return key;
}

/** Removes the reference's `___N` de-duplication suffix: `loss___3` -> `loss`. */
export function stripMetricSuffix(name: string): string {
  return name.replace(/___\d+$/, '');
}

/** Host copy of a metric value as a flat array (one read for a tensor). */
function toHost(v: MetricValue): ArrayLike<number> {
  if (v instanceof tf.Tensor) return v.dataSync() as ArrayLike<number>;
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [v ? 1 : 0];
  if (Array.isArray(v)) return (v as unknown[]).flat(Infinity) as number[];
  if (ArrayBuffer.isView(v)) return v as unknown as ArrayLike<number>;
  throw new MetricsError(`unsupported metric value of type ${typeof v}`);
}

function sizeOf(v: MetricValue): number {
  if (v instanceof tf.Tensor) return v.size;
  return toHost(v).length;
}

/** FNV-1a of a string, to fold a metric's name into the sampling key. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Combines a list of metric dicts (e.g. one per inner step or per worker) following each key's
 * aggregation. Output keys are `"<agg>||<name>"` with `___N` suffixes stripped. `opts.key` seeds
 * `sample` (default `PRNGKey(0)`); each sampled metric folds its name into the key, so its draw
 * does not depend on which other metrics are present.
 */
export function aggregateMetricList(list: Metrics[], opts: { key?: PRNGKey } = {}): AggregatedMetrics {
  const groups = new Map<string, { agg: MetricAggregation; name: string; values: MetricValue[]; rawKeys: string[] }>();
  for (const metrics of list) {
    for (const [k, v] of Object.entries(metrics ?? {})) {
      const { agg, name } = parseMetricKey(k);
      const base = stripMetricSuffix(name);
      const outKey = `${agg}||${base}`;
      let g = groups.get(outKey);
      if (!g) groups.set(outKey, (g = { agg, name: base, values: [], rawKeys: [] }));
      g.values.push(v);
      g.rawKeys.push(k);
    }
  }
  const key = opts.key ?? PRNGKey(0);
  const out: AggregatedMetrics = {};
  for (const outKey of [...groups.keys()].sort()) {
    const g = groups.get(outKey)!;
    switch (g.agg) {
      case 'mean': {
        let sum = 0;
        let count = 0;
        for (const v of g.values) {
          const h = toHost(v);
          for (let i = 0; i < h.length; i++) sum += h[i];
          count += h.length;
        }
        out[outKey] = count === 0 ? NaN : sum / count;
        break;
      }
      case 'sample': {
        const sizes = g.values.map(sizeOf);
        const total = sizes.reduce((a, b) => a + b, 0);
        if (total === 0) {
          out[outKey] = NaN;
          break;
        }
        let idx = total === 1 ? 0 : randintArray(foldIn(key, hash32(outKey)), 1, 0, total)[0];
        let j = 0;
        while (idx >= sizes[j]) idx -= sizes[j++];
        out[outKey] = toHost(g.values[j])[idx];
        break;
      }
      case 'collect': {
        const all: number[] = [];
        for (const v of g.values) {
          const h = toHost(v);
          for (let i = 0; i < h.length; i++) all.push(h[i]);
        }
        out[outKey] = all;
        break;
      }
      case 'tensor':
        out[outKey] = g.values[g.values.length - 1];
        break;
      case 'none': {
        if (g.values.length !== 1) {
          throw new MetricsError(
            `metric '${outKey}' has aggregation 'none' and must occur exactly once, but occurred ${g.values.length} times ` +
              `(${g.rawKeys.join(', ')}); use 'mean', 'sample' or 'collect' for repeated values`,
          );
        }
        const v = g.values[0];
        const size = sizeOf(v);
        const isScalar = v instanceof tf.Tensor ? v.rank === 0 : typeof v === 'number' || typeof v === 'boolean';
        if (!isScalar) {
          const shape = v instanceof tf.Tensor ? `shape [${v.shape.join(', ')}]` : `an array of ${size} elements`;
          throw new MetricsError(`metric '${outKey}' has aggregation 'none' and must be a scalar, got ${shape}`);
        }
        out[outKey] = toHost(v)[0];
        break;
      }
    }
  }
  return out;
}

/**
 * Reads every tensor value back to JavaScript: scalar tensors become numbers, others flat
 * `number[]`s; typed arrays become `number[]`; numbers and number arrays pass through.
 * All tensors are read with one `tf.concat` + `dataSync` (one device read in total).
 */
export function metricsToNumbers(metrics: Record<string, MetricValue | unknown>): Record<string, number | number[]> {
  const out: Record<string, number | number[]> = {};
  const tensorKeys: string[] = [];
  const tensors: tf.Tensor[] = [];
  for (const [k, v] of Object.entries(metrics)) {
    if (v instanceof tf.Tensor) {
      if (v.isDisposed) throw new MetricsError(`metric '${k}' is a disposed tensor`);
      tensorKeys.push(k);
      tensors.push(v);
    } else if (typeof v === 'number') out[k] = v;
    else if (typeof v === 'boolean') out[k] = v ? 1 : 0;
    else if (Array.isArray(v)) out[k] = (v as unknown[]).flat(Infinity) as number[];
    else if (ArrayBuffer.isView(v)) out[k] = Array.from(v as unknown as ArrayLike<number>);
    else throw new MetricsError(`metric '${k}' has unsupported value type ${typeof v}`);
  }
  if (tensors.length > 0) {
    let data: ArrayLike<number>;
    if (tensors.length === 1) {
      data = tensors[0].dataSync() as ArrayLike<number>;
    } else {
      const flat = tf.tidy(() => tf.concat(tensors.map((t) => tf.cast(t, 'float32').reshape([-1])), 0));
      data = flat.dataSync();
      flat.dispose();
    }
    let at = 0;
    tensors.forEach((t, i) => {
      const k = tensorKeys[i];
      out[k] = t.rank === 0 ? Number(data[at]) : Array.from(Array.prototype.slice.call(data, at, at + t.size) as number[], Number);
      at += t.size;
    });
  }
  // keep the caller's key order
  const ordered: Record<string, number | number[]> = {};
  for (const k of Object.keys(metrics)) ordered[k] = out[k];
  return ordered;
}
