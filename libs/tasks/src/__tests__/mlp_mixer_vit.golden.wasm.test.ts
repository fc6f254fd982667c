import { initBackend } from '@lopt/core';
import { describeMixerVitGolden } from './mlp_mixer_vit_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeMixerVitGolden('wasm');
