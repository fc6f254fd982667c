import { initBackend } from '@lopt/core';
import { describeTaskInits } from './inits_golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describeTaskInits('default test backend');
