import { initBackend } from '@lopt/core';
import { describeConvGolden } from './conv_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeConvGolden('wasm');
