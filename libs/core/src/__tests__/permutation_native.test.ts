/**
 * The core addon's random bits and stable radix order (what a data stream's shuffle runs where
 * the addon is built) against the JavaScript in random.ts and the tasks' stableOrderByBits, which
 * the jax.random goldens check: the same bits in both threefry modes, the same order with ties.
 */
import { coreNative } from '../core_native';
import { PRNGKey, randomBits, split, withConfig } from '../random';

const native = coreNative();
const built = native ? describe : describe.skip;

/** The JavaScript order (stable: ties in index order), written here as the plain definition. */
function orderBySort(bits: Uint32Array): number[] {
  return Array.from(bits.keys()).sort((a, b) => bits[a] - bits[b] || a - b);
}

built('core addon: random bits and stable order', () => {
  test.each([false, true])('randomBits equals random.randomBits (partitionable %s) for odd and even sizes', (partitionable) => {
    withConfig({ threefryPartitionable: partitionable }, () => {
      for (const [seed, n] of [[0, 1], [1, 2], [7, 7], [42, 1000], [3, 60001]]) {
        const key = split(PRNGKey(seed))[1];
        const out = new Uint32Array(n);
        native!.randomBits(key[0], key[1], partitionable, out);
        expect(Array.from(out)).toEqual(Array.from(randomBits(key, n)));
      }
    });
  });

  test('stableOrder sorts by the bits, ties in index order', () => {
    const bits = randomBits(PRNGKey(5), 5000).map((b, i) => (i % 3 === 0 ? b & 0xff : b)); // many ties in the low byte
    const order = new Int32Array(bits.length);
    native!.stableOrder(bits, order);
    expect(Array.from(order)).toEqual(orderBySort(bits));
    const empty = new Int32Array(0);
    native!.stableOrder(new Uint32Array(0), empty);
    expect(empty.length).toBe(0);
  });

  test('bad arguments are refused with what was expected', () => {
    expect(() => native!.stableOrder(new Uint32Array(3), new Int32Array(2))).toThrow(/same length/);
    expect(() => native!.randomBits(0, 1, false, new Float32Array(2) as unknown as Uint32Array)).toThrow(/Uint32Array/);
  });
});
