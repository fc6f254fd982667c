import { clearDatasetCache } from '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as tf from '@tensorflow/tfjs';
import { registry, treeLeaves } from '@lopt/core';
import { validateMetaTrainingConfig, MetaTrainer, BranchPool } from '../index';

/** Two outer steps of a small quadratic + Fashion-MNIST PES run; losses and mean meta-gradients. */
async function run(threads: number): Promise<{ losses: number[]; grads: number[][]; counts: number[] }> {
  clearDatasetCache(); // both runs read the data streams from their start
  const cfg = validateMetaTrainingConfig(
    registry.parseConfig('experiment', 'seed-single-machine', {
      steps: 3,
      reuseKey: false,
      gradientEstimator: { name: 'TruncatedPES', config: { truncLength: 6, stepsPerJit: 3 } },
      truncationSchedule: { name: 'LogUniformLengthSchedule', config: { minLength: 4, maxLength: 8 } },
      truncatedStep: { name: 'VectorizedLOptTruncatedStep', config: { randomInitialIterationOffset: 8 } },
      tasks: [
        { name: 'FixedDimQuadraticFamily', config: { dim: 10 }, numTasks: 3 },
        { name: 'ImageMLP_FashionMnist8_Relu32', config: {}, numTasks: 2 },
      ],
    }),
    registry,
  );
  const trainer = new MetaTrainer(cfg, registry, { threads });
  // with threads, the FMNIST estimator runs in the threads and the 10-d quadratic on the main thread
  expect(trainer.workers[0].map((e) => e.runsOffThread ?? false)).toEqual(threads === 2 ? [false, true] : [false, false]);
  try {
    let state = await trainer.init();
    const losses: number[] = [];
    const grads: number[][] = [];
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [next, r] = await trainer.step(state, i, { keepGrad: true, withMetrics: i === 2 });
      state = next;
      losses.push(r.loss);
      grads.push(treeLeaves<tf.Tensor>(r.thetaGrad).flatMap((l) => Array.from(l.dataSync())));
      treeLeaves<tf.Tensor>(r.thetaGrad).forEach((l) => l.dispose());
      const c = await trainer.numTensors();
      counts.push(c.main + c.threads.reduce((a, b) => a + b, 0));
    }
    await trainer.dispose(state);
    return { losses, grads, counts };
  } finally {
    if (trainer.pool) await trainer.pool.terminate();
  }
}

describe('threads: 2 (antithetic branches in worker threads)', () => {
  test('same meta-gradients and losses as the sequential run for the same keys; flat tensor counts', async () => {
    const seq = await run(1);
    const par = await run(2);
    expect(par.losses.length).toBe(3);
    par.losses.forEach((l, i) => expect(l).toBeCloseTo(seq.losses[i], 5));
    par.grads.forEach((g, i) => {
      expect(g.length).toBe(seq.grads[i].length);
      const scale = Math.max(...seq.grads[i].map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      g.forEach((v, j) => expect(Math.abs(v - seq.grads[i][j])).toBeLessThanOrEqual(1e-5 * scale + 1e-7));
    });
    expect(par.counts[2]).toBe(par.counts[1]);
    expect(seq.counts[2]).toBe(seq.counts[1]);
  });

  test('a request to a started thread is posted at the call, not at the caller\'s next await', async () => {
    const pool = new BranchPool(2, 'cpu');
    try {
      // requests made before the threads are up wait for them, and are answered in order
      const early = await Promise.all([pool.request(0, { op: 'memory' }), pool.request(0, { op: 'memory' })]);
      expect(early[0].id).toBeLessThan(early[1].id);
      const posted = jest.spyOn(pool.workers[1], 'postMessage');
      const reply = pool.request(1, { op: 'memory' });
      // still in the same synchronous run: the main thread's own unroll of another estimator would
      // follow here, and the thread must already be working
      expect(posted).toHaveBeenCalledTimes(1);
      expect((await reply).numTensors).toBeGreaterThanOrEqual(0);
    } finally {
      await pool.terminate();
    }
  });
});
