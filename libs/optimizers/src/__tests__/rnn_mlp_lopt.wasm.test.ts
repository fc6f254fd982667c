import { initBackend } from '@lopt/core';
import { describeRNNMLPLOptUnit } from './rnn_mlp_lopt_unit';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeRNNMLPLOptUnit('wasm');
