import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random, treeDispose, writeCheckpointDir } from '@lopt/core';
import { LearnableSGD, SGD, Adam } from '@lopt/optimizers';
import {
  GradientLearner,
  SingleMachineGradientLearner,
  gradientWorkerCompute,
  GradientEstimator,
} from '../index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** An estimator that returns a constant gradient and loss and counts its calls in its state. */
function constantEstimator(grad: number, loss = 1, name = 'Const'): GradientEstimator<{ calls: number }> {
  return {
    taskName: () => name,
    cfgName: () => 'default_cfg',
    initWorkerState: async () => ({ calls: 0 }),
    computeGradientEstimate: async (_ww, _key, state) => [
      { meanLoss: tf.scalar(loss), grad: { log_lr: tf.scalar(grad) }, unrollState: { calls: state.calls + 1 }, unrollInfo: null },
      {},
    ],
  };
}

const logLrOf = (learner: GradientLearner, s: any) => (learner.getMetaParams(s) as any).log_lr.arraySync() as number;

describe('GradientLearner (reference gradient_learner_test)', () => {
  test('LearnableSGD(1) with SGD(3): grads [1, 0] average to 0.5, log_lr 0 -> -1.5', async () => {
    const learner = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new SGD(3));
    const state = await learner.init(random.PRNGKey(0));
    expect(logLrOf(learner, state)).toBeCloseTo(0, 6);
    const [next, metrics] = await learner.update(
      state,
      [
        { thetaGrads: { log_lr: tf.scalar(1) }, thetaModelState: null, meanLoss: 2 },
        { thetaGrads: { log_lr: tf.scalar(0) }, thetaModelState: null, meanLoss: 1 },
      ],
      { key: random.PRNGKey(1), withMetrics: true },
    );
    expect(logLrOf(learner, next)).toBeCloseTo(-1.5, 6);
    expect(metrics['none||mean_loss']).toBe(1.5);
    expect(metrics['none||best_of_mean_loss']).toBe(1);
    expect(metrics['none||theta_grad_norm']).toBeCloseTo(0.5, 6);
    expect(metrics['none||theta_grad_abs_mean']).toBeCloseTo(0.5, 6);
    expect(learner.getStateForWorker(next).outerState.outerIteration).toBe(1);
    treeDispose(next);
  });

  test('gradientWorkerCompute averages estimators (0 and 1 -> 0.5) and advances their states', async () => {
    const ests = [constantEstimator(0, 1, 'A'), constantEstimator(1, 3, 'B')];
    const ww = { theta: { log_lr: tf.scalar(0) }, thetaModelState: null, outerState: { outerIteration: 0 } };
    let states: any[] = [{ calls: 0 }, { calls: 0 }];
    for (let i = 0; i < 2; i++) {
      const out = await gradientWorkerCompute(ww, ests, states, { key: random.PRNGKey(i) });
      expect((out.toPut.thetaGrads as any).log_lr.arraySync()).toBeCloseTo(0.5, 6);
      expect(out.toPut.meanLoss).toBe(2);
      expect(out.metrics['mean||A/mean_loss']).toBe(1);
      expect(out.metrics['mean||B/mean_loss']).toBe(3);
      expect(out.metrics['mean||default_cfg/mean_loss']).toBe(2);
      expect(typeof out.metrics['sample||A/time']).toBe('number');
      treeDispose(out.toPut.thetaGrads);
      states = out.unrollStates;
    }
    expect(states.map((s) => s.calls)).toEqual([2, 2]);
  });

  test('concurrent: off-thread estimators are started first; results keep the estimators order and keys', async () => {
    const started: string[] = [];
    const keysSeen: Record<string, number[]> = {};
    const est = (name: string, grad: number, offThread: boolean): GradientEstimator => ({
      ...constantEstimator(grad, grad + 1, name),
      runsOffThread: offThread,
      computeGradientEstimate: async (_ww, key, state: any) => {
        started.push(name);
        keysSeen[name] = Array.from(key as Uint32Array);
        return [{ meanLoss: tf.scalar(grad + 1), grad: { log_lr: tf.scalar(grad) }, unrollState: { calls: state.calls + 1 }, unrollInfo: null }, {}];
      },
    });
    const ests = [est('local', 0, false), est('remote', 2, true)];
    const ww = { theta: { log_lr: tf.scalar(0) }, thetaModelState: null, outerState: { outerIteration: 0 } };
    const seq = await gradientWorkerCompute(ww, ests, [{ calls: 0 }, { calls: 0 }], { key: random.PRNGKey(5) });
    const seqKeys = { ...keysSeen };
    expect(started).toEqual(['local', 'remote']);
    started.length = 0;
    const conc = await gradientWorkerCompute(ww, ests, [{ calls: 0 }, { calls: 0 }], { key: random.PRNGKey(5), concurrent: true });
    expect(started).toEqual(['remote', 'local']);
    expect(keysSeen).toEqual(seqKeys);
    expect(conc.metrics['mean||local/mean_loss']).toBe(1);
    expect(conc.metrics['mean||remote/mean_loss']).toBe(3);
    expect((conc.toPut.thetaGrads as any).log_lr.arraySync()).toBe((seq.toPut.thetaGrads as any).log_lr.arraySync());
    treeDispose([seq.toPut.thetaGrads, conc.toPut.thetaGrads]);
  });

  test('non-finite gradient elements become 0 and a non-finite loss becomes 20, both counted', async () => {
    const nanEst: GradientEstimator = {
      taskName: () => 'Nan',
      cfgName: () => 'default_cfg',
      initWorkerState: async () => ({}),
      computeGradientEstimate: async () => [
        { meanLoss: tf.scalar(NaN), grad: { w: tf.tensor([1, NaN, Infinity, -Infinity, 2]) }, unrollState: {}, unrollInfo: null },
        {},
      ],
    };
    const ww = { theta: { w: tf.zeros([5]) }, thetaModelState: null, outerState: { outerIteration: 0 } };
    const out = await gradientWorkerCompute(ww, [nanEst], [{}], { key: random.PRNGKey(0) });
    expect(Array.from((out.toPut.thetaGrads as any).w.dataSync())).toEqual([1, 0, 0, 0, 2]);
    expect(out.toPut.meanLoss).toBe(20);
    expect(out.metrics['mean||nonfinite_grad_elements']).toBe(3);
    expect(out.metrics['mean||nonfinite_loss']).toBe(1);
  });

  test('SingleMachineGradientLearner: one update moves log_lr 0 -> -1.5 (grad 0.5 from two estimators, SGD(3))', async () => {
    const sm = new SingleMachineGradientLearner(new LearnableSGD({ initialLr: 1 }), [constantEstimator(0), constantEstimator(1)], new SGD(3));
    const state = await sm.init(random.PRNGKey(0));
    const [next, loss, metrics] = await sm.update(state, random.PRNGKey(0));
    expect((sm.getMetaParams(next) as any).log_lr.arraySync()).toBeCloseTo(-1.5, 6);
    expect(loss).toBe(1);
    expect(metrics['none||mean_loss']).toBe(1);
    expect(metrics['none||best_of_mean_loss']).toBe(1);
  });

  test('init from a saved params file restores θ; from a learner checkpoint restores (or resets) the outer iteration', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-learner-'));
    // entries in the checkpoint format lopt run writes (core's writeCheckpointDir)
    const paramsPath = await writeCheckpointDir(dir, 'params', 0, { log_lr: tf.scalar(0.75) }, { step: 3 });
    const fromParams = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new SGD(3), { initThetaFromPath: paramsPath });
    const s1 = await fromParams.init(random.PRNGKey(0));
    expect(logLrOf(fromParams, s1)).toBeCloseTo(0.75, 6);

    // advance a learner 11 steps and save its full state
    const learner = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new Adam(0.1));
    let st = await learner.init(random.PRNGKey(0));
    for (let i = 0; i < 11; i++) {
      [st] = await learner.update(st, [{ thetaGrads: { log_lr: tf.scalar(1) }, thetaModelState: null, meanLoss: 1 }], { key: random.PRNGKey(i) });
    }
    const ckptPath = await writeCheckpointDir(dir, 'checkpoint', 0, { learnerState: st, workerStates: [] }, { step: 11 });
    const restored = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new Adam(0.1), { initOuterStateFromPath: ckptPath });
    const r = await restored.init(random.PRNGKey(5));
    expect(restored.getStateForWorker(r).outerState.outerIteration).toBe(11);
    expect(logLrOf(restored, r)).toBeCloseTo(logLrOf(learner, st), 6);
    const reset = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new Adam(0.1), { initOuterStateFromPath: ckptPath, resetOuterIteration: true });
    const z = await reset.init(random.PRNGKey(5));
    expect(reset.getStateForWorker(z).outerState.outerIteration).toBe(0);

    const wrong = new GradientLearner(new LearnableSGD({ initialLr: 1 }), new SGD(3), { initOuterStateFromPath: ckptPath });
    await expect(wrong.init(random.PRNGKey(0))).rejects.toThrow(/does not match/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
