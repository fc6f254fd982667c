import { initBackend } from '@lopt/core';
import { describeParametricLmGolden } from './parametric_lm_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricLmGolden('wasm');
