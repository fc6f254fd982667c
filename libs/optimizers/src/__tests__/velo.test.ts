import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeShapes } from '@lopt/core';
import { GradientAccumulator, HyperV2, VeLO, WeightDecayWrapper } from '../index';
import { PARAMS_FILE } from './hyper_v2_golden';
import { expectClose, flat, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const small = () => new HyperV2({ lstmHiddenSize: 8, paramInits: 4 });

describe('VeLO prefab', () => {
  test('wrappers as prefab.py builds them; numSteps must match; θ or a checkpoint is required', () => {
    const lopt = small();
    const theta = lopt.init(random.PRNGKey(0));
    expect(new VeLO({ numTrainingSteps: 100, lopt, theta }).opt.constructor.name).toBe('HyperV2Optimizer');
    const wd = new VeLO({ numTrainingSteps: 100, weightDecay: 1e-6, lopt, theta }).opt as WeightDecayWrapper;
    expect(wd).toBeInstanceOf(WeightDecayWrapper);
    const acc = new VeLO({ numTrainingSteps: 301, maxTrainingSteps: 100, lopt, theta }).opt as GradientAccumulator;
    expect(acc).toBeInstanceOf(GradientAccumulator);
    expect(acc.numAverage).toBe(4);
    const v = new VeLO({ numTrainingSteps: 301, maxTrainingSteps: 100, lopt, theta });
    const s: any = v.init({ w: tf.ones([2, 3]) });
    // the inner optimizer is told floor(301 / 4) steps
    expect(flat(s.innerOptState.numSteps)).toEqual([75]);
    expect(() => v.init({ w: tf.ones([2]) }, { numSteps: 10 })).toThrow(/must match/);
    expect(() => new VeLO({ numTrainingSteps: 10 })).toThrow(/not bundled/);
    expect(() => new VeLO({ numTrainingSteps: 10, checkpoint: new Uint8Array(fs.readFileSync(PARAMS_FILE)) })).toThrow(/'ff_mod_stack\/~\/b0' has shape \[64,4\], expected \[256,4\]/);
    treeDispose([theta, s] as any);
  });

  test('batched accumulation = single-task accumulation', () => {
    const lopt = small();
    const theta = lopt.init(random.PRNGKey(1));
    const v = new VeLO({ numTrainingSteps: 300, maxTrainingSteps: 100, weightDecay: 0.01, lopt, theta });
    const p = [tf.tensor2d([[0.5, -1, 0.2], [1.5, 0.25, -0.3]]), tf.tensor2d([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6]])];
    const g = (i: number) => [tf.mul(p[0], 0.1 * (i + 1)), tf.mul(p[1], -0.2 * (i + 1))];
    const singles = [0, 1].map((n) => {
      let s = v.init({ w: p[n] });
      for (let i = 0; i < 4; i++) s = v.update(s, { w: g(i)[n] }, { loss: 1 + i + n });
      return s;
    });
    let sb = v.initBatch({ w: tf.stack(p) });
    for (let i = 0; i < 4; i++) sb = v.updateBatch(sb, { w: tf.stack(g(i)) }, { loss: tf.tensor1d([1 + i, 2 + i]) });
    expectClose(flat((v.getParams(sb) as any).w), [...flat((v.getParams(singles[0]) as any).w), ...flat((v.getParams(singles[1]) as any).w)], 1e-6, 1e-5);
    expect(treeShapes(sb).gradAccum).toEqual({ w: [2, 2, 3] });
  });

  test('as a tf.Optimizer: minimize(f) steps exactly as VeLO.update with that loss', () => {
    const lopt = small();
    const theta = lopt.init(random.PRNGKey(2));
    const v = new VeLO({ numTrainingSteps: 50, weightDecay: 1e-3, lopt, theta });
    const x = tf.variable(tf.tensor1d([0.5, -1, 2]), true, 'velo_test_x');
    const target = tf.tensor1d([1, 2, 3]);
    const loss = () => tf.sum(tf.square(tf.sub(x, target))) as tf.Scalar;
    const opt = v.asTfjsOptimizer();
    let s = v.init({ velo_test_x: tf.clone(x) });
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(loss);
      s = v.update(s, { velo_test_x: grads.velo_test_x }, { loss: value });
      opt.minimize(loss);
    }
    expectClose(flat(x), flat((v.getParams(s) as any).velo_test_x), 1e-7, 1e-6);
    expect(flat(x)).not.toEqual([0.5, -1, 2]);
    opt.dispose();
    x.dispose();
  });
});
