import { initBackend } from '@lopt/core';
import { describeLearnedOptimizerInits } from './inits_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeLearnedOptimizerInits('wasm');
