import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { exportFlaxParams, random, registry, treeDispose, treeFlatten, treeLeaves, treeShapes, treeStack, treeUnflatten } from '@lopt/core';
import { HyperV2, loadLearnedOptimizerCheckpoint, type HyperV2State } from '../index';
import { PARAMS_FILE } from './hyper_v2_golden';
import { expectClose, flat, named, randTensor, rng, useTestBackend } from './helpers';

beforeAll(useTestBackend);

const shapes: Record<string, number[]> = { w: [3, 5], b: [5], s: [], k: [2, 3, 4] };
function params(r: () => number, lead: number[] = [], scale = 1): any {
  return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randTensor(r, [...lead, ...s], scale)]));
}
/** A small HyperV2 so the tests stay fast. */
const small = (opts = {}) => new HyperV2({ lstmHiddenSize: 8, paramInits: 4, ...opts });

describe('HyperV2', () => {
  test('defaults, θ and state layout', () => {
    const lopt = new HyperV2();
    expect(lopt.config.lstmHiddenSize).toBe(128);
    expect(lopt.config.paramInits).toBe(64);
    expect(lopt.config.useBuggedLossFeatures).toBe(true);
    expect(lopt.ffInputs().length).toBe(14);
    expect(lopt.ffInputs().reduce((a, i) => a + i.width, 0)).toBe(30);
    // (sic) var_rms is centred on the momentum mean: 3 entries, so 9 + 9 + 1 + 5 + 3 + 3
    expect(lopt.numRnnFeatures()).toBe(30);
    expect(registry.create('learned_optimizer', 'HyperV2', {})).toBeInstanceOf(HyperV2);
    expect(() => new HyperV2({ lstmHiddenSize: 1.5 })).toThrow(/lstmHiddenSize/);

    const l = small();
    const theta: any = l.init(random.PRNGKey(0));
    const shp = treeShapes(theta) as any;
    expect(shp.lstm_init_state).toEqual({ hidden: [1, 8], cell: [1, 8] });
    expect(shp.rnn_params).toEqual({
      linear: { w: [30, 8], b: [8] },
      linear_1: { w: [30, 8], b: [8] },
      linear_2: { w: [30, 8], b: [8] },
      'rnn/linear': { w: [16, 32], b: [32] },
      rnn_to_controls: { w: [8, 4], b: [4] },
      step_size: { w: [8, 1], b: [1] },
    });
    expect(shp.ff_mod_stack['~'].w0__3).toEqual([4, 3, 4]);
    expect(shp.ff_mod_stack['~'].w2).toEqual([4, 4, 3]);
    const opt = l.optFn(theta);
    expect(() => opt.init(params(rng(1)))).toThrow(/numSteps/);
    const s = opt.init(params(rng(1)), { numSteps: 100 });
    expect(treeShapes(s)).toEqual({
      params: { w: [3, 5], b: [5], s: [], k: [2, 3, 4] },
      state: null,
      momRolling: { m: { w: [3, 5, 3], b: [5, 3], s: [3], k: [2, 3, 4, 3] }, t: [3] },
      rmsRolling: { rms: { w: [3, 5, 1], b: [5, 1], s: [1], k: [2, 3, 4, 1] }, t: [1] },
      facRolling: {
        vRow: { w: [3, 3], b: [0, 3], s: [0, 3], k: [2, 3, 3] },
        vCol: { w: [5, 3], b: [0, 3], s: [0, 3], k: [2, 4, 3] },
        vDiag: { w: [0, 3], b: [5, 3], s: [3], k: [0, 3] },
      },
      iteration: [],
      numSteps: [],
      lstmHiddenState: { hidden: [4, 8], cell: [4, 8] },
      lossBuffer: { means: [10], iteration: [], runningMin: [10], decays: [10] },
    });
    expect(() => opt.update(s, params(rng(2)))).toThrow(/loss/);
    treeDispose([theta, s] as any);
  });

  test('bugged loss features: decays for 10 steps whatever numSteps is; VeLO config: for numSteps', () => {
    const bugged = small().optFn(small().init(random.PRNGKey(0))).init(params(rng(1)), { numSteps: 1000 });
    expectClose(flat(bugged.lossBuffer.decays), new Array(10).fill(Math.exp(-0.1)), 1e-6, 0);
    const fixed = small({ useBuggedLossFeatures: false }).optFn(small().init(random.PRNGKey(0))).init(params(rng(1)), { numSteps: 1000 });
    const d = flat(fixed.lossBuffer.decays);
    expectClose([d[0], d[9]], [Math.exp(-1 / 10), Math.exp(-1 / 1000)], 1e-6, 1e-5);
  });

  test('updates are finite and change every leaf; the LSTM state advances unless useBuggedNextLstmState', () => {
    for (const bugged of [false, true]) {
      const l = small({ useBuggedNextLstmState: bugged, stepMult: 0.1 });
      const opt = l.optFn(l.init(random.PRNGKey(1)));
      const r = rng(3);
      const p0 = params(r);
      let s = opt.init(p0, { numSteps: 20 });
      for (let i = 0; i < 3; i++) s = opt.update(s, params(r), { loss: 1 - 0.1 * i });
      expect(flat(s.iteration)).toEqual([3]);
      expect(flat(s.lossBuffer.iteration)).toEqual([3]);
      for (const leaf of treeLeaves<tf.Tensor>(s)) expect(flat(leaf).every(Number.isFinite)).toBe(true);
      const h = flat(s.lstmHiddenState.hidden);
      expect(h.some((x) => x !== 0)).toBe(!bugged);
      for (const k of Object.keys(shapes)) {
        const dd = flat(tf.sub(named(s.params)[k], named(p0)[k])).map(Math.abs);
        if (!(Math.max(...dd) > 0)) throw new Error(`leaf ${k} unchanged`);
      }
    }
  });

  test.each([false, true])('initBatch/updateBatch on 3 stacked tasks = 3 single-task runs (thetaIsVector: %p)', (perTask) => {
    const l = small({ stepMult: 0.1 });
    const N = 3;
    const thetas = Array.from({ length: N }, (_, i) => l.init(random.PRNGKey(perTask ? 20 + i : 20)));
    const r = rng(5);
    const ps = Array.from({ length: N }, () => params(r));
    const gs = [0, 1].map(() => Array.from({ length: N }, () => params(r, [], 0.5)));
    const losses = [
      [0.9, 1.5, 0.3],
      [0.7, 1.6, 0.2],
    ];
    const singles = ps.map((p, n) => {
      const opt = l.optFn(thetas[n]);
      let s = opt.init(p, { numSteps: 30 + 10 * n });
      gs.forEach((g, i) => (s = opt.update(s, g[n], { loss: losses[i][n] })));
      return s;
    });
    const opt = l.optFn(perTask ? treeStack(thetas) : thetas[0], false, perTask);
    let s = opt.initBatch(treeStack(ps), { numSteps: tf.tensor1d([30, 40, 50], 'int32') }) as HyperV2State;
    gs.forEach((g, i) => (s = opt.updateBatch(s, treeStack(g), { loss: tf.tensor1d(losses[i]) })));
    const cat = (f: (x: HyperV2State) => tf.Tensor) => singles.flatMap((x) => flat(f(x)));
    for (const k of Object.keys(shapes)) {
      expectClose(flat(named(s.params)[k]), cat((x) => named(x.params)[k]), 1e-6, 1e-5);
      expectClose(flat(named(s.momRolling.m)[k]), cat((x) => named(x.momRolling.m)[k]), 1e-7, 1e-6);
    }
    expectClose(flat(s.lstmHiddenState.hidden), cat((x) => x.lstmHiddenState.hidden), 1e-6, 1e-5);
    expectClose(flat(s.lstmHiddenState.cell), cat((x) => x.lstmHiddenState.cell), 1e-6, 1e-5);
    expectClose(flat(s.lossBuffer.means), cat((x) => x.lossBuffer.means), 1e-7, 1e-6);
    expectClose(flat(s.lossBuffer.decays), cat((x) => x.lossBuffer.decays), 1e-7, 1e-6);
  });

  test('tf.grad through 2 updateBatch calls w.r.t. θ is finite and nonzero', () => {
    const l = small({ stepMult: 0.1 });
    const theta: any = l.init(random.PRNGKey(4));
    const r = rng(6);
    const p = params(r, [2]);
    const g1 = params(r, [2], 0.5);
    const g2 = params(r, [2], 0.5);
    // (sic) rnn_params.linear is never read by the reference's forward pass: no gradient path to it
    const { linear, ...rnnRest } = theta.rnn_params;
    const [leaves, def] = treeFlatten<tf.Tensor>({ ...theta, rnn_params: rnnRest });
    const before = tf.memory().numTensors;
    const grads = tf.tidy(() =>
      tf.grads((...ls: tf.Tensor[]) => {
        const th: any = treeUnflatten(def, ls);
        const opt = l.optFn({ ...th, rnn_params: { ...th.rnn_params, linear } }, true);
        let s = opt.initBatch(p, { numSteps: 10 });
        s = opt.updateBatch(s, g1, { loss: 1 });
        s = opt.updateBatch(s, g2, { loss: 0.8 });
        return tf.sum(treeLeaves<tf.Tensor>(s.params).map((x) => tf.sum(tf.square(x))).reduce((a, b) => tf.add(a, b))) as tf.Scalar;
      })(leaves),
    );
    const all = grads.flatMap((x) => flat(x));
    expect(all.every(Number.isFinite)).toBe(true);
    expect(all.some((x) => x !== 0)).toBe(true);
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('no tensor leak over updates (single and batched)', () => {
    const l = small();
    const theta = l.init(random.PRNGKey(0));
    const opt = l.optFn(theta);
    const g = params(rng(2));
    const gb = params(rng(2), [2]);
    let s = opt.init(params(rng(1)), { numSteps: 100 });
    let sb = opt.initBatch(params(rng(1), [2]), { numSteps: 100 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const ns = opt.update(s, g, { loss: 1 });
      treeDispose(s);
      s = ns;
      const nb = opt.updateBatch(sb, gb, { loss: 1 });
      treeDispose(sb);
      sb = nb;
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('HyperV2 checkpoints (reference params files)', () => {
  const bytes = () => new Uint8Array(fs.readFileSync(PARAMS_FILE));

  test('the reference-written params file loads into HyperV2() with init’s structure', () => {
    const { lopt, theta, step, genId } = HyperV2.fromCheckpoint(bytes(), {}, 'hyper_v2_params.msgpack');
    expect(step).toBe(0);
    expect(genId).toBe('');
    const template = lopt.init(random.PRNGKey(0));
    expect(treeShapes(theta)).toEqual(treeShapes(template));
    // it is θ from PRNGKey(1), not the template's PRNGKey(0)
    expect(flat((theta as any).rnn_params.step_size.w)).not.toEqual(flat((template as any).rnn_params.step_size.w));
    treeDispose([theta, template] as any);
  });

  test('a file for another configuration is refused, naming the leaf and both shapes', () => {
    const before = tf.memory().numTensors;
    expect(() => HyperV2.fromCheckpoint(bytes(), { lstmHiddenSize: 64 }, 'hv2.msgpack')).toThrow(
      /hv2\.msgpack: θ of HyperV2 does not match: .*'lstm_init_state\/cell' has shape \[1,128\], expected \[1,64\]/,
    );
    expect(() => loadLearnedOptimizerCheckpoint(new HyperV2({ paramInits: 8 }), bytes())).toThrow(/'ff_mod_stack\/~\/b0' has shape \[64,4\], expected \[8,4\]/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('exportFlaxParams of a loaded θ gives back the same bytes', () => {
    const { theta } = HyperV2.fromCheckpoint(bytes());
    expect(Buffer.from(exportFlaxParams(theta)).equals(Buffer.from(bytes()))).toBe(true);
    treeDispose(theta as any);
  });
});
