import { initBackend } from '@lopt/core';
import { describeParametricImageMLPVAE } from './parametric_image_mlp_vae_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeParametricImageMLPVAE('default test backend');
