import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, initBackend, listIndices, loadParams, readCheckpointDir, strayEntries, treeDispose, writeCheckpointDir } from '../index';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describe('checkpoint entries (the one format checkpoints and params files use)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-ckpt-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('write then read: the tree, the meta fields, the index listing; params load as θ', async () => {
    const tree = { theta: { w: tf.tensor([[1, 2], [3, 4]]) }, it: tf.scalar(7, 'int32') };
    const p = await writeCheckpointDir(dir, 'checkpoint', 3, tree, { step: 12, elapsedTime: 1.5, rngKey: new Uint32Array([1, 2]), extra: { a: 1 } }, Date.UTC(2026, 0, 1));
    expect(p).toBe(path.join(dir, 'checkpoint_3'));
    await writeCheckpointDir(dir, 'params', 0, { w: tf.tensor([5]) }, { step: 12 });
    expect(listIndices(dir, 'checkpoint')).toEqual([3]);
    expect(listIndices(dir, 'params')).toEqual([0]);
    const { meta, tree: back } = await readCheckpointDir<any>(p);
    expect(meta).toMatchObject({ kind: 'checkpoint', index: 3, step: 12, elapsedTime: 1.5, rngKey: [1, 2], extra: { a: 1 }, savedAt: '2026-01-01T00:00:00.000Z' });
    expect(back.theta.w.arraySync()).toEqual([[1, 2], [3, 4]]);
    expect(back.it.dtype).toBe('int32');
    const params = await loadParams<any>(path.join(dir, 'params_0'));
    expect(params.step).toBe(12);
    expect(Array.from(params.theta.w.dataSync())).toEqual([5]);
    treeDispose([tree, back, params.theta]);
  });

  test('indices are parsed as safe integers spelled as a save spells them; other checkpoint_<digits> names are strays', () => {
    for (const n of ['checkpoint_2', 'checkpoint_10', 'checkpoint_99999999999999999999', 'checkpoint_9007199254740992', 'checkpoint_007', 'checkpoint_0', 'params_01', 'checkpoint_x']) {
      fs.mkdirSync(path.join(dir, n));
    }
    // 99999999999999999999 would parse as 1e20 and be looked for as checkpoint_100000000000000000000
    expect(listIndices(dir, 'checkpoint')).toEqual([0, 2, 10]);
    expect(listIndices(dir, 'params')).toEqual([]);
    expect(strayEntries(dir, 'checkpoint')).toEqual(['checkpoint_007', 'checkpoint_9007199254740992', 'checkpoint_99999999999999999999']);
    expect(strayEntries(dir, 'params')).toEqual(['params_01']);
  });

  test('a changed byte, a missing tree file or an unreadable meta.json is a CheckpointError that says what is wrong', async () => {
    const p = await writeCheckpointDir(dir, 'checkpoint', 0, { w: tf.tensor([1, 2, 3]) }, { step: 1 });
    const file = path.join(p, 'state.tree');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await expect(readCheckpointDir(p)).rejects.toThrow(/corrupt: state\.tree has \d+ bytes \/ sha256/);
    fs.rmSync(file);
    await expect(readCheckpointDir(p)).rejects.toThrow(/state\.tree is missing/);
    fs.writeFileSync(path.join(p, 'meta.json'), '{');
    await expect(readCheckpointDir(p)).rejects.toThrow(CheckpointError);
    await expect(readCheckpointDir(path.join(dir, 'nope'))).rejects.toThrow(/does not exist/);
  });
});
