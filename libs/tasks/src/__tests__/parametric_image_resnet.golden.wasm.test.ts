import { initBackend } from '@lopt/core';
import { describeParametricImageResnet } from './parametric_image_resnet_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeParametricImageResnet('wasm');
