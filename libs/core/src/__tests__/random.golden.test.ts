/**
 * jax.random bit for bit in both of jax's modes, against values the real jax 0.10.2 drew
 * (test/golden/<mode>/random.json, made by tools/reference/make_golden.py).
 */
import { initBackend, random } from '../index';
import { golden, MODES } from '../../../../test/golden';

beforeAll(async () => {
  await initBackend(undefined, { quiet: true });
});

const k0 = () => random.PRNGKey(0);
const k7 = () => random.PRNGKey(7);
const keys = (ks: Uint32Array[]) => ks.map((k) => Array.from(k));

// Each case: the golden entry's name and how lopt-ts computes it (integers compared exactly,
// floats to 1 ulp-ish: erfinv is a polynomial, evaluated in float64 here and float32 in XLA).
const CASES: [string, () => number[] | number[][], 'exact' | 'float'][] = [
  ['PRNGKey(0)', () => Array.from(k0()), 'exact'],
  ['PRNGKey(2**40+5)', () => Array.from(random.PRNGKey(2 ** 40 + 5)), 'exact'],
  ['split(PRNGKey(0))', () => keys(random.split(k0())), 'exact'],
  ['split(PRNGKey(0),3)', () => keys(random.split(k0(), 3)), 'exact'],
  ['split(PRNGKey(7),5)', () => keys(random.split(k7(), 5)), 'exact'],
  ['fold_in(PRNGKey(0),1)', () => Array.from(random.foldIn(k0(), 1)), 'exact'],
  ['fold_in(PRNGKey(7),123456)', () => Array.from(random.foldIn(k7(), 123456)), 'exact'],
  ['bits(PRNGKey(0),(5,))', () => Array.from(random.randomBits(k0(), 5)), 'exact'],
  ['bits(PRNGKey(7),(2,3))', () => Array.from(random.randomBits(k7(), 6)), 'exact'],
  ['uniform(PRNGKey(0),(5,))', () => Array.from(random.uniformArray(k0(), 5)), 'exact'],
  ['uniform(PRNGKey(7),(7,),-3,2)', () => Array.from(random.uniformArray(k7(), 7, -3, 2)), 'exact'],
  ['normal(PRNGKey(0),(5,))', () => Array.from(random.normalArray(k0(), 5)), 'float'],
  ['normal(PRNGKey(7),(2,3))', () => Array.from(random.normalArray(k7(), 6)), 'float'],
  ['truncated_normal(PRNGKey(0),-2,2,(5,))', () => Array.from(random.truncatedNormalArray(k0(), 5, -2, 2)), 'float'],
  ['truncated_normal(PRNGKey(7),-1,3,(7,))', () => Array.from(random.truncatedNormalArray(k7(), 7, -1, 3)), 'float'],
  ['randint(PRNGKey(0),(7,),0,10)', () => Array.from(random.randintArray(k0(), 7, 0, 10)), 'exact'],
  ['randint(PRNGKey(7),(5,),-5,300)', () => Array.from(random.randintArray(k7(), 5, -5, 300)), 'exact'],
  ['permutation(PRNGKey(0),10)', () => Array.from(random.permutationArray(k0(), 10)), 'exact'],
  ['permutation(PRNGKey(7),33)', () => Array.from(random.permutationArray(k7(), 33)), 'exact'],
  ['bernoulli(PRNGKey(0),0.3,(7,))', () => Array.from(random.bernoulli(k0(), [7], 0.3).dataSync(), Number), 'exact'],
];

describe.each(MODES)('jax.random, %s mode', (mode) => {
  const want = golden(mode, 'random.json');
  test.each(CASES)('%s', (name, draw, kind) => {
    const got = random.withConfig({ threefryPartitionable: mode === 'partitionable' }, draw);
    const expected = want[name].values;
    if (kind === 'exact') {
      expect(got).toEqual(Array.isArray(expected[0]) && !Array.isArray(got[0]) ? expected.flat() : expected);
    } else {
      const flat = (expected as number[] | number[][]).flat();
      (got as number[]).forEach((x, i) => expect(Math.abs(x - flat[i])).toBeLessThanOrEqual(2.5e-7 * Math.max(1, Math.abs(flat[i]))));
    }
  });
});

describe('choosing the mode', () => {
  test('configure/getConfig/withConfig, and split follows the mode', () => {
    const before = random.getConfig();
    expect(before.threefryPartitionable).toBe(false); // the default: jax < 0.5, as the seed notebook ran
    const legacy = keys(random.split(k0()));
    const part = random.withConfig({ threefryPartitionable: true }, () => keys(random.split(k0())));
    expect(part).not.toEqual(legacy);
    expect(random.getConfig()).toEqual(before);
    expect(() => random.configure({ threefryPartitionable: 'yes' as any })).toThrow(/threefryPartitionable must be true or false/);
  });

  test('JAX_THREEFRY_PARTITIONABLE is read as jax reads it', () => {
    const read = (value: string | undefined) => random.envFlag('JAX_THREEFRY_PARTITIONABLE', { JAX_THREEFRY_PARTITIONABLE: value });
    expect(read('1')).toBe(true);
    expect(read('True')).toBe(true);
    expect(read('0')).toBe(false);
    expect(read('')).toBeUndefined();
    expect(read(undefined)).toBeUndefined();
    expect(() => read('maybe')).toThrow(/JAX_THREEFRY_PARTITIONABLE: invalid truth value 'maybe'/);
  });
});
