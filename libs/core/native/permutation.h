/*
 * jax.random.permutation's pieces in C, the same bits as the JavaScript in src/random.ts and
 * tasks' batch_streams.ts (which stay the reference; the tests compare them): random bits from a
 * key (both of JAX's threefry modes) and the stable order of indices by those bits (LSD radix
 * sort, four passes of 8 bits). A data stream shuffles a whole split with them every epoch.
 */
#include <stdint.h>
#include <string.h>

static inline uint32_t lopt_rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* threefry2x32 (20 rounds) of the counter pair (x0, x1) under key (k0, k1). */
static inline void lopt_threefry(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t *o0, uint32_t *o1) {
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1bd11bdau};
  uint32_t a = x0 + k0, b = x1 + k1;
  for (int block = 0; block < 5; block++) {
    for (int i = 0; i < 4; i++) {
      a += b;
      b = lopt_rotl(b, rot[block % 2][i]) ^ a;
    }
    a += ks[(block + 1) % 3];
    b += ks[(block + 2) % 3] + (uint32_t)(block + 1);
  }
  *o0 = a;
  *o1 = b;
}

/* jax.random.bits(key, (n,)) as uint32: partitionable, word i = xor of the block of (0, i); else
 * threefry_2x32 of iota(n) split in two halves that form the counter pairs (padded to even). */
static void lopt_random_bits(uint32_t k0, uint32_t k1, size_t n, int partitionable, uint32_t *out) {
  if (partitionable) {
    for (size_t i = 0; i < n; i++) {
      uint32_t a, b;
      lopt_threefry(k0, k1, 0, (uint32_t)i, &a, &b);
      out[i] = a ^ b;
    }
    return;
  }
  const size_t half = (n + 1) / 2;
  for (size_t i = 0; i < half; i++) {
    uint32_t a, b;
    lopt_threefry(k0, k1, (uint32_t)i, i + half < n ? (uint32_t)(i + half) : 0u, &a, &b);
    out[i] = a;
    if (i + half < n) out[i + half] = b;
  }
}

/* order = 0..n-1 sorted by bits ascending, ties in index order; tmp: n ints of scratch. */
static void lopt_stable_order(const uint32_t *bits, size_t n, int32_t *order, int32_t *tmp) {
  int32_t *cur = order, *next = tmp;
  for (size_t i = 0; i < n; i++) cur[i] = (int32_t)i;
  for (int shift = 0; shift < 32; shift += 8) {
    size_t count[256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) count[(bits[i] >> shift) & 255]++;
    for (size_t d = 0, sum = 0; d < 256; d++) {
      const size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) {
      const int32_t j = cur[i];
      next[count[(bits[j] >> shift) & 255]++] = j;
    }
    int32_t *t = cur;
    cur = next;
    next = t;
  }
  /* four passes: the result is back in `order` */
}
