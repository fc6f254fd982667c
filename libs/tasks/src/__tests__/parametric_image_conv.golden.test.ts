import { initBackend } from '@lopt/core';
import { describeParametricImageConv } from './parametric_image_conv_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeParametricImageConv('default test backend');
