/*
 * The machine's FMA peak, per instruction-set variant (compiled once per variant by lopt_isa.h):
 * 24 independent chains of LOPT_VW-wide multiply-adds, enough to hide the FMA latency on the
 * processors seen here. 2 * 24 * LOPT_VW FLOPs per iteration. `npm run bench` reports achieved
 * GFLOP/s as a fraction of this.
 */
typedef float KERNEL(vecf) __attribute__((vector_size(LOPT_VW * 4)));

static float KERNEL(fma_probe)(int64_t iters, float a, float b) {
  KERNEL(vecf) acc[24];
  for (int k = 0; k < 24; k++)
    for (int j = 0; j < LOPT_VW; j++) acc[k][j] = (float)(k + j) * 1e-3f;
  for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 24
    for (int k = 0; k < 24; k++) acc[k] = acc[k] * a + b;
  }
  float s = 0;
  for (int k = 0; k < 24; k++)
    for (int j = 0; j < LOPT_VW; j++) s += acc[k][j];
  return s;
}

static int KERNEL(fma_probe_width)(void) { return LOPT_VW; }
