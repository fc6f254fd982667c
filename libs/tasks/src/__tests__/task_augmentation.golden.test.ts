import { initBackend } from '@lopt/core';
import { describeTaskAugmentation } from './task_augmentation_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeTaskAugmentation('default test backend');
