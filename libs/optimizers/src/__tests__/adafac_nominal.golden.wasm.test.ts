import { initBackend } from '@lopt/core';
import { describeAdafacNominalGolden } from './adafac_nominal_golden';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

describeAdafacNominalGolden('wasm');
