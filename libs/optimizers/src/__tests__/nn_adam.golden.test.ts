import { initBackend } from '@lopt/core';
import { describeNNAdamGolden } from './nn_adam_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeNNAdamGolden('default test backend');
