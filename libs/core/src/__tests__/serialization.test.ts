import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  atomicWriteFile,
  crc32,
  crc32Js,
  deserializeTree,
  initBackend,
  loadTree,
  saveTree,
  serializeTree,
  toHostTree,
  fromHostTree,
  encodeHostTree,
  decodeHostTree,
  SerializationError,
  treeDispose,
} from '../index';

let dir: string;
beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-ser-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function sampleTree() {
  return {
    params: { w: tf.tensor([[1.5, -2], [3.25, 4]]), b: tf.tensor([0.1, 0.2, 0.3]) },
    iteration: tf.tensor([3, -7], [2], 'int32'),
    mask: tf.tensor([true, false, true], [3], 'bool'),
    scalar: tf.scalar(-0.5),
    empty: tf.zeros([0, 4]),
    key: new Uint32Array([1, 17]), // a key with both words set
    ints: new Int32Array([-1, 2]),
    floats: new Float32Array([0.25]),
    nested: [1, null, { s: 'text', t: true, n: NaN, inf: -Infinity }, [undefined]],
    none: null,
    lr: 0.001,
  };
}

describe('serialization', () => {
  test('round trip of tensors (float32/int32/bool), typed arrays, nested values and nulls', () => {
    const tree = sampleTree();
    const bytes = serializeTree(tree);
    expect(String.fromCharCode(...bytes.subarray(0, 8))).toBe('LOPTTREE');
    const back = deserializeTree(bytes) as any;
    expect(back.params.w.dtype).toBe('float32');
    expect(back.params.w.shape).toEqual([2, 2]);
    expect(Array.from(back.params.w.dataSync())).toEqual([1.5, -2, 3.25, 4]);
    expect(Array.from(back.params.b.dataSync())).toEqual(Array.from(tree.params.b.dataSync()));
    expect(back.iteration.dtype).toBe('int32');
    expect(Array.from(back.iteration.dataSync())).toEqual([3, -7]);
    expect(back.mask.dtype).toBe('bool');
    expect(Array.from(back.mask.dataSync())).toEqual([1, 0, 1]);
    expect(back.scalar.shape).toEqual([]);
    expect(back.scalar.dataSync()[0]).toBe(-0.5);
    expect(back.empty.shape).toEqual([0, 4]);
    expect(back.key).toBeInstanceOf(Uint32Array);
    expect(Array.from(back.key)).toEqual([1, 17]);
    expect(back.ints).toBeInstanceOf(Int32Array);
    expect(Array.from(back.ints)).toEqual([-1, 2]);
    expect(back.floats).toBeInstanceOf(Float32Array);
    expect(back.nested[0]).toBe(1);
    expect(back.nested[1]).toBeNull();
    expect(back.nested[2].s).toBe('text');
    expect(back.nested[2].t).toBe(true);
    expect(back.nested[2].n).toBeNaN();
    expect(back.nested[2].inf).toBe(-Infinity);
    expect(back.nested[3]).toEqual([undefined]);
    expect(back.none).toBeNull();
    expect(back.lr).toBe(0.001);
    // serializing the result again gives the same bytes
    expect(Buffer.from(serializeTree(back)).equals(Buffer.from(bytes))).toBe(true);
    treeDispose([tree, back]);
  });

  test('bare leaves and empty trees', () => {
    const t = tf.tensor([1, 2]);
    const back = deserializeTree(serializeTree(t)) as tf.Tensor;
    expect(Array.from(back.dataSync())).toEqual([1, 2]);
    expect(deserializeTree(serializeTree(null))).toBeNull();
    expect(deserializeTree(serializeTree({}))).toEqual({});
    expect(deserializeTree(serializeTree([]))).toEqual([]);
    treeDispose([t, back]);
  });

  test('unsupported leaves are rejected with the path', () => {
    const c = tf.tensor(['x', 'y']);
    expect(() => serializeTree({ a: { c } })).toThrow(/leaf 'a\/c' has dtype string; allowed: float32, int32, bool/);
    c.dispose();
    expect(() => serializeTree({ f: new Float64Array(2) as any })).toThrow(/leaf 'f' has unsupported type Float64Array/);
    const d = tf.scalar(1);
    d.dispose();
    expect(() => serializeTree({ d })).toThrow(/disposed/);
  });

  test('crc32 matches the check value, and zlib agrees with the JS table', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Js(check)).toBe(0xcbf43926);
    const data = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
    expect(crc32Js(data)).toBe(crc32(data));
  });

  test('saveTree / loadTree via an atomic write leave no temporary files', async () => {
    const file = path.join(dir, 'state.lopt');
    const tree = sampleTree();
    await saveTree(file, tree);
    await saveTree(file, tree); // overwrite
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const back = (await loadTree(file)) as any;
    expect(Array.from(back.params.w.dataSync())).toEqual([1.5, -2, 3.25, 4]);
    await atomicWriteFile(path.join(dir, 'x.txt'), 'hello');
    expect(fs.readFileSync(path.join(dir, 'x.txt'), 'utf8')).toBe('hello');
    treeDispose([tree, back]);
  });

  test('atomicWriteFile cleans up when the target cannot be replaced', async () => {
    const sub = path.join(dir, 'adir');
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'keep'), '1');
    await expect(atomicWriteFile(sub, 'data')).rejects.toThrow();
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  describe('corrupt files give SerializationErrors naming the file', () => {
    let file: string;
    let good: Buffer;
    beforeAll(async () => {
      file = path.join(dir, 'good.lopt');
      const tree = { w: tf.ones([16, 16]), i: tf.tensor([1, 2], [2], 'int32') };
      await saveTree(file, tree);
      treeDispose(tree);
      good = fs.readFileSync(file);
    });
    const write = (name: string, bytes: Uint8Array) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, bytes);
      return p;
    };

    test('truncated', async () => {
      for (const n of [0, 5, 12, 40, good.length - 1, good.length - 500]) {
        const p = write(`trunc${n}.lopt`, good.subarray(0, n));
        await expect(loadTree(p)).rejects.toThrow(SerializationError);
        await expect(loadTree(p)).rejects.toThrow(new RegExp(`${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: truncated`));
      }
    });

    test('wrong magic', async () => {
      const bad = Buffer.from(good);
      bad.write('NOTATREE', 0, 'latin1');
      const p = write('magic.lopt', bad);
      await expect(loadTree(p)).rejects.toThrow(/magic\.lopt: not a lopt tree file \(magic bytes "NOTATREE"/);
      const p2 = write('text.lopt', Buffer.from('hello'));
      await expect(loadTree(p2)).rejects.toThrow(/text\.lopt: truncated/);
    });

    test('flipped data byte fails the checksum', async () => {
      const bad = Buffer.from(good);
      bad[bad.length - 100] ^= 0x40;
      const p = write('flip.lopt', bad);
      await expect(loadTree(p)).rejects.toThrow(/flip\.lopt: checksum mismatch .* the file is corrupt/);
    });

    test('corrupt index', async () => {
      const bad = Buffer.from(good);
      bad[17] = 0x00; // inside the JSON index
      const p = write('index.lopt', bad);
      await expect(loadTree(p)).rejects.toThrow(/index\.lopt: corrupt index/);
    });

    test('unsupported version, trailing bytes, missing file', async () => {
      const v = Buffer.from(good);
      v.writeUInt32LE(99, 8);
      await expect(loadTree(write('ver.lopt', v))).rejects.toThrow(/unsupported format version 99/);
      await expect(loadTree(write('tail.lopt', Buffer.concat([good, Buffer.from([1, 2])])))).rejects.toThrow(/2 unexpected trailing bytes/);
      await expect(loadTree(path.join(dir, 'missing.lopt'))).rejects.toThrow(/missing\.lopt: cannot read/);
      expect(() => deserializeTree(new Uint8Array(3))).toThrow(/<bytes>: truncated/);
    });
  });
});

describe('host trees: the one form trees take between threads, processes and files', () => {
  test('toHostTree → encodeHostTree is serializeTree; decode → fromHostTree round-trips; an allocator places the data', () => {
    const tree = { a: { w: tf.tensor([[1, 2], [3, 4]]), it: tf.tensor([5], [1], 'int32'), m: tf.tensor([true, false], [2], 'bool') }, key: new Uint32Array([1, 2]), lr: 0.5 };
    const host = toHostTree(tree);
    expect(host.paths).toEqual(['a/it', 'a/m', 'a/w', 'key', 'lr']);
    expect(host.leaves[2]).toEqual({ kind: 'tensor', dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
    const bytes = encodeHostTree(host);
    expect(Buffer.from(bytes).equals(Buffer.from(serializeTree(tree)))).toBe(true);
    const decoded = decodeHostTree(bytes);
    expect(decoded.paths).toEqual(host.paths);
    const back = fromHostTree<any>(decoded);
    expect(back.a.w.arraySync()).toEqual([[1, 2], [3, 4]]);
    expect(back.a.m.dtype).toBe('bool');
    expect(Array.from(back.key)).toEqual([1, 2]);
    // an allocator (e.g. a shared-memory arena) receives every tensor's data
    const sab = new SharedArrayBuffer(64);
    let used = 0;
    const shared = toHostTree(tree, (Ctor: any, n: number) => {
      const out = new Ctor(sab, used, n);
      used += Math.ceil((n * Ctor.BYTES_PER_ELEMENT) / 8) * 8;
      return out;
    });
    expect((shared.leaves[2] as any).data.buffer).toBe(sab);
    expect(Array.from((shared.leaves[2] as any).data)).toEqual([1, 2, 3, 4]);
    treeDispose([tree, back]);
  });

  test('a decoded tensor leaf whose shape does not fit its data is refused', () => {
    const bytes = encodeHostTree(toHostTree({ w: tf.tensor([1, 2]) }));
    const text = Buffer.from(bytes).toString('latin1').replace('"shape":[2]', '"shape":[3]');
    // re-checksum so only the shape is wrong
    const bad = Buffer.from(text, 'latin1');
    bad.writeUInt32LE(crc32(bad.subarray(0, bad.length - 4)), bad.length - 4);
    expect(() => decodeHostTree(bad)).toThrow(/shape \[3\] does not match 8 bytes/);
  });
});
