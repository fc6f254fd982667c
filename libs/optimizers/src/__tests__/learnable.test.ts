import * as tf from '@tensorflow/tfjs';
import { random, registry, treeStack } from '@lopt/core';
import { Adam, LearnableAdam, LearnableSGD, LearnableSGDM, SGD, SGDM, Optimizer } from '../index';
import { expectClose, flat, useTestBackend, expectNoLeakOverUpdates, named } from './helpers';

beforeAll(useTestBackend);

const p0 = [0.5, -1, 2];
const gs = [
  [0.1, -0.2, 0.3],
  [-0.4, 0.5, 0.05],
];

function run(opt: Optimizer): number[] {
  let s = opt.init({ w: tf.tensor1d(p0) });
  for (const g of gs) s = opt.update(s, { w: tf.tensor1d(g) });
  return flat(named(s.params).w);
}

describe('learnable hyper-parameter optimizers', () => {
  test('init values (learned_optimizers/base.py, LearnableAdam / LearnableSGD / LearnableSGDM.init)', () => {
    const a = new LearnableAdam().init(random.PRNGKey(0)) as any;
    expectClose(flat(a.log_lr), [-6.9077554], 1e-6, 0);
    expectClose(flat(a.one_minus_beta1), [-2.3025851], 1e-6, 0);
    expectClose(flat(a.one_minus_beta2), [-6.9077554], 1e-6, 0);
    expectClose(flat(a.log_epsilon), [-18.420681], 1e-5, 0);
    expect(Object.keys(a).sort()).toEqual(['log_epsilon', 'log_lr', 'one_minus_beta1', 'one_minus_beta2']);
    const s = new LearnableSGD().init(random.PRNGKey(0)) as any;
    expectClose(flat(s.log_lr), [Math.log(0.01)], 1e-6, 0);
    const m = new LearnableSGDM().init(random.PRNGKey(0)) as any;
    expectClose(flat(m.one_minus_momentum), [Math.log(0.1)], 1e-6, 0);
    expect(new LearnableAdam().name).toBeNull();
  });

  test('optFn steps match SGD / SGDM / Adam', () => {
    expectClose(run(new LearnableSGD({ initialLr: 0.1 }).optFn(new LearnableSGD({ initialLr: 0.1 }).init())), run(new SGD(0.1)), 1e-6);
    const lm = new LearnableSGDM({ initialLr: 0.05, initialMomentum: 0.8 });
    expectClose(run(lm.optFn(lm.init())), run(new SGDM(0.05, 0.8)), 1e-6);
    const la = new LearnableAdam({ initialLr: 0.01 });
    expectClose(run(la.optFn(la.init())), run(new Adam(0.01, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, epsilonRoot: 1e-8 })), 1e-6);
  });

  test('thetaIsVector: per-task hyper-parameters broadcast over the stacked tasks', () => {
    const la = new LearnableAdam();
    const thetas = [0.01, 0.1].map((lr) => new LearnableAdam({ initialLr: lr, initialBeta1: lr === 0.1 ? 0.5 : 0.9 }).init());
    const singles = thetas.map((t) => run(la.optFn(t)));
    const opt = la.optFn(treeStack(thetas), false, true);
    let s = opt.initBatch({ w: tf.tensor2d([p0, p0]) });
    for (const g of gs) s = opt.updateBatch(s, { w: tf.tensor2d([g, g]) });
    expectClose(flat(named(s.params).w), [...singles[0], ...singles[1]], 1e-6);
  });

  test('no leaks from lazily evaluated hyper-parameters; plugins', () => {
    const la = new LearnableAdam();
    const theta = la.init();
    const opt = la.optFn(theta);
    const s = opt.init({ w: tf.tensor1d(p0) });
    const g = { w: tf.tensor1d(gs[0]) };
    expectNoLeakOverUpdates(opt, s, g);
    for (const n of ['LearnableSGD', 'LearnableSGDM', 'LearnableAdam']) expect(registry.has('learned_optimizer', n)).toBe(true);
    expect(registry.create('learned_optimizer', 'LearnableAdam', { initialLr: 0.1 })).toBeInstanceOf(LearnableAdam);
  });
});
