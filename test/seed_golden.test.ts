import { initBackend } from '@lopt/core';
import { describeSeedGolden } from './seed_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeSeedGolden('default test backend');
