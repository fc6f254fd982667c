import { initBackend } from '@lopt/core';
import { describeParametricImageMLPVAE } from './parametric_image_mlp_vae_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricImageMLPVAE('wasm');
