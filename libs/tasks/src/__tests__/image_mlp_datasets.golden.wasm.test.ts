import { initBackend } from '@lopt/core';
import { describeImageMlpDatasetsGolden } from './image_mlp_datasets_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeImageMlpDatasetsGolden('wasm');
