import * as tf from '@tensorflow/tfjs';
import { initBackend, random } from '../index';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

function stats(x: ArrayLike<number>) {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / x.length) };
}

function corr(a: ArrayLike<number>, b: ArrayLike<number>) {
  const sa = stats(a);
  const sb = stats(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i] - sa.mean) * (b[i] - sb.mean);
  return c / a.length / (sa.std * sb.std);
}

describe('random', () => {
  test('PRNGKey(0) and split match JAX threefry', () => {
    expect(Array.from(random.PRNGKey(0))).toEqual([0, 0]);
    const [a, b] = random.split(random.PRNGKey(0));
    // jax.random.split(PRNGKey(0)) == [[4146024105, 967050713], [2718843009, 1272950319]]
    expect(Array.from(a)).toEqual([4146024105, 967050713]);
    expect(Array.from(b)).toEqual([2718843009, 1272950319]);
  });

  test('PRNGKey of large and negative seeds', () => {
    expect(Array.from(random.PRNGKey(42))).toEqual([0, 42]);
    // jax with its default 32-bit integers: the seed is taken mod 2^32 and the high word is 0
    expect(Array.from(random.PRNGKey(2 ** 32 + 5))).toEqual([0, 5]);
    expect(Array.from(random.PRNGKey(-1))).toEqual([0, 0xffffffff]);
    expect(() => random.PRNGKey(2 ** 60)).toThrow(/safe integer/);
    expect(() => random.PRNGKey(1.5)).toThrow(/integer/);
  });

  test('split and foldIn are deterministic and distinct', () => {
    const k = random.PRNGKey(7);
    expect(random.split(k, 5).map((x) => Array.from(x))).toEqual(random.split(k, 5).map((x) => Array.from(x)));
    expect(Array.from(random.foldIn(k, 3))).toEqual(Array.from(random.foldIn(k, 3)));
    const all = new Set<string>();
    for (const s of random.split(k, 64)) all.add(s.join(','));
    for (let i = 0; i < 64; i++) all.add(random.foldIn(k, i).join(','));
    expect(all.size).toBe(128);
    // split(k, 2) and split(k, 3) differ (the counter layout depends on n, as in JAX)
    expect(random.split(k, 3)[0].join(',')).not.toBe(random.split(k, 2)[0].join(','));
    // the input key is not modified
    expect(Array.from(k)).toEqual([0, 7]);
    expect(() => random.split(new Uint32Array(3) as any)).toThrow(/PRNGKey/);
  });

  test('PRNGSequence yields the split chain', () => {
    const seq = new random.PRNGSequence(3);
    const [k1, s1] = random.split(random.PRNGKey(3));
    expect(Array.from(seq.next())).toEqual(Array.from(s1));
    expect(Array.from(seq.next())).toEqual(Array.from(random.split(k1)[1]));
    expect(random.isKey(random.PRNGKey(0))).toBe(true);
    expect(random.isKey([0, 0])).toBe(false);
  });

  test('uniform in [0, 1) with mean 1/2 and variance 1/12', () => {
    const n = 100000;
    const u = random.uniformArray(random.PRNGKey(1), n);
    let min = Infinity;
    let max = -Infinity;
    for (const x of u) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    const s = stats(u);
    // standard error of the mean ~ 0.289/sqrt(n) = 9e-4
    expect(Math.abs(s.mean - 0.5)).toBeLessThan(5e-3);
    expect(Math.abs(s.std - Math.sqrt(1 / 12))).toBeLessThan(5e-3);
    const v = random.uniformArray(random.PRNGKey(1), 1000, -3, 2);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...v)).toBeLessThan(2);
  });

  test('normal samples from different keys: mean 0, std 1, uncorrelated', () => {
    const n = 50000;
    const [k1, k2] = random.split(random.PRNGKey(11));
    const a = random.normalArray(k1, n);
    const b = random.normalArray(k2, n);
    for (const x of [a, b]) {
      const s = stats(x);
      // SE(mean) = 1/sqrt(n) = 4.5e-3; SE(std) ~ 1/sqrt(2n) = 3.2e-3
      expect(Math.abs(s.mean)).toBeLessThan(0.02);
      expect(Math.abs(s.std - 1)).toBeLessThan(0.015);
      expect(a.every(Number.isFinite)).toBe(true);
    }
    // SE(corr) = 1/sqrt(n) = 4.5e-3
    expect(Math.abs(corr(a, b))).toBeLessThan(0.02);
    // neighbouring draws from one key are uncorrelated too
    expect(Math.abs(corr(a.subarray(0, n - 1), a.subarray(1)))).toBeLessThan(0.02);
    // fraction within one sigma ~ 0.6827
    const within = a.filter((x) => Math.abs(x) < 1).length / n;
    expect(Math.abs(within - 0.6827)).toBeLessThan(0.01);
  });

  test('normal tensor has the requested shape and equals normalArray', () => {
    const k = random.PRNGKey(5);
    const t = random.normal(k, [3, 4]);
    expect(t.shape).toEqual([3, 4]);
    expect(t.dtype).toBe('float32');
    expect(Array.from(t.dataSync())).toEqual(Array.from(random.normalArray(k, 12)));
    t.dispose();
    const s = random.normal(k);
    expect(s.shape).toEqual([]);
    s.dispose();
  });

  test('truncatedNormal stays in bounds with std ~0.8796', () => {
    const n = 50000;
    const x = random.truncatedNormalArray(random.PRNGKey(2), n);
    expect(Math.min(...x)).toBeGreaterThan(-2);
    expect(Math.max(...x)).toBeLessThan(2);
    const s = stats(x);
    expect(Math.abs(s.mean)).toBeLessThan(0.02);
    expect(Math.abs(s.std - 0.8796)).toBeLessThan(0.01);
    const y = random.truncatedNormalArray(random.PRNGKey(2), 5000, -1, 0.5);
    expect(Math.min(...y)).toBeGreaterThan(-1);
    expect(Math.max(...y)).toBeLessThan(0.5);
  });

  test('randint covers its range near-uniformly', () => {
    const n = 60000;
    const lo = -3;
    const hi = 7;
    const r = random.randintArray(random.PRNGKey(9), n, lo, hi);
    const counts = new Array(hi - lo).fill(0);
    let bad = 0;
    for (const v of r) {
      if (!Number.isInteger(v) || v < lo || v >= hi) bad++;
      else counts[v - lo]++;
    }
    expect(bad).toBe(0);
    const expected = n / (hi - lo);
    // chi-square with 9 dof: 99.9th percentile is 27.9
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.9);
    const t = random.randint(random.PRNGKey(9), [2, 3], 0, 4);
    expect(t.dtype).toBe('int32');
    expect(t.shape).toEqual([2, 3]);
    t.dispose();
    expect(() => random.randintArray(random.PRNGKey(0), 3, 5, 5)).toThrow(/maxval > minval/);
  });

  test('bernoulli rate matches p', () => {
    const n = 40000;
    for (const p of [0.1, 0.5, 0.9]) {
      const b = random.bernoulli(random.PRNGKey(4), [n], p);
      expect(b.dtype).toBe('bool');
      const rate = Array.from(b.dataSync() as Uint8Array).reduce((s, x) => s + x, 0) / n;
      // SE = sqrt(p(1-p)/n) <= 2.5e-3
      expect(Math.abs(rate - p)).toBeLessThan(0.012);
      b.dispose();
    }
  });

  test('erfinv inverts erf', () => {
    for (const x of [-0.99, -0.5, -0.1, 0, 0.1, 0.5, 0.9, 0.999]) {
      expect(random.erf(random.erfinv(x))).toBeCloseTo(x, 5);
    }
    expect(random.erf(1)).toBeCloseTo(0.8427007929, 6);
    expect(random.erf(3)).toBeCloseTo(0.9999779095, 6);
  });

  test('samplers allocate exactly one tensor each', () => {
    const before = tf.memory().numTensors;
    const t = random.uniform(random.PRNGKey(0), [10]);
    expect(tf.memory().numTensors).toBe(before + 1);
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
