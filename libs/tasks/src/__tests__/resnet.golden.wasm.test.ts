import { initBackend } from '@lopt/core';
import { describeResnetGolden } from './resnet_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeResnetGolden('wasm');
