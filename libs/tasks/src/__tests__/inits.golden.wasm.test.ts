import { initBackend } from '@lopt/core';
import { describeTaskInits } from './inits_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeTaskInits('wasm');
