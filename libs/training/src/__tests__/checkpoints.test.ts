import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { CheckpointError, configHash, loadParams } from '@lopt/core';
import { CheckpointManager, type CheckpointPayload } from '../checkpoints';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-ckpt-'));
}

function payload(step: number): CheckpointPayload {
  const theta = { w: tf.tensor2d([[1, 2], [3, step]]), b: tf.tensor1d([0.5, -0.5]) };
  return {
    step,
    state: { theta, thetaOptState: { iteration: tf.scalar(step, 'int32'), m: [tf.zeros([2]), null] }, outerIteration: step },
    theta,
    elapsedTime: step * 1.5,
    totalInnerSteps: step * 100,
    dataStreams: [{ worker: 0, position: step * 8 }],
    rngKey: random.PRNGKey(step),
    configHash: 'abc',
    extra: { note: 'hi' },
  };
}

describe('CheckpointManager', () => {
  it('round-trips the state, theta and meta', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir });
    expect(mgr.latest()).toBeNull();
    expect(await mgr.restoreLatest()).toBeNull();
    const saved = await mgr.saveNow(payload(7));
    expect(saved).toMatchObject({ index: 0, step: 7 });
    expect(fs.readdirSync(path.join(dir, 'checkpoints')).sort()).toEqual(['checkpoint_0', 'params_0']);
    expect(mgr.latest()!.index).toBe(0);

    const fresh = new CheckpointManager({ dir });
    const r = (await fresh.restoreLatest<any>())!;
    expect(r.index).toBe(0);
    expect(r.step).toBe(7);
    expect(Array.from(r.state.theta.w.dataSync())).toEqual([1, 2, 3, 7]);
    expect(r.state.theta.w.shape).toEqual([2, 2]);
    expect(r.state.thetaOptState.iteration.dtype).toBe('int32');
    expect(r.state.thetaOptState.m[1]).toBeNull();
    expect(r.state.outerIteration).toBe(7);
    expect(r.meta).toMatchObject({
      kind: 'checkpoint',
      elapsedTime: 10.5,
      totalInnerSteps: 700,
      dataStreams: [{ worker: 0, position: 56 }],
      configHash: 'abc',
      extra: { note: 'hi' },
    });
    expect(Array.from(r.rngKey!)).toEqual(Array.from(random.PRNGKey(7)));

    const p = await fresh.loadParams<any>();
    expect(p.index).toBe(0);
    expect(p.step).toBe(7);
    expect(Array.from(p.theta.b.dataSync())).toEqual([0.5, -0.5]);
    const p2 = await loadParams<any>(path.join(dir, 'checkpoints', 'params_0'));
    expect(Object.keys(p2.theta).sort()).toEqual(['b', 'w']);
  });

  it('numbers saves sequentially (not by step) and keeps the last k', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir, keep: 3 });
    for (const step of [0, 10, 25, 40, 41]) await mgr.saveNow(payload(step));
    expect(mgr.indices('checkpoint')).toEqual([2, 3, 4]);
    expect(mgr.indices('params')).toEqual([2, 3, 4]);
    const r = (await mgr.restoreLatest())!;
    expect(r.index).toBe(4);
    expect(r.step).toBe(41);
    expect((await mgr.restore(2)).step).toBe(25);
    // A new manager continues the numbering.
    const again = new CheckpointManager({ dir, keep: 3 });
    expect((await again.saveNow(payload(50))).index).toBe(5);
    expect(again.indices()).toEqual([3, 4, 5]);
  });

  it('maybeSave saves by steps and by seconds, calling getState only then', async () => {
    let clock = 0;
    const mgr = new CheckpointManager({ dir: tmpdir(), everySteps: 10, now: () => clock });
    const getState = jest.fn((s: number) => payload(s));
    const calls: Array<number | null> = [];
    for (let step = 1; step <= 25; step++) {
      const s = await mgr.maybeSave(step, () => getState(step));
      calls.push(s ? s.step : null);
    }
    expect(calls.filter((c) => c !== null)).toEqual([10, 20]);
    expect(getState).toHaveBeenCalledTimes(2);

    const timed = new CheckpointManager({ dir: tmpdir(), everySeconds: 60, now: () => clock });
    expect(await timed.maybeSave(1, () => payload(1))).toBeNull();
    clock += 61_000;
    expect((await timed.maybeSave(2, () => payload(2)))!.step).toBe(2);
    expect(await timed.maybeSave(3, () => payload(3))).toBeNull();
    // Restoring resets the step counter to the restored step.
    const restoredMgr = new CheckpointManager({ dir: timed.logdir, everySteps: 5, now: () => clock });
    await restoredMgr.restoreLatest();
    expect(restoredMgr.isDue(6)).toBe(false);
    expect(restoredMgr.isDue(7)).toBe(true);
    await expect(mgr.maybeSave(30, () => payload(29))).rejects.toThrow(/step 29/);
  });

  it('detects a corrupted tree file, a broken meta.json and a missing checkpoint', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir });
    await mgr.saveNow(payload(1));
    await mgr.saveNow(payload(2));
    const ck = path.join(dir, 'checkpoints', 'checkpoint_1');
    const tree = path.join(ck, 'state.tree');
    const bytes = fs.readFileSync(tree);
    bytes[bytes.length - 10] ^= 0x5a;
    fs.writeFileSync(tree, bytes);
    await expect(mgr.restoreLatest()).rejects.toThrow(CheckpointError);
    await expect(mgr.restoreLatest()).rejects.toThrow(/checkpoint_1 is corrupt.*sha256.*Older checkpoints exist \(checkpoint_0\)/);
    // The older one still restores on its own.
    expect((await mgr.restore(0)).step).toBe(1);

    fs.writeFileSync(path.join(ck, 'meta.json'), '{"format": "lopt-checkp');
    await expect(mgr.restore(1)).rejects.toThrow(/corrupt: cannot read meta.json/);
    fs.rmSync(path.join(ck, 'meta.json'));
    await expect(mgr.restore(1)).rejects.toThrow(/corrupt: cannot read meta.json/);
    await expect(mgr.restore(9)).rejects.toThrow(/checkpoint_9 does not exist/);

    // The tree file alone (consistent meta) corrupted in a way that keeps size: core's CRC catches it
    // even when the recorded checksum is updated to match.
    const dir2 = tmpdir();
    const m2 = new CheckpointManager({ dir: dir2 });
    await m2.saveNow(payload(3));
    const ck2 = path.join(dir2, 'checkpoints', 'checkpoint_0');
    const t2 = fs.readFileSync(path.join(ck2, 'state.tree'));
    t2[t2.length - 12] ^= 0x01;
    fs.writeFileSync(path.join(ck2, 'state.tree'), t2);
    const meta = JSON.parse(fs.readFileSync(path.join(ck2, 'meta.json'), 'utf8'));
    meta.file.sha256 = require('crypto').createHash('sha256').update(t2).digest('hex');
    fs.writeFileSync(path.join(ck2, 'meta.json'), JSON.stringify(meta));
    await expect(m2.restoreLatest()).rejects.toThrow(/checkpoint_0 is corrupt/);
  });

  it('refuses a checkpoint written with another config hash', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir });
    await mgr.saveNow({ ...payload(1), configHash: configHash({ a: 1 }) });
    await expect(mgr.restoreLatest({ configHash: configHash({ a: 2 }) })).rejects.toThrow(/config hash/);
    expect((await mgr.restoreLatest({ configHash: configHash({ a: 1 }) }))!.step).toBe(1);
  });

  it('configHash is stable under key order', () => {
    expect(configHash({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(configHash({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(configHash({ a: 1 })).not.toBe(configHash({ a: 2 }));
  });

  it('a failed save leaves nothing named checkpoint_*', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir });
    const bad = payload(1);
    (bad.state as any).theta.w.dispose(); // serializing a disposed tensor throws mid-save
    await expect(mgr.saveNow(bad)).rejects.toThrow();
    expect(fs.readdirSync(mgr.dir)).toEqual([]);
    expect(mgr.latest()).toBeNull();
  });

  it('a crash just before the rename leaves only temp names, ignored by a restore and cleaned up by the next save', async () => {
    const dir = tmpdir();
    const mgr = new CheckpointManager({ dir });
    await mgr.saveNow(payload(1));
    // Simulate the process dying at the rename: the rename never happens and no cleanup runs.
    const liveFs: typeof fs = require('fs'); // the module object itself, not the import's copy
    const rename = jest.spyOn(liveFs, 'renameSync').mockImplementation(() => {
      throw new Error('simulated crash');
    });
    const rm = jest.spyOn(liveFs, 'rmSync').mockImplementation(() => undefined);
    try {
      await expect(mgr.saveNow(payload(2))).rejects.toThrow('simulated crash');
    } finally {
      rename.mockRestore();
      rm.mockRestore();
    }
    const names = fs.readdirSync(mgr.dir).sort();
    expect(names.filter((n) => /^(checkpoint|params)_/.test(n))).toEqual(['checkpoint_0', 'params_0']);
    expect(names.some((n) => n.startsWith('.tmp-'))).toBe(true);
    const next = new CheckpointManager({ dir });
    expect((await next.restoreLatest())!.step).toBe(1);
    expect((await next.saveNow(payload(3))).index).toBe(1);
    expect(fs.readdirSync(next.dir).sort()).toEqual(['checkpoint_0', 'checkpoint_1', 'params_0', 'params_1']);
  });

  it('validates its options', () => {
    expect(() => new CheckpointManager({ dir: tmpdir(), keep: 0 })).toThrow(/keep/);
    expect(() => new CheckpointManager({ dir: tmpdir(), everySteps: -1 })).toThrow(/everySteps/);
  });
});
