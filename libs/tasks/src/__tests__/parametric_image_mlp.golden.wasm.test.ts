import { initBackend } from '@lopt/core';
import { describeParametricImageMLP } from './parametric_image_mlp_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricImageMLP('wasm');
