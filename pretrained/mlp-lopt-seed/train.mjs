// Meta-trains the seed experiment (MLPLOpt, PES, quadratic + Fashion-MNIST 8x8 MLP) with
// MetaTrainer and saves θ as `params_<n>` checkpoints (lopt-ts format) under LOGDIR/checkpoints.
// Used because `lopt run` was not available yet. From the repository root, after the build:
//   node pretrained/mlp-lopt-seed/train.mjs <steps> <logdir> [backend]
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const { registry, initBackend } = require('@lopt/core');
require('@lopt/tasks');
require('@lopt/optimizers');
require('@lopt/estimators');
const { validateMetaTrainingConfig, MetaTrainer } = require('../../apps/runner/dist/experiments/meta_training.js');
const { CheckpointManager } = require('../../apps/runner/dist/checkpoints.js');
const fs = require('fs');

const steps = Number(process.argv[2] ?? 500);
const logdir = process.argv[3] ?? 'runs/mlp-lopt-seed';
await initBackend(process.argv[4] ?? 'wasm');
const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-single-machine', { steps }), registry);
fs.mkdirSync(logdir, { recursive: true });
fs.writeFileSync(`${logdir}/config.json`, JSON.stringify(cfg, null, 2) + '\n');
const trainer = new MetaTrainer(cfg, registry);
const ckpt = new CheckpointManager({ dir: logdir, keep: 3 });
let state = await trainer.init();
const t0 = Date.now();
const save = async (step) => {
  const theta = trainer.learner.getMetaParams(state.learnerState);
  await ckpt.saveNow({ step, state: { theta }, theta, elapsedTime: (Date.now() - t0) / 1000, configHash: undefined });
};
const losses = [];
for (let i = 0; i < steps; i++) {
  const [next, r] = await trainer.step(state, i);
  state = next;
  losses.push(r.loss);
  if ((i + 1) % 10 === 0) {
    const recent = losses.slice(-10);
    console.log(`step ${i + 1}/${steps} meta_loss(mean last 10) ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4)} ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    fs.writeFileSync(`${logdir}/losses.json`, JSON.stringify(losses));
  }
  if ((i + 1) % 50 === 0 || i + 1 === steps) await save(i + 1);
}
console.log(`done: ${steps} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
