import { useTestBackend } from './helpers';
import { describeParametricLmGolden } from './parametric_lm_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeParametricLmGolden('cpu');
