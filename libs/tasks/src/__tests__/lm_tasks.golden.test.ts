import { useTestBackend } from './helpers';
import { describeLmTasksGolden } from './lm_tasks_golden';

beforeAll(async () => {
  await useTestBackend();
});

describeLmTasksGolden('cpu');
