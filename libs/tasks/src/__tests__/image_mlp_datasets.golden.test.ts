import { useTestBackend } from './helpers';
import { describeImageMlpDatasetsGolden } from './image_mlp_datasets_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeImageMlpDatasetsGolden('cpu');
