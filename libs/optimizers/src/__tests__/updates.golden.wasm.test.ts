import { initBackend } from '@lopt/core';
import { describeOptimizerUpdates } from './updates_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeOptimizerUpdates('wasm');
