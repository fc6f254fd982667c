import { initBackend } from '@lopt/core';
import { describeParametricImageConv } from './parametric_image_conv_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricImageConv('wasm');
