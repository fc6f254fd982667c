import { useTestBackend } from './helpers';
import { describeParametricImageResnet } from './parametric_image_resnet_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeParametricImageResnet('cpu');
