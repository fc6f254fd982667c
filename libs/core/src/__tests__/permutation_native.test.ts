/**
 * The core addon's random bits and stable radix order (what a data stream's shuffle runs where
 * the addon is built) against the JavaScript in random.ts and the tasks' stableOrderByBits, which
 * the jax.random goldens check: the same bits in both threefry modes, the same order with ties;
 * and its normals from uniforms (large normal and truncated-normal draws) against random.ts's
 * erfinv, bit for bit.
 */
import { coreNative } from '../core_native';
import { normalFromUniform, PRNGKey, randomBits, split, threefryBits, uniformArray, withConfig } from '../random';

const native = coreNative();
const built = native ? describe : describe.skip;

/** The JavaScript order (stable: ties in index order), written here as the plain definition. */
function orderBySort(bits: Uint32Array): number[] {
  return Array.from(bits.keys()).sort((a, b) => bits[a] - bits[b] || a - b);
}

built('core addon: random bits and stable order', () => {
  test.each([false, true])('randomBits equals the JavaScript threefryBits and random.randomBits (partitionable %s) for odd and even sizes', (partitionable) => {
    withConfig({ threefryPartitionable: partitionable }, () => {
      for (const [seed, n] of [[0, 1], [1, 2], [7, 7], [42, 1000], [3, 60001]]) {
        const key = split(PRNGKey(seed))[1];
        const out = new Uint32Array(n);
        native!.randomBits(key[0], key[1], partitionable, out);
        expect(Array.from(out)).toEqual(Array.from(threefryBits(key, n)));
        expect(Array.from(randomBits(key, n))).toEqual(Array.from(out));
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

  test('normalFromUniform: the same bits as the JavaScript over 2^20 draws, the tails, ±1, ±0 and NaN, with and without bounds', () => {
    const u = uniformArray(PRNGKey(11), 1 << 20, -0.99999994, 1);
    // the far tails (w >= 5 branch), the ends, zeros and NaN
    const edges = [0.99999994, -0.99999994, 0.9999, -0.99995, 0.9966, 1, -1, 0, -0, NaN, 1e-30, -1e-30, 0.5, -0.5];
    const all = Float32Array.from([...edges, ...u]);
    let tails = 0;
    for (const [lo, hi] of [[-Infinity, Infinity], [-1.9999999, 1.9999999], [0, 3], [-3, -0]]) {
      const viaNative = normalFromUniform(all, lo, hi);
      const viaJs = normalFromUniform(all, lo, hi, { native: false });
      let differ = 0;
      for (let i = 0; i < all.length; i++) if (!Object.is(viaNative[i], viaJs[i])) differ++;
      expect({ lo, hi, differ }).toEqual({ lo, hi, differ: 0 });
      if (lo === -Infinity) tails = viaJs.filter((v) => Math.abs(v) > 3.5).length;
    }
    expect(tails).toBeGreaterThan(100); // the tail branch ran
  });

  test('bad arguments are refused with what was expected', () => {
    expect(() => native!.normalFromUniform(new Float32Array(3), new Float32Array(2), 0, 1)).toThrow(/same length/);
    expect(() => native!.stableOrder(new Uint32Array(3), new Int32Array(2))).toThrow(/same length/);
    expect(() => native!.randomBits(0, 1, false, new Float32Array(2) as unknown as Uint32Array)).toThrow(/Uint32Array/);
  });
});
