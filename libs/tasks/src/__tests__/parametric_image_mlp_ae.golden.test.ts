import { initBackend } from '@lopt/core';
import { describeParametricImageMLPAE } from './parametric_image_mlp_ae_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeParametricImageMLPAE('default test backend');
