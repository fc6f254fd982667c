import * as tf from '@tensorflow/tfjs';
import { random, treeDispose } from '@lopt/core';
import { asTfjsOptimizer, LearnableAdam, LearnableSGD, LearnedTfjsOptimizer, MLPLOpt, NNAdam, OptState, RNNMLPLOpt } from '../index';
import { useTestBackend, named } from './helpers';

beforeAll(useTestBackend);

function toyData(n = 64): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const key = random.PRNGKey(3);
  const [k1, k2] = random.split(key);
  const xs = random.normal(k1, [n, 4]) as tf.Tensor2D;
  const w = tf.tensor2d([[1], [-2], [0.5], [3]]);
  const ys = tf.tidy(() => tf.add(tf.matMul(xs, w), tf.mul(random.normal(k2, [n, 1]), 0.01))) as tf.Tensor2D;
  w.dispose();
  return { xs, ys };
}

let modelCount = 0;
function makeModel(): tf.Sequential {
  // Deterministic initial weights (the layer initialisers use Math.random).
  const m = tf.sequential({ name: `m${modelCount++}` });
  m.add(tf.layers.dense({ units: 8, inputShape: [4], activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 1 }));
  const ws = m.getWeights().map((w, i) => tf.tidy(() => tf.mul(random.normal(random.PRNGKey(100 + i), w.shape), 0.3)));
  m.setWeights(ws);
  ws.forEach((w) => w.dispose());
  return m;
}

async function fitLosses(opt: tf.Optimizer, epochs: number): Promise<number[]> {
  const { xs, ys } = toyData();
  const model = makeModel();
  model.compile({ optimizer: opt, loss: 'meanSquaredError' });
  const h = await model.fit(xs, ys, { epochs, batchSize: 64, shuffle: false, verbose: 0 });
  xs.dispose();
  ys.dispose();
  model.dispose();
  return h.history.loss as number[];
}

describe('asTfjsOptimizer', () => {
  test('is a tf.Optimizer usable in model.compile/fit; LearnableSGD/Adam θ train the model', async () => {
    for (const lopt of [new LearnableSGD({ initialLr: 0.05 }), new LearnableAdam({ initialLr: 0.02 })]) {
      const theta = lopt.init(random.PRNGKey(0));
      const opt = lopt.asTfjsOptimizer(theta);
      expect(opt).toBeInstanceOf(tf.Optimizer);
      expect(opt).toBeInstanceOf(LearnedTfjsOptimizer);
      const losses = await fitLosses(opt, 60);
      expect(losses[losses.length - 1]).toBeLessThan(0.2 * losses[0]);
      expect(opt.iterations).toBe(60);
      opt.dispose();
      treeDispose(theta);
    }
  });

  test('MLPLOpt at init trains (slowly) under model.fit and leaks no tensors per step', async () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(1));
    const opt = lopt.asTfjsOptimizer(theta);
    const { xs, ys } = toyData();
    const model = makeModel();
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await model.fit(xs, ys, { epochs: 2, batchSize: 64, verbose: 0 });
    const before = tf.memory().numTensors;
    const h = await model.fit(xs, ys, { epochs: 150, batchSize: 64, shuffle: false, verbose: 0 });
    expect(tf.memory().numTensors).toBe(before);
    const l = h.history.loss as number[];
    expect(l[l.length - 1]).toBeLessThan(l[0]);
    model.dispose();
    xs.dispose();
    ys.dispose();
    opt.dispose();
    treeDispose(theta);
  });

  test('steps equal optFn(theta).update on the same gradients, exactly (minimize with variables)', () => {
    for (const lopt of [new MLPLOpt(), new LearnableAdam()]) {
      const theta = lopt.init(random.PRNGKey(2));
      const tfOpt = asTfjsOptimizer(lopt, theta);
      const inner = lopt.optFn(theta);
      // variables created in "wrong" order: the params tree is keyed by name, sorted.
      const b = tf.variable(tf.tensor1d([0.3, -0.2, 0.1]), true, `adapter_b_${lopt.constructor.name}`);
      const a = tf.variable(tf.tensor2d([[1, -1], [0.5, 2]]), true, `adapter_a_${lopt.constructor.name}`);
      const target = tf.tensor2d([[0.2, 0.1], [-0.3, 0.4]]);
      const lossFn = (pa: tf.Tensor, pb: tf.Tensor) =>
        tf.add(tf.sum(tf.square(tf.sub(tf.tanh(pa), target))), tf.sum(tf.mul(tf.square(pb), tf.tensor1d([1, 2, 3])))) as tf.Scalar;
      let ref: OptState = inner.init({ [a.name]: tf.clone(a), [b.name]: tf.clone(b) });
      for (let step = 0; step < 5; step++) {
        const grads = tf.grads((pa: tf.Tensor, pb: tf.Tensor) => lossFn(pa, pb))([named(ref.params)[a.name], named(ref.params)[b.name]]);
        const next = inner.update(ref, { [a.name]: grads[0], [b.name]: grads[1] });
        grads.forEach((g) => g.dispose());
        treeDispose(ref);
        ref = next;
        tfOpt.minimize(() => lossFn(a, b), false, [b, a]);
        expect(Array.from(a.dataSync())).toEqual(Array.from((named(ref.params)[a.name] as tf.Tensor).dataSync()));
        expect(Array.from(b.dataSync())).toEqual(Array.from((named(ref.params)[b.name] as tf.Tensor).dataSync()));
      }
      // the kept state is the lopt's own state (e.g. MLPLOpt's momenta and iteration)
      const st = tfOpt.stateFor([a.name, b.name])!;
      expect(Number((st.iteration as tf.Tensor).dataSync()[0])).toBe(5);
      treeDispose(ref);
      a.dispose();
      b.dispose();
      target.dispose();
      tfOpt.dispose();
      treeDispose(theta);
    }
  });

  test('getWeights/setWeights round trip the state; getConfig/fromConfig rebuild the optimizer', async () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(4));
    const o1 = asTfjsOptimizer(lopt, theta);
    const v = tf.variable(tf.tensor1d([1, 2, 3]), true, 'adapter_rt_v');
    const f = () => tf.sum(tf.square(v)) as tf.Scalar;
    for (let i = 0; i < 3; i++) o1.minimize(f);
    const weights = await o1.getWeights();
    expect(weights[0].name).toBe('iter');
    expect(weights.length).toBeGreaterThan(1);

    const cfg = o1.getConfig();
    expect(cfg.learnedOptimizer).toBe('MLPLOpt');
    const o2 = LearnedTfjsOptimizer.fromConfig(LearnedTfjsOptimizer, cfg) as LearnedTfjsOptimizer;
    await o2.setWeights(weights);
    expect(o2.iterations).toBe(3);
    const v0 = Array.from(v.dataSync());
    o1.minimize(f);
    const after1 = Array.from(v.dataSync());
    v.assign(tf.tensor1d(v0));
    o2.minimize(f);
    expect(Array.from(v.dataSync())).toEqual(after1);
    weights.forEach((w) => w.tensor.dispose());
    v.dispose();
    o1.dispose();
    treeDispose(o2.theta);
    o2.dispose();
    treeDispose(theta);
  });
});

describe('asTfjsOptimizer for the LSTM-driven learned optimizers', () => {
  test('NNAdam (needs numSteps) and RNNMLPLOpt (needs the loss) train a model under model.fit; numSteps survives getConfig/fromConfig', async () => {
    for (const lopt of [new NNAdam(), new RNNMLPLOpt()]) {
      const theta = lopt.init(random.PRNGKey(2));
      const opt = lopt.asTfjsOptimizer(theta, { numSteps: 20 });
      const losses = await fitLosses(opt, 20);
      losses.forEach((l) => expect(Number.isFinite(l)).toBe(true));
      expect(losses[losses.length - 1]).not.toBe(losses[0]);
      expect(opt.iterations).toBe(20);
      const again = LearnedTfjsOptimizer.fromConfig(LearnedTfjsOptimizer, opt.getConfig()) as unknown as LearnedTfjsOptimizer;
      expect(again.numSteps).toBe(20);
      again.dispose();
      treeDispose(again.theta);
      opt.dispose();
      treeDispose(theta);
    }
    const theta = new NNAdam().init(random.PRNGKey(2));
    const noSteps = new NNAdam().asTfjsOptimizer(theta);
    await expect(fitLosses(noSteps, 1)).rejects.toThrow(/NNAdam: numSteps must be given/);
    treeDispose(theta);
  });
});
