import { initBackend } from '@lopt/core';
import { describeLearnedOptimizerInits } from './inits_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeLearnedOptimizerInits('default test backend');
