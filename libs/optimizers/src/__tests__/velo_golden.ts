/**
 * The VeLO prefab (prefab.LearnedOptimizer) against the real learned_optimization
 * (test/golden/<mode>/velo.json, tools/reference/golden_velo.py): the base is HyperV2() with θ from
 * the reference-written params file test/golden/hyper_v2_params.msgpack; weight decay, gradient
 * accumulation (2 and 3 steps), the whole state after each of 3 updates. Shared by cpu and wasm.
 */
import * as fs from 'fs';
import type { Optimizer } from '../base';
import { HyperV2, VeLO, type VeLOOptions } from '../index';
import { hyperV2Rename, PARAMS_FILE } from './hyper_v2_golden';
import { describeOptimizerUpdates, type OptimizerCase } from './updates_golden';

/** VeLO with HyperV2() and the params file's θ; init's numSteps (100 in the shared runner) is the constructor's. */
function velo(opts: Omit<VeLOOptions, 'lopt' | 'checkpoint'>): Optimizer {
  const v = new VeLO({ ...opts, lopt: new HyperV2(), checkpoint: new Uint8Array(fs.readFileSync(PARAMS_FILE)) });
  return {
    name: v.name,
    init: (p, o) => v.init(p, { ...o, numSteps: undefined }),
    initBatch: (p, o) => v.initBatch(p, { ...o, numSteps: undefined }),
    update: (s, g, o) => v.update(s, g, o),
    updateBatch: (s, g, o) => v.updateBatch(s, g, o),
    getParams: (s) => v.getParams(s),
    getState: (s) => v.getState(s),
  };
}

const CASES: OptimizerCase[] = [
  ['VeLO(num_training_steps=100,weight_decay=0.01)', () => velo({ numTrainingSteps: 100, weightDecay: 0.01 })],
  ['VeLO(num_training_steps=200,weight_decay=0.1,max_training_steps=100)', () => velo({ numTrainingSteps: 200, weightDecay: 0.1, maxTrainingSteps: 100 })],
  ['VeLO(num_training_steps=250,max_training_steps=100)', () => velo({ numTrainingSteps: 250, maxTrainingSteps: 100 })],
];

export function describeVeLOGolden(backend: string, tolerance: number): void {
  describeOptimizerUpdates(backend, { file: 'velo.json', optimizers: CASES, tolerance, rename: hyperV2Rename });
}
