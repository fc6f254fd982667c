import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, treeFlatten, treeUnflatten } from '@lopt/core';
import { AdafacMLPLOpt, MLPLOpt, LearnableAdam, NNAdam } from '../index';
import { flat, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const dtypesAndShapes = (s: any) => {
  const [leaves, def] = treeFlatten<tf.Tensor>(s);
  return treeUnflatten(def, leaves.map((x) => [x.dtype, x.shape]));
};

test('learned optimizers keep every state leaf dtype and shape over updates (int32 counters stay int32)', () => {
  for (const lopt of [new MLPLOpt(), new AdafacMLPLOpt(), new LearnableAdam(), new NNAdam()]) {
    const theta = lopt.init(random.PRNGKey(0));
    const opt = lopt.optFn(theta);
    for (const batched of [false, true]) {
      const params = { a: tf.ones(batched ? [2, 3] : [3]), b: { c: tf.ones(batched ? [2, 4, 2] : [4, 2]) } };
      let s = batched ? opt.initBatch(params, { numSteps: 10 }) : opt.init(params, { numSteps: 10 });
      const want = dtypesAndShapes(s);
      for (let i = 0; i < 3; i++) {
        const ns = batched ? opt.updateBatch(s, params) : opt.update(s, params);
        treeDispose(s);
        s = ns;
        expect(dtypesAndShapes(s)).toEqual(want);
      }
      expect(flat(s.iteration as tf.Tensor)).toEqual(batched ? [3, 3] : [3]);
      treeDispose([s, params]);
    }
    treeDispose(theta);
  }
});
