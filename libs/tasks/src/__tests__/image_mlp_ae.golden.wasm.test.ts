import { initBackend } from '@lopt/core';
import { describeImageMLPAE } from './image_mlp_ae_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeImageMLPAE('wasm');
