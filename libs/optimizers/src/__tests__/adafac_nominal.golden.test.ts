import { initBackend } from '@lopt/core';
import { describeAdafacNominalGolden } from './adafac_nominal_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeAdafacNominalGolden('default test backend');
