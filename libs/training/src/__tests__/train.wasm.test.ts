/**
 * Meta-training the seed configuration through @lopt/training alone, as a script or notebook would:
 * no CLI. Runs on the wasm backend (the seed's Fashion-MNIST MLP is slow on the cpu backend).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { resolveRunConfig, train, type TrainEvent } from '@lopt/training';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-train-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('train(seed-single-machine): events, an AbortSignal stop with a checkpoint, then --resume to the end', async () => {
  const config = resolveRunConfig(registry, 'seed-single-machine', { steps: 3 });
  const logdir = path.join(tmp, 'seed');
  const events: TrainEvent[] = [];
  const stop = new AbortController();
  const first = await train(config, {
    experiment: 'seed-single-machine',
    logdir,
    backend: 'wasm',
    signal: stop.signal,
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'step' && e.step === 2) stop.abort(); // stop after the second outer step
    },
  });
  expect(events[0]).toMatchObject({ type: 'start', startStep: 0, total: 3, backend: 'wasm', threads: 1 });
  const steps = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
  expect(steps.map((e) => e.step)).toEqual([1, 2]);
  steps.forEach((e) => expect(Number.isFinite(e.loss)).toBe(true));
  expect(first).toMatchObject({ startStep: 0, step: 2, total: 3, interrupted: true });
  expect(first.lastCheckpoint).toMatch(/checkpoint_\d+$/);
  for (const f of ['config.json', 'loss.png']) expect(fs.existsSync(path.join(logdir, f))).toBe(true);
  expect(fs.readdirSync(logdir).some((f) => f.includes('tfevents'))).toBe(true);

  const rest = await train(config, { experiment: 'seed-single-machine', logdir, backend: 'wasm', resume: true });
  expect(rest).toMatchObject({ startStep: 2, step: 3, interrupted: false });
  expect(Number.isFinite(rest.finalLoss)).toBe(true);
}, 240000);
