import { useTestBackend } from './helpers';
import { describeResnetGolden } from './resnet_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeResnetGolden('cpu');
