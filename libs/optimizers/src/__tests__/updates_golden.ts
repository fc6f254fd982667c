/**
 * Three updates of every learned optimizer (θ from its own init(PRNGKey(0))) and of Adam(1e-3) on
 * a tree with a matrix, a vector and a scalar leaf: the whole optimizer state after each update
 * against the real learned_optimization's (test/golden/<mode>/updates.json, made by
 * tools/reference/make_golden.py), in both random modes. Shared by the cpu and wasm test files.
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeLeaves, type PyTree } from '@lopt/core';
import { golden, MODES, treeDiff, type GoldenArray } from '../../../../test/golden';
import { Adam, AdafacMLPLOpt, LearnableAdam, LearnableSGD, LearnableSGDM, MLPLOpt } from '../index';
import type { Optimizer } from '../base';

/** jax keystr → lopt-ts path: attribute names camelCased (`.mom_rolling.m` → `.momRolling.m`). */
export const camel = (keystr: string) => keystr.replace(/\.([a-z0-9_]+)/g, (_, a: string) => '.' + a.replace(/_([a-z0-9])/g, (__, c: string) => c.toUpperCase()));

/** A golden flat tree of a dict of arrays → tensors. */
function tensors(flat: Record<string, GoldenArray>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, a] of Object.entries(flat)) {
    const name = /\['([^']*)'\]/.exec(k)![1];
    out[name] = tf.tensor((a.values as any) ?? [], a.shape, 'float32');
  }
  return out;
}

/** [name in the golden file, a fresh optimizer] */
export type OptimizerCase = [string, () => Optimizer];

const OPTIMIZERS: OptimizerCase[] = [
  ['MLPLOpt', () => { const l = new MLPLOpt(); return l.optFn(l.init(random.PRNGKey(0))); }],
  ['AdafacMLPLOpt', () => { const l = new AdafacMLPLOpt(); return l.optFn(l.init(random.PRNGKey(0))); }],
  ['LearnableSGD', () => { const l = new LearnableSGD(); return l.optFn(l.init(random.PRNGKey(0))); }],
  ['LearnableSGDM', () => { const l = new LearnableSGDM(); return l.optFn(l.init(random.PRNGKey(0))); }],
  ['LearnableAdam', () => { const l = new LearnableAdam(); return l.optFn(l.init(random.PRNGKey(0))); }],
  ['Adam(1e-3)', () => new Adam(1e-3)],
];

/**
 * One test per optimizer and random mode: 3 updates from the golden file's params0 and grads, the
 * whole state after each within `tolerance` of the reference's. `file` and `optimizers` default to
 * updates.json and the optimizers it holds; a new learned optimizer's golden file
 * (tools/reference/golden_common.py run_updates) uses the same layout. `rename` maps a golden keystr
 * to the lopt-ts path (default `camel`).
 */
export function describeOptimizerUpdates(
  backend: string,
  {
    file = 'updates.json',
    optimizers = OPTIMIZERS,
    tolerance = 2e-6,
    rename = camel,
  }: { file?: string; optimizers?: OptimizerCase[]; tolerance?: number; rename?: (keystr: string) => string } = {},
): void {
  describe.each(MODES)(`3 updates = reference (${file}), %s mode, ${backend}`, (mode) => {
    test.each(optimizers)('%s', (name, make) => {
      const g = golden(mode, file);
      random.withConfig({ threefryPartitionable: mode === 'partitionable' }, () => {
        const opt = make();
        let state: PyTree = opt.init(tensors(g.params0), { numSteps: 100 });
        for (const [i, want] of (g[name].states as Record<string, GoldenArray>[]).entries()) {
          const grads = tensors(g.grads[i]);
          const next = opt.update(state as any, grads, { loss: 0.5 });
          tf.dispose(grads);
          state = next;
          const d = treeDiff(state, want, rename);
          expect(d.leaves).toBe(Object.keys(want).length);
          // float rounding: the values are O(1) (iteration counters and decays exactly)
          expect({ update: i + 1, worstLeaf: d.worst, within: d.maxAbs <= tolerance }).toEqual({ update: i + 1, worstLeaf: d.worst, within: true });
        }
        tf.dispose(treeLeaves(state as any));
      });
    });
  });
}
