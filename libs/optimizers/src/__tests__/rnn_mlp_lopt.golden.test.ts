import { initBackend } from '@lopt/core';
import { describeRNNMLPLOptGolden } from './rnn_mlp_lopt_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeRNNMLPLOptGolden('default test backend');
