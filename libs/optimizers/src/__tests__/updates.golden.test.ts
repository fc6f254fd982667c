import { initBackend } from '@lopt/core';
import { describeOptimizerUpdates } from './updates_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeOptimizerUpdates('default test backend');
