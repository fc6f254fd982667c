import { initBackend } from '@lopt/core';
import { describeNNAdamGolden } from './nn_adam_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeNNAdamGolden('wasm');
