import { initBackend } from '@lopt/core';
import { describeSeedGolden } from './seed_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeSeedGolden('wasm');
