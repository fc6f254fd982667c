/**
 * HyperV2 against the real learned_optimization (test/golden/<mode>/hyper_v2.json, made by
 * tools/reference/golden_hyper_v2.py): init(PRNGKey(0)) with the defaults and with the VeLO
 * configuration, and the whole optimizer state after 3 updates (θ from init, or loaded from the
 * reference-written params file test/golden/hyper_v2_params.msgpack). Shared by the cpu and wasm files.
 */
import * as fs from 'fs';
import * as path from 'path';
import { random } from '@lopt/core';
import { HyperV2, VELO_HYPER_V2_OPTIONS } from '../index';
import { describeLearnedOptimizerInits, type InitCase } from './inits_golden';
import { camel, describeOptimizerUpdates, type OptimizerCase } from './updates_golden';

/** The configuration of pretrained_optimizers' default VeLO checkpoint (its config.gin). */
export const VELO_CONFIG = VELO_HYPER_V2_OPTIONS;

const INIT_CASES: InitCase[] = [
  ['HyperV2().init(PRNGKey(0))', () => new HyperV2(), 0],
  ['HyperV2(lstm_hidden_size=512,param_inits=256,use_bugged_loss_features=False).init(PRNGKey(0))', () => new HyperV2(VELO_CONFIG), 0],
];

/** A reference-written `params` file (tools/reference/golden_hyper_v2.py). */
export const PARAMS_FILE = path.join(__dirname, '../../../../test/golden/hyper_v2_params.msgpack');

const fromInit = (l: HyperV2) => l.optFn(l.init(random.PRNGKey(0)));
const UPDATE_CASES: OptimizerCase[] = [
  ['HyperV2', () => fromInit(new HyperV2())],
  ['HyperV2(lstm_hidden_size=512,param_inits=256,use_bugged_loss_features=False)', () => fromInit(new HyperV2(VELO_CONFIG))],
  ['HyperV2(step_mult=0.1)', () => fromInit(new HyperV2({ stepMult: 0.1 }))],
  // θ = HyperV2().init(PRNGKey(1)) written by the reference as a `params` file (checkpoints.save_state)
  ['HyperV2 (params file)', () => HyperV2.fromCheckpoint(new Uint8Array(fs.readFileSync(PARAMS_FILE)), {}, PARAMS_FILE).opt],
];

/** The loss buffer is a dict in the reference: its `running_min` key is `runningMin` here. */
export const hyperV2Rename = (k: string) => camel(k).replace("['running_min']", "['runningMin']");

export function describeHyperV2Golden(backend: string, tolerance: number): void {
  describeLearnedOptimizerInits(backend, { file: 'hyper_v2.json', cases: INIT_CASES });
  describeOptimizerUpdates(backend, { file: 'hyper_v2.json', optimizers: UPDATE_CASES, tolerance, rename: hyperV2Rename });
}
