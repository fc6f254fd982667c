import { initBackend } from '@lopt/core';
import { describeRNNMLPLOptGolden } from './rnn_mlp_lopt_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeRNNMLPLOptGolden('wasm');
