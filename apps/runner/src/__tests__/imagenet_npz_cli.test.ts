/** `lopt imagenet-npz` on the numpy-written npz fixtures of @lopt/tasks (the converter itself is tested there). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry as globalRegistry } from '@lopt/core';
import { main } from '../cli';
import { sink } from './support/sink';

const FIXTURES = path.join(__dirname, '..', '..', '..', '..', 'libs', 'tasks', 'src', '__tests__', 'fixtures');

async function run(args: string[]) {
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'lopt', ...args], { registry: globalRegistry.child(), stdout, stderr, skipBuiltinLibs: true });
  return { code, out: stdout.text(), err: stderr.text() };
}

test('writes imagenet2012_8/ from train and val npz files (two --val files), printing each shard; a bad --size is refused', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-imagenet-npz-cli-'));
  const deflated = path.join(FIXTURES, 'imagenet8_npz_deflated.npz');
  const r = await run(['imagenet-npz', '--size', '8', '--train', path.join(FIXTURES, 'imagenet8_npz_stored.npz'), '--val', deflated, deflated, '--inner-valid', '1', '--outer-valid', '2', '--shard-size', '4', '--out', out]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toContain('test.tfrecords-00000-of-00002: 4 examples');
  expect(r.out).toContain(`${path.join(out, 'imagenet2012_8')}: train 2, inner_valid 1, outer_valid 2, test 6 (5 shards)`);
  expect(fs.readdirSync(path.join(out, 'imagenet2012_8')).sort()).toEqual([
    'inner_valid.tfrecords-00000-of-00001',
    'outer_valid.tfrecords-00000-of-00001',
    'test.tfrecords-00000-of-00002',
    'test.tfrecords-00001-of-00002',
    'train.tfrecords-00000-of-00001',
  ]);
  const bad = await run(['imagenet-npz', '--size', '12', '--train', deflated, '--val', deflated, '--out', out]);
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/--size must be 8, 16, 32 or 64, got 12/);
});
