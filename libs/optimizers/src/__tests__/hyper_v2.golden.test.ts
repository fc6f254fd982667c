import { initBackend } from '@lopt/core';
import { describeHyperV2Golden } from './hyper_v2_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeHyperV2Golden('default test backend', 2e-6);
