import { initBackend } from '@lopt/core';
import { describeParametricImageMLPAE } from './parametric_image_mlp_ae_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricImageMLPAE('wasm');
