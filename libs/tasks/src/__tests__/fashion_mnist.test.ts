/**
 * Real Fashion-MNIST files (Debian dataset-fashion-mnist or LOPT_DATA_DIR). When they are absent
 * this suite is replaced by one test that logs why; it does not silently pass.
 */
import { useTestBackend } from './helpers';
import * as tf from '@tensorflow/tfjs';
import { fashionMnistDatasets, fashionMnistSplits, findFashionMnistDir } from '../index';

let dir: string | null = null;
let why = '';
try {
  dir = findFashionMnistDir({ download: false });
} catch (e) {
  why = (e as Error).message;
}

beforeAll(async () => {
  await useTestBackend();
});

const describeIfData = dir ? describe : describe.skip;

if (!dir) {
  test('Fashion-MNIST files absent: real-data tests skipped', () => {
    console.warn(`SKIPPING real Fashion-MNIST tests: ${why}`);
    expect(why).toMatch(/not found/);
  });
}

describeIfData('Fashion-MNIST (real files)', () => {
  test('split counts 48000/6000/6000/10000, shapes, range, balanced test labels', () => {
    const s = fashionMnistSplits([8, 8]);
    expect(s.train.image.shape).toEqual([48000, 8, 8, 1]);
    expect(s.inner_valid.image.shape).toEqual([6000, 8, 8, 1]);
    expect(s.outer_valid.image.shape).toEqual([6000, 8, 8, 1]);
    expect(s.test.image.shape).toEqual([10000, 8, 8, 1]);
    expect(s.train.label.shape).toEqual([48000]);
    expect(s.test.label.dtype).toBe('int32');
    expect(s.test.image.dtype).toBe('float32');
    const counts = tf.tidy(() => tf.sum(tf.oneHot(s.test.label, 10), 0)).dataSync();
    expect(Array.from(counts)).toEqual(new Array(10).fill(1000));
    const mn = tf.min(s.train.image).dataSync()[0];
    const mx = tf.max(s.train.image).dataSync()[0];
    expect(mn).toBeGreaterThanOrEqual(0);
    expect(mx).toBeLessThanOrEqual(1);
    expect(mx).toBeGreaterThan(0.5);
  });

  test('batches: [128,8,8,1] float32 / [128] int32; next([K,N]) gathers [K,N,128,...]; shared streams', () => {
    const ds = fashionMnistDatasets(128, [8, 8]);
    expect(fashionMnistDatasets(128, [8, 8])).toBe(ds);
    expect(ds.extraInfo?.num_classes).toBe(10);
    const b = ds.split('train').next() as { image: tf.Tensor; label: tf.Tensor };
    expect(b.image.shape).toEqual([128, 8, 8, 1]);
    expect(b.image.dtype).toBe('float32');
    expect(b.label.shape).toEqual([128]);
    expect(b.label.dtype).toBe('int32');
    const kb = ds.split('outer_valid').next([2, 3]) as { image: tf.Tensor; label: tf.Tensor };
    expect(kb.image.shape).toEqual([2, 3, 128, 8, 8, 1]);
    expect(kb.label.shape).toEqual([2, 3, 128]);
    expect(ds.split('train').getState().position).toBe(1);
    expect(() => ds.split('valid')).toThrow(/allowed: train, inner_valid, outer_valid, test/);
    tf.dispose([b.image, b.label, kb.image, kb.label]);
  });
});
