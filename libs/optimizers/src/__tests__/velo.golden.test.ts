import { initBackend } from '@lopt/core';
import { describeVeLOGolden } from './velo_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeVeLOGolden('default test backend', 2e-6);
