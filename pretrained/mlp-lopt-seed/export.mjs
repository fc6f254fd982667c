// Copies θ from a run's newest params_<n> into this folder as params.msgpack (flax, the
// reference's ParameterCheckpoint format) and theta.tree (lopt-ts tree format), with config.json.
//   node pretrained/mlp-lopt-seed/export.mjs <logdir>
import { createRequire } from 'module';
import * as fs from 'fs';
import * as path from 'path';
const require = createRequire(import.meta.url);
const { saveTree } = require('@lopt/core');
const { CheckpointManager } = require('../../apps/runner/dist/checkpoints.js');
const { exportFlaxParams } = require('../../apps/runner/dist/flax_msgpack.js');

const logdir = process.argv[2];
const here = path.dirname(new URL(import.meta.url).pathname);
const { theta, step, index } = await new CheckpointManager({ dir: logdir }).loadParams();
fs.writeFileSync(path.join(here, 'params.msgpack'), exportFlaxParams(theta, { step, genId: 'lopt-ts' }));
await saveTree(path.join(here, 'theta.tree'), theta);
fs.copyFileSync(path.join(logdir, 'config.json'), path.join(here, 'config.json'));
console.log(`exported params_${index} (outer step ${step})`);
