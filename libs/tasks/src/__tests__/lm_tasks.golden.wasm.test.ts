import { initBackend } from '@lopt/core';
import { describeLmTasksGolden } from './lm_tasks_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeLmTasksGolden('wasm');
