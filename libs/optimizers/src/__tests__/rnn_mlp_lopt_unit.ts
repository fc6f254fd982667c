import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeFlatten, treeShapes, treeStack, treeUnflatten } from '@lopt/core';
import { RNNMLPLOpt, type RNNMLPLOptState } from '../index';
import { expectClose, flat, named, randTensor, rng } from './helpers';

const shapes: Record<string, number[]> = { w: [3, 5], b: [5], s: [], k: [2, 3, 4] };
function params(r: () => number, lead: number[] = [], scale = 1): any {
  return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randTensor(r, [...lead, ...s], scale)]));
}

/**
 * RNNMLPLOpt's own tests (layouts, registry, validation updates, the 5-decays quirk, the batched
 * form = single-task runs with shared and per-task θ, no leaks, tf.grad through updateBatch), on the
 * current backend. Used by rnn_mlp_lopt.test.ts (cpu) and rnn_mlp_lopt.wasm.test.ts (wasm).
 */
export function describeRNNMLPLOptUnit(backend: string): void {
  describe(`RNNMLPLOpt (${backend})`, () => {
    test('theta and state shapes; registered', () => {
      const lopt = new RNNMLPLOpt();
      const theta = lopt.init(random.PRNGKey(0)) as any;
      expect(treeShapes(theta)).toEqual({
        initial_from_lstm: [18],
        initial_from_mlp: [16],
        lstm_init_state: { hidden: [1, 64], cell: [1, 64] },
        rnn_params: { 'rnn/linear': { w: [116, 256], b: [256] } },
        rnn_to_ff_params: { rnn_to_ff: { w: [64, 17], b: [17] } },
        rnn_to_in_params: { rnn_to_in: { w: [64, 18], b: [18] } },
        ffmod_params: {
          'mlp/~/linear_0': { w: [54, 32], b: [32] },
          'mlp/~/linear_1': { w: [32, 32], b: [32] },
          'mlp/~/linear_2': { w: [32, 18], b: [18] },
        },
      });
      const opt = lopt.optFn(theta);
      const s = opt.init(params(rng(1)), { numSteps: 100 }) as RNNMLPLOptState;
      expect(treeShapes(s)).toEqual({
        params: { w: [3, 5], b: [5], s: [], k: [2, 3, 4] },
        momRolling: { m: { w: [3, 5, 5], b: [5, 5], s: [5], k: [2, 3, 4, 5] }, t: [5] },
        rmsRolling: { rms: { w: [3, 5, 5], b: [5, 5], s: [5], k: [2, 3, 4, 5] }, t: [5] },
        iteration: [],
        state: null,
        lstmHiddenState: { hidden: [4, 64], cell: [4, 64] },
        fromMlp: { w: [16], b: [16], s: [16], k: [16] },
        fromLstm: [18],
        trainLossAccum: { mean: [], var: [], updates: [] },
        validLossAccum: { mean: [], var: [], updates: [] },
        dynamicClip: { iteration: [], value: [] },
      });
      expect(s.iteration.dtype).toBe('int32');
      expect(s.trainLossAccum.updates.dtype).toBe('int32');
      expect(s.dynamicClip.iteration.dtype).toBe('float32');
      expect(flat(s.dynamicClip.value)).toEqual([Math.fround(0.01)]);
      expect(flat(s.fromLstm)).toEqual(flat(theta.initial_from_lstm));
      const sb = opt.initBatch(params(rng(1), [3]), { numSteps: 100 });
      expect(sb.lstmHiddenState.hidden.shape).toEqual([3, 4, 64]);
      expect(sb.fromLstm.shape).toEqual([3, 18]);
      expect(sb.fromMlp.w.shape).toEqual([3, 16]);
      expect(sb.dynamicClip.value.shape).toEqual([3]);
      expect(registry.create('learned_optimizer', 'RNNMLPLOpt', {})).toBeInstanceOf(RNNMLPLOpt);
      expect(() => registry.create('learned_optimizer', 'RNNMLPLOpt', { hiddenSize: 1.5 })).toThrow(/hiddenSize/);
      treeDispose([theta, s, sb]);
    });

    test('needs a loss; a validation update moves only the validation normaliser and the iteration', () => {
      const lopt = new RNNMLPLOpt();
      const theta = lopt.init(random.PRNGKey(1));
      const opt = lopt.optFn(theta);
      const p = params(rng(2));
      const s = opt.init(p, { numSteps: 10, modelState: { bn: tf.scalar(1) } });
      expect(() => opt.update(s, params(rng(3)))).toThrow(/loss/);
      const v = opt.update(s, params(rng(3)), { loss: 2, isValid: true, modelState: { bn: tf.scalar(5) } }) as RNNMLPLOptState;
      expect(flat(v.iteration)).toEqual([1]);
      expect(flat(v.validLossAccum.updates)).toEqual([1]);
      expectClose(flat(v.validLossAccum.mean), [0.1], 1e-7);
      expect(flat(v.trainLossAccum.updates)).toEqual([0]);
      expect(flat((v.state as any).bn)).toEqual([1]); // the reference keeps the old model state
      for (const k of Object.keys(shapes)) expect(flat(named(v.params)[k])).toEqual(flat(named(s.params)[k]));
      const t = opt.update(v, params(rng(3)), { loss: 2, modelState: { bn: tf.scalar(5) } }) as RNNMLPLOptState;
      expect(flat((t.state as any).bn)).toEqual([5]);
      expect(flat(t.iteration)).toEqual([2]);
      expect(flat(t.dynamicClip.iteration)).toEqual([2]);
      treeDispose([theta, p, s, v, t]);
    });

    test('quirk: init sizes the MLP for 5 decays whatever decays holds; an update with another number fails, as the reference', () => {
      const lopt = new RNNMLPLOpt({ decays: [0.9, 0.99] });
      const theta = lopt.init(random.PRNGKey(0));
      expect((theta as any).ffmod_params['mlp/~/linear_0'].w.shape).toEqual([54, 32]);
      const opt = lopt.optFn(theta);
      const p = params(rng(1));
      const s = opt.init(p);
      expect(s.momRolling.t.shape).toEqual([2]);
      const before = tf.memory().numTensors;
      expect(() => opt.update(s, p, { loss: 1 })).toThrow(/decays has 2 values.*sized for 5/);
      expect(tf.memory().numTensors).toBe(before);
      treeDispose([theta, p, s]);
    });

    test.each([false, true])('initBatch/updateBatch on 3 stacked tasks = 3 single-task runs (per-task theta: %p)', (perTask) => {
      const lopt = new RNNMLPLOpt({ hiddenSize: 8, lstmHiddenSize: 12 });
      const N = 3;
      const thetas = Array.from({ length: N }, (_, i) => lopt.init(random.PRNGKey(perTask ? 20 + i : 20)));
      const r = rng(5);
      const ps = Array.from({ length: N }, () => params(r));
      // (gradients of each task, losses, validation?) per step
      const steps = [0, 1, 2, 3].map((j) => ({ g: ps.map(() => params(r, [], 0.5)), loss: [0.5 + j, 1.2 - 0.1 * j, 0.3 * j], isValid: j === 2 }));
      const singles = thetas.map((theta, n) => {
        const opt = lopt.optFn(theta);
        let s = opt.init(ps[n], { numSteps: 50 });
        for (const st of steps) {
          const next = opt.update(s, st.g[n], { loss: st.loss[n], isValid: st.isValid });
          treeDispose(s);
          s = next;
        }
        return s;
      });
      const theta = perTask ? treeStack(thetas) : thetas[0];
      const opt = lopt.optFn(theta, false, perTask);
      const p = treeStack(ps);
      let s = opt.initBatch(p, { numSteps: tf.tensor1d([50, 50, 50], 'int32') });
      for (const st of steps) {
        const g = treeStack(st.g);
        const loss = tf.tensor1d(st.loss);
        const next = opt.updateBatch(s, g, { loss, isValid: st.isValid });
        treeDispose([s, g, loss]);
        s = next;
      }
      const [batched, def] = treeFlatten<tf.Tensor>(s);
      const stacked = treeFlatten<tf.Tensor>(treeStack(singles))[0];
      expect(treeShapes(treeUnflatten(def, stacked))).toEqual(treeShapes(s));
      batched.forEach((b, i) => expectClose(flat(b), flat(stacked[i]), 1e-6, 1e-5));
      expect(flat(s.iteration)).toEqual([4, 4, 4]);
      treeDispose([thetas, perTask ? theta : null, ps, steps.map((x) => x.g), singles, p, s]);
    });

    test('no tensor leak across optFn / init / update / initBatch / updateBatch', () => {
      const lopt = new RNNMLPLOpt();
      const theta = lopt.init(random.PRNGKey(0));
      const p = params(rng(1));
      const g = params(rng(2));
      const pb = params(rng(3), [2]);
      const gb = params(rng(4), [2]);
      const loss = tf.tensor1d([0.3, 0.7]);
      const run = () => {
        const opt = lopt.optFn(theta);
        let s = opt.init(p, { numSteps: 10 });
        for (let i = 0; i < 5; i++) {
          const next = opt.update(s, g, { loss: 1 + i, isValid: i === 3 });
          treeDispose(s);
          s = next;
        }
        treeDispose(s);
        let sb = opt.initBatch(pb, { numSteps: 10 });
        for (let i = 0; i < 5; i++) {
          const next = opt.updateBatch(sb, gb, { loss, isValid: i === 1 });
          treeDispose(sb);
          sb = next;
        }
        treeDispose(sb);
      };
      run();
      const before = tf.memory().numTensors;
      run();
      expect(tf.memory().numTensors).toBe(before);
      treeDispose([theta, p, g, pb, gb, loss]);
    });

    test.each([false, true])('tf.grad w.r.t. theta through initBatch and 3 updateBatch calls is finite and nonzero (thetaIsVector: %p)', (perTask) => {
      const lopt = new RNNMLPLOpt({ hiddenSize: 8, lstmHiddenSize: 8 });
      const N = 3;
      const theta0 = perTask ? treeStack([0, 1, 2].map((i) => lopt.init(random.PRNGKey(30 + i)))) : lopt.init(random.PRNGKey(30));
      const [leaves, def] = treeFlatten<tf.Tensor>(theta0);
      const r = rng(7);
      const p = params(r, [N]);
      const noise = params(r, [N], 0.5);
      const loss = tf.tensor1d([0.5, 1.5, 0.9]);
      const before = tf.memory().numTensors;
      const grads = tf.grads((...xs: tf.Tensor[]) => {
        const opt = lopt.optFn(treeUnflatten(def, xs), true, perTask);
        let s = opt.initBatch(p, { numSteps: 10 });
        for (let i = 0; i < 3; i++) {
          // gradients that depend on the params (a quadratic), so the dynamic clip amount of the
          // 3rd update depends on θ; every update takes a different path per task
          const g = Object.fromEntries(Object.keys(shapes).map((k) => [k, tf.add(tf.mul(named(s.params)[k], 0.7), noise[k])]));
          s = opt.updateBatch(s, g, { loss });
        }
        // only leaf w's params: the last update of the other leaves does not reach this loss
        return tf.add(tf.sum(tf.square(named(s.params).w)), tf.sum(tf.square(s.fromLstm))) as tf.Scalar;
      })(leaves);
      const values = grads.map((x) => flat(x));
      for (const v of values) expect(v.every(Number.isFinite)).toBe(true);
      // every θ part that shapes the step gets a gradient (lstm_init_state included: it feeds the LSTM)
      const byName = treeUnflatten(def, values) as any;
      const nonzero = (v: number[]) => v.some((x) => x !== 0);
      expect(nonzero(byName.ffmod_params['mlp/~/linear_0'].w)).toBe(true);
      expect(nonzero(byName.rnn_params['rnn/linear'].w)).toBe(true);
      expect(nonzero(byName.rnn_to_ff_params.rnn_to_ff.w)).toBe(true);
      expect(nonzero(byName.rnn_to_in_params.rnn_to_in.w)).toBe(true);
      expect(nonzero(byName.initial_from_mlp)).toBe(true);
      expect(nonzero(byName.initial_from_lstm)).toBe(true);
      expect(nonzero(byName.lstm_init_state.hidden)).toBe(true);
      tf.dispose(grads);
      expect(tf.memory().numTensors).toBe(before);
      treeDispose([theta0, p, noise, loss]);
    });
  });
}
