/**
 * A reference-written HyperV2 checkpoint (test/golden/hyper_v2_params.msgpack) stepping a
 * tfjs-layers model through `asTfjsOptimizer`: 3 `minimize` calls on a dense 5 -> 4 -> 3 network
 * whose loss is sum(w · G_t) (so the gradients are the golden G_t), weights after each step against
 * the real learned_optimization's opt.update on the same weights, gradients and losses
 * (test/golden/legacy/hyper_v2_layers.json, made by tools/reference/golden_hyper_v2_layers.py).
 * Shared by the cpu and wasm test files.
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { golden, goldenDiff, type GoldenArray } from '../../../../test/golden';
import { HyperV2 } from '../index';
import { PARAMS_FILE } from './hyper_v2_golden';

const G = () => golden('legacy', 'hyper_v2_layers.json');
const valuesOf = (a: GoldenArray) => (a.values as number[] | number[][]).flat() as number[];

export function describeHyperV2Layers(backend: string, tolerance: number): void {
  test(`[${backend}] HyperV2 from a reference checkpoint, as a tf.Optimizer on a tfjs-layers model: 3 minimize steps equal the reference's updates`, () => {
    const g = G();
    const model = tf.sequential({
      layers: [tf.layers.dense({ name: 'hidden', inputShape: [5], units: 4 }), tf.layers.dense({ name: 'out', units: 3 })],
    });
    // golden key of each trainable weight: ['<layer>/kernel'] or ['<layer>/bias']
    const weights = model.layers.flatMap((l) => l.trainableWeights.map((w, i) => ({ v: w.read() as tf.Variable, key: `['${l.name}/${i === 0 ? 'kernel' : 'bias'}']` })));
    model.setWeights(weights.map(({ key }) => tf.tensor(valuesOf(g.params0[key]), g.params0[key].shape)));
    const { lopt, theta } = HyperV2.fromCheckpoint(new Uint8Array(fs.readFileSync(PARAMS_FILE)), {}, PARAMS_FILE);
    const optimizer = lopt.asTfjsOptimizer(theta, { numSteps: 100 });
    g.grads.forEach((grads: Record<string, GoldenArray>, t: number) => {
      const consts = weights.map(({ key }) => tf.tensor(valuesOf(grads[key]), grads[key].shape));
      const loss = optimizer.minimize(() => tf.addN(weights.map(({ v }, i) => tf.sum(tf.mul(v, consts[i])))) as tf.Scalar, true)!;
      expect(loss.dataSync()[0]).toBeCloseTo(g.steps[t].loss, 4);
      for (const { v, key } of weights) {
        const { maxAbs, maxRel } = goldenDiff(v, g.steps[t].params[key]);
        if (!(maxAbs <= tolerance || maxRel <= tolerance)) throw new Error(`step ${t + 1} ${key}: max abs diff ${maxAbs}, rel ${maxRel} (tolerance ${tolerance})`);
      }
      tf.dispose([loss, ...consts]);
    });
    // the step moved the weights well above the tolerance (the test could fail)
    const moved = goldenDiff(weights[1].v, g.params0[weights[1].key]).maxAbs;
    expect(moved).toBeGreaterThan(100 * tolerance);
  });
}
