/**
 * The seed notebook's script (examples/seed-part5.mts) compiles and runs as written, printing
 * the state tree with the notebook's shapes and a finite loss.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { golden } from './golden';

const root = path.resolve(__dirname, '..');

test('examples/seed-part5 runs with LOPT_META_TRAIN_LENGTH=2 and prints the seed shapes', () => {
  execFileSync('npx', ['tsc', '-b', 'libs/core', 'libs/tasks', 'libs/optimizers', 'libs/estimators', 'examples'], { cwd: root, stdio: 'pipe' });
  const out = execFileSync('node', ['examples/dist/seed-part5.mjs'], {
    cwd: root,
    env: { ...process.env, LOPT_META_TRAIN_LENGTH: '2', LOPT_BACKEND: 'wasm', LOPT_QUIET: '1', FORCE_COLOR: '0', NO_COLOR: '1' },
    encoding: 'utf8',
    stdio: 'pipe',
    timeout: 240000,
  });
  // console.log colours objects when the parent forces colour (Nx does in CI)
  // eslint-disable-next-line no-control-regex -- \x1b (ESC) starts the ANSI colour codes stripped here
  const lines = out.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const shapes = JSON.parse(lines[0]);
  const [quad, mlp] = shapes.gradientEstimatorStates;
  expect(shapes.gradientLearnerState.thetaOptState.params['mlp/~/linear_0']).toEqual({ w: [19, 32], b: [32] });
  expect(quad.posState.innerOptState.params).toEqual([4, 10]);
  expect(quad.posState.innerOptState.rollingFeatures).toEqual({ m: [4, 10, 6], t: [4, 6] });
  expect(quad.posState.taskParam).toEqual([4, 10]);
  expect(quad.posState.isDone).toEqual([4]);
  expect(quad.accumulator['mlp/~/linear_1']).toEqual({ w: [4, 32, 32], b: [4, 32] });
  expect(mlp.posState.innerOptState.params['mlp/~/linear_0']).toEqual({ w: [4, 64, 32], b: [4, 32] });
  expect(mlp.posState.innerOptState.rollingFeatures.m['mlp/~/linear_1']).toEqual({ w: [4, 32, 10, 6], b: [4, 10, 6] });
  // the line after the state tree starts with the final loss, then the metrics object
  const lossLine = lines.find((l) => /^-?[\d.]+(e[-+]?\d+)? \{/.test(l));
  if (!lossLine) throw new Error(`no loss line in the seed output:\n${out}`);
  const loss = Number(lossLine.split(' ')[0]);
  expect(Number.isFinite(loss)).toBe(true);
  expect(out).toMatch(/none\|\|best_of_mean_loss/);
  const workerLosses = out.match(/learner\/worker losses: (.*)/)![1].trim().split(' ').map(Number);
  expect(workerLosses).toHaveLength(2);
  workerLosses.forEach((l) => expect(Number.isFinite(l)).toBe(true));
});

test('examples/seed-part5 with LOPT_SEED_TASKS=quadratic prints the reference notebook\'s first losses for PRNGKey(0), in both random modes', () => {
  for (const mode of ['legacy', 'partitionable'] as const) {
    const out = execFileSync('node', ['examples/dist/seed-part5.mjs'], {
      cwd: root,
      env: {
        ...process.env,
        LOPT_META_TRAIN_LENGTH: '3',
        LOPT_SEED_TASKS: 'quadratic',
        JAX_THREEFRY_PARTITIONABLE: mode === 'partitionable' ? '1' : '0',
        LOPT_QUIET: '1',
        NO_COLOR: '1',
      },
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 240000,
    });
    const printed = out.match(/single machine losses: (.*)/)![1].trim().split(' ').map(Number);
    // made by the reference (tools/reference/make_golden.py), see test/golden/README.md
    const want = (golden(mode, 'seed_part1.json').quadratic_only_updates as { loss: number }[]).map((s) => s.loss);
    expect(printed).toHaveLength(3);
    // printed with 6 decimals: equal to the reference's to that precision (1e-5 relative and better)
    printed.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThanOrEqual(2e-6 + 1e-5 * Math.abs(want[i])));
  }
});
