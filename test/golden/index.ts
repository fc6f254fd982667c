/**
 * Golden values made by the real learned_optimization (tools/reference/make_golden.py; origin and
 * versions in README.md beside this file), and the comparisons the tests make with them.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

export type RandomMode = 'legacy' | 'partitionable';
export const MODES: RandomMode[] = ['legacy', 'partitionable'];

/** An array as the generator writes it: every value, or (large arrays) a head and checksums. */
export interface GoldenArray {
  shape: number[];
  dtype: string;
  values?: unknown;
  head?: number[];
  checksum?: { sum: number; abs_sum: number; weighted_sum: number };
}

const cache = new Map<string, any>();

/** One golden file, e.g. `golden('legacy', 'inits.json')`. */
export function golden(mode: RandomMode, file: string): any {
  const p = path.join(__dirname, mode, file);
  if (!cache.has(p)) cache.set(p, JSON.parse(fs.readFileSync(p, 'utf8')));
  return cache.get(p);
}

function flatValues(v: unknown): number[] {
  return Array.isArray(v) ? (v as unknown[]).flatMap(flatValues) : [Number(v)];
}

/** Max |a − b| over every element, or over the head and checksums of a large golden array. */
export function goldenDiff(actual: tf.Tensor | ArrayLike<number>, want: GoldenArray): { maxAbs: number; maxRel: number } {
  const shape = actual instanceof tf.Tensor ? actual.shape : [actual.length];
  const got = Array.from(actual instanceof tf.Tensor ? (actual.dataSync() as ArrayLike<number>) : actual, Number);
  const wantSize = want.shape.reduce((a, b) => a * b, 1);
  if (got.length !== wantSize) {
    throw new Error(`size ${got.length} (shape [${shape}]) against golden shape [${want.shape}]`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  const cmp = (a: number, b: number) => {
    if (Number.isNaN(a) !== Number.isNaN(b)) maxAbs = maxRel = Infinity;
    const d = Math.abs(a - b);
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(Math.abs(b), 1e-30));
  };
  if (want.values !== undefined) {
    flatValues(want.values).forEach((b, i) => cmp(got[i], b));
  } else {
    want.head!.forEach((b, i) => cmp(got[i], b));
    let sum = 0;
    let absSum = 0;
    let weighted = 0;
    got.forEach((x, i) => {
      sum += x;
      absSum += Math.abs(x);
      weighted += x * ((i % 97) + 1);
    });
    // Checksums are sums of many float32 values: compare them relative to the sum of magnitudes.
    const scale = Math.max(want.checksum!.abs_sum, 1e-30);
    maxAbs = Math.max(maxAbs, Math.abs(sum - want.checksum!.sum) / scale, Math.abs(absSum - want.checksum!.abs_sum) / scale,
      Math.abs(weighted - want.checksum!.weighted_sum) / (97 * scale));
  }
  return { maxAbs, maxRel };
}

/** jax keystr paths of a flattened tree: `['mlp/~/linear_0']['w']` → ['mlp/~/linear_0', 'w']. */
export function keyPath(keystr: string): string[] {
  return [...keystr.matchAll(/\['([^']*)'\]|\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** The leaf of a nested object at a keystr path. */
export function leafAt(tree: any, keystr: string): any {
  return keyPath(keystr).reduce((t, k) => (t === undefined ? undefined : t[k]), tree);
}

/**
 * Compare every leaf of a golden flat tree (keystr → array) with a lopt-ts tree; `rename` maps a
 * keystr path to the lopt-ts path (default: the same names). Returns the worst leaf.
 */
export function treeDiff(
  tree: any,
  want: Record<string, GoldenArray>,
  rename: (keystr: string) => string = (k) => k,
): { maxAbs: number; worst: string; leaves: number } {
  let maxAbs = 0;
  let worst = '';
  let leaves = 0;
  for (const [k, g] of Object.entries(want)) {
    const leaf = leafAt(tree, rename(k));
    if (leaf === undefined) throw new Error(`lopt-ts tree lacks ${rename(k)} (golden ${k})`);
    const d = goldenDiff(leaf, g).maxAbs;
    leaves++;
    if (d >= maxAbs) {
      maxAbs = d;
      worst = k;
    }
  }
  return { maxAbs, worst, leaves };
}
