import '@lopt/optimizers';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { encode, ExtensionCodec } from '@msgpack/msgpack';
import { random, saveTree, treeDispose, treeLeavesWithPath } from '@lopt/core';
import { MLPLOpt } from '@lopt/optimizers';
import { checkThetaStructure, exportFlaxParams, FlaxFormatError, importFlaxParams } from '../flax_msgpack';
import { loadThetaFile } from '../eval/params';
import { CheckpointManager } from '@lopt/training';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** What numpy would hold: shape, dtype name, C-order little-endian bytes. */
class PyNdarray {
  constructor(
    readonly shape: number[],
    readonly dtype: string,
    readonly data: Uint8Array,
  ) {}
}
// flax: msgpack.ExtType(1, msgpack.packb((arr.shape, arr.dtype.name, arr.tobytes('C')), use_bin_type=True))
const pyCodec = new ExtensionCodec();
pyCodec.register({
  type: 1,
  encode: (x: unknown) => (x instanceof PyNdarray ? encode([x.shape, x.dtype, x.data]) : null),
  decode: () => null,
});
const f32 = (vals: ArrayLike<number>, shape: number[]) => new PyNdarray(shape, 'float32', new Uint8Array(Float32Array.from(vals).buffer));
const flaxBytes = (stateDict: unknown) => encode(stateDict, { extensionCodec: pyCodec });

/** The reference's ParameterCheckpoint(params=θ, gen_id, step) for an MLPLOpt θ, as flax writes it. */
function referenceCheckpoint(theta: Record<string, { w: tf.Tensor; b: tf.Tensor }>, step: number, genId: string): Uint8Array {
  const params: Record<string, unknown> = {};
  for (const name of ['mlp/~/linear_0', 'mlp/~/linear_1', 'mlp/~/linear_2']) {
    const { w, b } = theta[name];
    params[name] = { w: f32(w.dataSync(), w.shape), b: f32(b.dataSync(), b.shape) }; // Haiku creates w, then b
  }
  return flaxBytes({ params, gen_id: genId, step });
}

describe('flax msgpack params files', () => {
  test('the ndarray extension bytes are those of flax (ext 1, [shape, dtype, bin])', () => {
    const bytes = exportFlaxParams({ x: tf.tensor1d([1]) }, { step: 7, genId: 'g' });
    // c7 11 01 | 93 91 01 a7 "float32" c4 04 00 00 80 3f
    const ext = Buffer.from('c7110193910' + '1a7' + Buffer.from('float32').toString('hex') + 'c4040000803f', 'hex');
    const expected = Buffer.concat([
      Buffer.from([0x83, 0xa6]), Buffer.from('params'), Buffer.from([0x81, 0xa1]), Buffer.from('x'), ext,
      Buffer.from([0xa6]), Buffer.from('gen_id'), Buffer.from([0xa1]), Buffer.from('g'),
      Buffer.from([0xa4]), Buffer.from('step'), Buffer.from([0x07]),
    ]);
    expect(Buffer.from(bytes).toString('hex')).toBe(expected.toString('hex'));
  });

  test('imports a reference MLPLOpt params_ file into theta, and exports the same bytes back', () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0)) as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
    const bytes = referenceCheckpoint(theta, 1234, 'worker-7');
    const r = importFlaxParams(bytes);
    expect(r.step).toBe(1234);
    expect(r.genId).toBe('worker-7');
    expect(r.layout).toBe('parameter_checkpoint');
    checkThetaStructure(r.theta, theta, 'MLPLOpt theta');
    const got = new Map(treeLeavesWithPath<tf.Tensor>(r.theta));
    for (const [p, t] of treeLeavesWithPath<tf.Tensor>(theta)) {
      expect(got.get(p)!.shape).toEqual(t.shape);
      expect(Array.from(got.get(p)!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    // usable as θ right away
    const opt = lopt.optFn(r.theta);
    const s = opt.init({ w: tf.tensor1d([1, 2]) });
    const s2 = opt.update(s, { w: tf.tensor1d([0.1, -0.1]) });
    expect((s2.params as any).w.shape).toEqual([2]);
    treeDispose([s, s2]);

    const back = exportFlaxParams(r.theta, { step: r.step!, genId: r.genId! });
    expect(Buffer.from(back).equals(Buffer.from(bytes))).toBe(true);
    treeDispose([theta, r.theta]);
  });

  test('round trip export -> import keeps every value; float64 / int64 / bare state dicts import', () => {
    const theta = new MLPLOpt().init(random.PRNGKey(5));
    const r = importFlaxParams(exportFlaxParams(theta, { step: 3 }));
    expect(r.step).toBe(3);
    const got = new Map(treeLeavesWithPath<tf.Tensor>(r.theta));
    for (const [p, t] of treeLeavesWithPath<tf.Tensor>(theta)) expect(Array.from(got.get(p)!.dataSync())).toEqual(Array.from(t.dataSync()));

    const f64 = new PyNdarray([2], 'float64', new Uint8Array(Float64Array.from([0.5, -2.25]).buffer));
    const i64 = new PyNdarray([], 'int64', new Uint8Array(BigInt64Array.from([42n]).buffer));
    const r2 = importFlaxParams(flaxBytes({ a: f64, n: i64 }));
    expect(r2.layout).toBe('state_dict');
    const t2 = r2.theta as Record<string, tf.Tensor>;
    expect(Array.from(t2.a.dataSync())).toEqual([0.5, -2.25]);
    expect(t2.n.dtype).toBe('int32');
    expect(t2.n.dataSync()[0]).toBe(42);
    treeDispose([theta, r.theta, r2.theta]);
  });

  test('a wrong structure is a clear error', () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0)) as Record<string, { w: tf.Tensor; b: tf.Tensor }>;
    const missing = importFlaxParams(flaxBytes({ params: { 'mlp/~/linear_0': { w: f32(new Float32Array(19 * 32), [19, 32]), b: f32(new Float32Array(32), [32]) } }, gen_id: '', step: 0 }));
    expect(() => checkThetaStructure(missing.theta, theta, 'MLPLOpt theta')).toThrow(/missing 'mlp\/~\/linear_1\/w'.*Expected: mlp\/~\/linear_0\/b \[32\]/);
    const badShape = importFlaxParams(flaxBytes({ params: { linear: { w: f32([1, 2], [2]) } }, step: 1, gen_id: 'x' }));
    expect(() => checkThetaStructure(badShape.theta, { linear: { w: tf.zeros([3]) } })).toThrow(/'linear\/w' has shape \[2\], expected \[3\]/);
    expect(() => importFlaxParams(new Uint8Array([1, 2, 3]), 'f.bin')).toThrow(/f\.bin: not a flax msgpack file/);
    expect(() => importFlaxParams(flaxBytes({ params: { w: new PyNdarray([3], 'float32', new Uint8Array(8)) }, step: 0 }))).toThrow(
      /needs 12 bytes, got 8/,
    );
    expect(() => importFlaxParams(flaxBytes({ params: { w: new PyNdarray([1], 'complex64', new Uint8Array(8)) }, step: 0 }))).toThrow(
      /unsupported ndarray dtype 'complex64'/,
    );
    expect(() => importFlaxParams(flaxBytes({ gradient_learner_state: {}, elapsed_time: 1 }))).toThrow(/OptCheckpoint/);
    expect(() => importFlaxParams(flaxBytes({ params: 5, step: 0 }))).toThrow(FlaxFormatError);
    treeDispose([theta, missing.theta, badShape.theta]);
  });

  test('loadThetaFile detects the format by content: flax file, tree file, params_<n> dir, log dir', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-flax-'));
    const theta = new MLPLOpt().init(random.PRNGKey(9));
    fs.writeFileSync(path.join(dir, 'params_3'), exportFlaxParams(theta, { step: 11 }));
    await saveTree(path.join(dir, 'theta.bin'), theta);
    const ck = new CheckpointManager({ dir: path.join(dir, 'run') });
    await ck.saveNow({ step: 20, state: { theta }, theta });
    const a = await loadThetaFile(path.join(dir, 'params_3'));
    expect([a.format, a.step]).toEqual(['flax-msgpack', 11]);
    const b = await loadThetaFile(path.join(dir, 'theta.bin'));
    expect(b.format).toBe('lopt-tree');
    const c = await loadThetaFile(path.join(dir, 'run', 'checkpoints', 'params_0'));
    expect([c.format, c.step]).toEqual(['lopt-checkpoint', 20]);
    const d = await loadThetaFile(path.join(dir, 'run'));
    expect(d.source).toBe(path.join(dir, 'run', 'checkpoints', 'params_0'));
    for (const x of [a, b, c, d]) checkThetaStructure(x.theta, theta);
    fs.writeFileSync(path.join(dir, 'junk'), 'hello');
    await expect(loadThetaFile(path.join(dir, 'junk'))).rejects.toThrow(/unknown format/);
    treeDispose([theta, a.theta, b.theta, c.theta, d.theta]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
