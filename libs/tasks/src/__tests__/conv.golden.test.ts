import { useTestBackend } from './helpers';
import { describeConvGolden } from './conv_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeConvGolden('cpu');
