import { initBackend } from '@lopt/core';
import { describeHyperV2Layers } from './hyper_v2_layers_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeHyperV2Layers('wasm', 2e-6);
