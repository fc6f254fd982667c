import { initBackend } from '@lopt/core';
import { describeVeLOGolden } from './velo_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeVeLOGolden('wasm', 2e-6);
