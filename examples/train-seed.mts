// Meta-train the seed experiment from a script, with @lopt/training and no CLI: the same run as
// `lopt run seed-single-machine`, with progress events and Ctrl-C handled by an AbortSignal.
// Run after `npm run build` from the repo root:
//   node examples/dist/train-seed.mjs [steps] [logdir]
import { registry } from '@lopt/core';
import { resolveRunConfig, train } from '@lopt/training';

const steps = Number(process.argv[2] ?? 20);
const logdir = process.argv[3] ?? 'runs/train-seed';

// The registered preset with overrides, validated before anything is written.
const config = resolveRunConfig(registry, 'seed-single-machine', { steps, set: ['logging.checkpointEverySteps=10'] });

const stop = new AbortController();
process.once('SIGINT', () => stop.abort()); // finish the step, write a checkpoint, return

const run = await train(config, {
  experiment: 'seed-single-machine',
  logdir,
  threads: 2,
  signal: stop.signal,
  onEvent: (e) => {
    if (e.type === 'start') console.log(`start at step ${e.startStep} of ${e.total} on ${e.backend} (${e.threads} threads)`);
    if (e.type === 'step') console.log(`step ${e.step}/${e.total}  meta-loss ${e.loss.toFixed(4)}`);
    if (e.type === 'checkpoint') console.log(`checkpoint ${e.path}`);
  },
});
console.log(`${run.interrupted ? 'stopped' : 'done'} at step ${run.step}: final loss ${run.finalLoss?.toFixed(4)}, logs in ${run.logdir}`);
