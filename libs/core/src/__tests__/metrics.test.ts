import * as tf from '@tensorflow/tfjs';
import { aggregateMetricList, initBackend, metricKey, metricsToNumbers, MetricsError, parseMetricKey, random, stripMetricSuffix } from '../index';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

describe('metric keys', () => {
  test('parseMetricKey splits agg and name', () => {
    expect(parseMetricKey('mean||loss')).toEqual({ agg: 'mean', name: 'loss' });
    expect(parseMetricKey('collect||scope/grad_norm___2')).toEqual({ agg: 'collect', name: 'scope/grad_norm___2' });
    expect(metricKey('sample', 'x')).toBe('sample||x');
  });
  test('malformed keys give clear errors', () => {
    expect(() => parseMetricKey('loss')).toThrow(MetricsError);
    expect(() => parseMetricKey('loss')).toThrow(/malformed metric key 'loss': expected '<agg>\|\|<name>' with agg one of mean, sample, collect, none, tensor/);
    expect(() => parseMetricKey('avg||loss')).toThrow(/unknown aggregation 'avg'; allowed: mean, sample, collect, none, tensor/);
    expect(() => parseMetricKey('mean||')).toThrow(/empty name/);
    expect(() => parseMetricKey('mean||a||b')).toThrow(/malformed/);
    expect(() => metricKey('bogus' as any, 'x')).toThrow(/unknown aggregation/);
  });
  test('stripMetricSuffix', () => {
    expect(stripMetricSuffix('loss___12')).toBe('loss');
    expect(stripMetricSuffix('loss')).toBe('loss');
    expect(stripMetricSuffix('a___b')).toBe('a___b');
  });
});

describe('aggregateMetricList', () => {
  test('mean is the sum over all elements / total element count', () => {
    const out = aggregateMetricList([
      { 'mean||loss': 1 },
      { 'mean||loss': [2, 3, 4] },
      { 'mean||loss___1': tf.tensor([10, 20]) },
      { 'mean||other': new Float32Array([5]) },
    ]);
    // (1 + 2 + 3 + 4 + 10 + 20) / 6 = 40 / 6
    expect(out['mean||loss']).toBeCloseTo(40 / 6, 6);
    expect(out['mean||other']).toBe(5);
    expect(Object.keys(out).sort()).toEqual(['mean||loss', 'mean||other']);
  });

  test('collect concatenates raveled values in order', () => {
    const out = aggregateMetricList([{ 'collect||h': tf.tensor([[1, 2], [3, 4]]) }, { 'collect||h___1': [5] }, { 'collect||h': 6 }]);
    expect(out['collect||h']).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('tensor passes a single value through; none must be one scalar', () => {
    const t = tf.tensor([1, 2, 3]);
    const out = aggregateMetricList([{ 'tensor||w': t, 'none||step': 7 }]);
    expect(out['tensor||w']).toBe(t);
    expect(out['none||step']).toBe(7);
    expect(aggregateMetricList([{ 'none||s': tf.scalar(2.5) }])['none||s']).toBe(2.5);
    expect(() => aggregateMetricList([{ 'none||step': 1 }, { 'none||step': 2 }])).toThrow(/'none\|\|step' has aggregation 'none' and must occur exactly once, but occurred 2 times/);
    expect(() => aggregateMetricList([{ 'none||v': [1, 2] }])).toThrow(/must be a scalar, got an array of 2 elements/);
    expect(() => aggregateMetricList([{ 'none||v': tf.tensor([1]) }])).toThrow(/must be a scalar, got shape \[1\]/);
    expect(() => aggregateMetricList([{ loss: 1 }])).toThrow(/malformed metric key 'loss'/);
    t.dispose();
  });

  test('sample draws one element, deterministically given the key', () => {
    const list = [{ 'sample||x': [0, 1, 2, 3] }, { 'sample||x': tf.tensor([4, 5, 6, 7, 8, 9]) }];
    const a = aggregateMetricList(list)['sample||x'] as number;
    expect(Number.isInteger(a) && a >= 0 && a <= 9).toBe(true);
    expect(aggregateMetricList(list)['sample||x']).toBe(a);
    expect(aggregateMetricList(list, { key: random.PRNGKey(0) })['sample||x']).toBe(a);
    // roughly uniform over keys: every element is picked, frequencies near 1/10
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 2000; i++) counts[aggregateMetricList(list, { key: random.PRNGKey(i) })['sample||x'] as number]++;
    for (const c of counts) expect(Math.abs(c - 200)).toBeLessThan(60);
    expect(aggregateMetricList([{ 'sample||one': 3 }])['sample||one']).toBe(3);
  });

  test('empty list and empty mean', () => {
    expect(aggregateMetricList([])).toEqual({});
    expect(aggregateMetricList([{ 'mean||e': [] }])['mean||e']).toBeNaN();
  });
});

describe('metricsToNumbers', () => {
  test('reads scalars to numbers and other tensors to flat arrays, keeping key order', () => {
    const m = {
      'mean||b': tf.scalar(1.5),
      'collect||a': tf.tensor([[1, 2], [3, 4]]),
      'mean||n': 3,
      'tensor||i': tf.tensor([7, 8], [2], 'int32'),
      'none||flag': tf.scalar(true, 'bool'),
      'collect||f': new Float32Array([0.5]),
    };
    const before = tf.memory().numTensors;
    const out = metricsToNumbers(m);
    expect(tf.memory().numTensors).toBe(before);
    expect(out).toEqual({ 'mean||b': 1.5, 'collect||a': [1, 2, 3, 4], 'mean||n': 3, 'tensor||i': [7, 8], 'none||flag': 1, 'collect||f': [0.5] });
    expect(Object.keys(out)).toEqual(Object.keys(m));
    expect(metricsToNumbers({ x: tf.scalar(4) })).toEqual({ x: 4 });
    for (const v of Object.values(m)) if (v instanceof tf.Tensor) v.dispose();
  });
});
