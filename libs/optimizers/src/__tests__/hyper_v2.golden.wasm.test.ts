import { initBackend } from '@lopt/core';
import { describeHyperV2Golden } from './hyper_v2_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeHyperV2Golden('wasm', 2e-6);
