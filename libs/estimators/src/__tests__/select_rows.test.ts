/**
 * selectRows (unroll_state.ts): the same selection as tf.where on the row mask broadcast to the leaf, for every mask;
 * replaceRows: the same rows when only the selected rows of the first operand are given.
 */
import * as tf from '@tensorflow/tfjs';
import { replaceRows, selectRows } from '../index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function byWhere(rows: number[], a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const cond = tf.tensor(Int32Array.from(rows), [rows.length, ...new Array(a.rank - 1).fill(1)], 'bool');
  return tf.where(tf.broadcastTo(cond, a.shape), a, b);
}

test('every row mask of 5 rows, for float leaves of rank 1-3 (NaN kept) and int32 and bool leaves', () => {
  const leaves: Array<[tf.Tensor, tf.Tensor]> = [
    [tf.tensor1d([1, 2, 3, 4, NaN]), tf.tensor1d([-1, NaN, -3, -4, -5])],
    [tf.randomNormal([5, 3], 0, 1, 'float32', 1), tf.randomNormal([5, 3], 0, 1, 'float32', 2)],
    [tf.randomNormal([5, 2, 4], 0, 1, 'float32', 3), tf.randomNormal([5, 2, 4], 0, 1, 'float32', 4)],
    [tf.tensor2d([[1], [2], [3], [4], [5]], [5, 1], 'int32'), tf.tensor2d([[6], [7], [8], [9], [10]], [5, 1], 'int32')],
    [tf.tensor1d([1, 0, 1, 0, 1], 'bool'), tf.tensor1d([0, 1, 0, 1, 0], 'bool')],
  ];
  for (let m = 0; m < 32; m++) {
    const rows = Array.from({ length: 5 }, (_, i) => (m >> i) & 1);
    for (const [a, b] of leaves) {
      const got = tf.tidy(() => selectRows(rows, a, b).clone());
      const want = byWhere(rows, a, b);
      expect(got.dtype).toBe(a.dtype);
      expect(got.shape).toEqual(a.shape);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
      tf.dispose([got, want]);
    }
  }
  tf.dispose(leaves.flat());
});

test('a mask of the wrong length is refused', () => {
  const a = tf.zeros([3, 2]);
  expect(() => selectRows([1, 0], a, a)).toThrow(/2 row flags for leaves of 3 and 3 rows/);
  a.dispose();
});

test('replaceRows takes the set rows from a tensor that holds only them: the same as selectRows, for every mask', () => {
  const a = tf.randomNormal([5, 2, 3], 0, 1, 'float32', 5);
  const b = tf.randomNormal([5, 2, 3], 0, 1, 'float32', 6);
  const ai = tf.tensor1d([1, 2, 3, 4, 5], 'int32');
  const bi = tf.tensor1d([6, 7, 8, 9, 10], 'int32');
  for (let m = 0; m < 32; m++) {
    const rows = Array.from({ length: 5 }, (_, i) => (m >> i) & 1);
    const set = rows.flatMap((r, i) => (r ? [i] : []));
    for (const [x, y] of [[a, b], [ai, bi]]) {
      const got = tf.tidy(() => replaceRows(rows, tf.gather(x, set.length ? set : [0]).slice(0, set.length), y).clone());
      const want = tf.tidy(() => selectRows(rows, x, y).clone());
      expect(got.dtype).toBe(x.dtype);
      expect(got.shape).toEqual(x.shape);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
      tf.dispose([got, want]);
    }
  }
  expect(() => tf.tidy(() => replaceRows([1, 0, 1], tf.zeros([1, 2]), tf.zeros([3, 2])))).toThrow(/3 row flags \(2 set\) for leaves of 1 fresh and 3 old rows/);
  tf.dispose([a, b, ai, bi]);
});
