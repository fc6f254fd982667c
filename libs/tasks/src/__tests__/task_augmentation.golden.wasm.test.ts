import { initBackend } from '@lopt/core';
import { describeTaskAugmentation } from './task_augmentation_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeTaskAugmentation('wasm');
