import { initBackend } from '@lopt/core';
import { describeParametricImageMLP } from './parametric_image_mlp_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeParametricImageMLP('default test backend');
