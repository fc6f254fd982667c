import { initBackend } from '@lopt/core';
import { describeImageMLPAE } from './image_mlp_ae_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeImageMLPAE('default test backend');
