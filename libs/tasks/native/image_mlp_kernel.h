/*
 * The MLP classifier kernel, compiled once per instruction set (see ../../core/native/lopt_isa.h):
 * every function is named KERNEL(name).
 */

#include "exp_log_kernel.h"

static inline v8f KERNEL(load8)(const float *p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline void KERNEL(store8)(float *p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }

#if LOPT_VW == 16
typedef float KERNEL(v16f) __attribute__((vector_size(64)));
static inline KERNEL(v16f) KERNEL(load16)(const float *p) {
  KERNEL(v16f) v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void KERNEL(store16)(float *p, KERNEL(v16f) v) { __builtin_memcpy(p, &v, sizeof v); }
#endif

/* max(v, 0) that keeps NaN (as tf.relu and jax.nn.relu do). */
static inline float KERNEL(relu1)(float v) { return v > 0.f || v != v ? v : 0.f; }

/*
 * out[m] = bias + A[m] @ Bm (+ ReLU) for M rows: A [M, K] with element (m, k) at A[m * sm + k * sk]
 * (row-major: sm = K, sk = 1; a row-major [K, M] read transposed: sm = 1, sk = M), Bm [K, Ncols],
 * bias [Ncols] or NULL, out [M, Ncols] row-major; slab: 16 * K floats of scratch. A's elements are
 * read one at a time (broadcast), so a transposed A costs no copy. Columns in blocks of 32 take two
 * rows at a time (8 vector accumulators over the K loop; with AVX-512 four rows of two 16-lane
 * vectors). The columns after them (a narrow layer such as the 10 logits) go 8 at a time, the last
 * ones zero-padded to 8 in `slab`, four rows at a time (with AVX-512: 16 at a time, eight rows at a
 * time), so that a narrow layer also keeps several accumulations going instead of one scalar chain
 * per column. Every output is bias + the sum over k in order, on every path and in every variant.
 */
static void KERNEL(matmul_rows)(int M, int K, int Ncols, const float *restrict A, size_t sm, size_t sk,
                                const float *restrict Bm, const float *restrict bias, float *restrict out, int relu,
                                float *restrict slab) {
  const v8f zero = {0};
  const int wide = Ncols - Ncols % 32;
  int m = 0;
#if LOPT_VW == 16
  /* With 16-lane vectors a 32-column block is two vectors: four rows at a time keep 8 of them
   * accumulating, with 4 broadcasts and 2 loads per k (the 8-lane path below needs 2 and 4 for
   * half the work). Each output is the same bias + sum over k in order as on the other paths. */
  for (; m + 4 <= M && wide > 0; m += 4) {
    const float *a0 = A + (size_t)m * sm;
    float *o0 = out + (size_t)m * Ncols;
    for (int j = 0; j < wide; j += 32) {
      KERNEL(v16f) c[4][2];
      for (int q = 0; q < 2; q++) {
        const KERNEL(v16f) b0 = bias ? KERNEL(load16)(bias + j + 16 * q) : (KERNEL(v16f)){0};
        for (int r = 0; r < 4; r++) c[r][q] = b0;
      }
      for (int k = 0; k < K; k++) {
        const float *brow = Bm + (size_t)k * Ncols + j;
        const KERNEL(v16f) bv0 = KERNEL(load16)(brow), bv1 = KERNEL(load16)(brow + 16);
        for (int r = 0; r < 4; r++) {
          const float x = a0[r * sm + k * sk];
          c[r][0] += x * bv0;
          c[r][1] += x * bv1;
        }
      }
      for (int r = 0; r < 4; r++) {
        KERNEL(store16)(o0 + (size_t)r * Ncols + j, c[r][0]);
        KERNEL(store16)(o0 + (size_t)r * Ncols + j + 16, c[r][1]);
      }
    }
  }
#endif
  for (; m + 2 <= M && wide > 0; m += 2) {
    const float *a0 = A + (size_t)m * sm, *a1 = a0 + sm;
    float *o0 = out + (size_t)m * Ncols, *o1 = o0 + Ncols;
    for (int j = 0; j < wide; j += 32) {
      v8f c0[4], c1[4];
      for (int q = 0; q < 4; q++) c0[q] = c1[q] = bias ? KERNEL(load8)(bias + j + 8 * q) : zero;
      for (int k = 0; k < K; k++) {
        const float x0 = a0[k * sk], x1 = a1[k * sk];
        const float *brow = Bm + (size_t)k * Ncols + j;
        for (int q = 0; q < 4; q++) {
          const v8f bv = KERNEL(load8)(brow + 8 * q);
          c0[q] += x0 * bv;
          c1[q] += x1 * bv;
        }
      }
      for (int q = 0; q < 4; q++) {
        KERNEL(store8)(o0 + j + 8 * q, c0[q]);
        KERNEL(store8)(o1 + j + 8 * q, c1[q]);
      }
    }
  }
  for (; m < M && wide > 0; m++) { /* an odd M's last row */
    const float *a0 = A + (size_t)m * sm;
    for (int j = 0; j < wide; j += 8) {
      v8f c = bias ? KERNEL(load8)(bias + j) : zero;
      for (int k = 0; k < K; k++) c += a0[k * sk] * KERNEL(load8)(Bm + (size_t)k * Ncols + j);
      KERNEL(store8)(out + (size_t)m * Ncols + j, c);
    }
  }
#if LOPT_VW == 16
  /* With 16-lane vectors the narrow columns (the 10 logits) are one zero-padded 16-wide block,
   * eight rows at a time (eight accumulations in flight, as the FMA units need): half the
   * instructions of the 8-wide blocks below and twice the independent chains. */
  for (int j = wide; j < Ncols; j += 16) {
    const int w = Ncols - j < 16 ? Ncols - j : 16;
    float b16[16] = {0};
    for (int k = 0; k < K; k++) {
      for (int q = 0; q < w; q++) slab[(size_t)k * 16 + q] = Bm[(size_t)k * Ncols + j + q];
      for (int q = w; q < 16; q++) slab[(size_t)k * 16 + q] = 0.f;
    }
    if (bias)
      for (int q = 0; q < w; q++) b16[q] = bias[j + q];
    const KERNEL(v16f) b0 = KERNEL(load16)(b16);
    float o16[16];
    int r = 0;
    for (; r + 8 <= M; r += 8) {
      const float *a = A + (size_t)r * sm;
      KERNEL(v16f) c[8];
      for (int i = 0; i < 8; i++) c[i] = b0;
      for (int k = 0; k < K; k++) {
        const KERNEL(v16f) bv = KERNEL(load16)(slab + (size_t)k * 16);
        for (int i = 0; i < 8; i++) c[i] += a[i * sm + k * sk] * bv;
      }
      for (int i = 0; i < 8; i++) {
        KERNEL(store16)(o16, c[i]);
        for (int q = 0; q < w; q++) out[(size_t)(r + i) * Ncols + j + q] = o16[q];
      }
    }
    for (; r < M; r++) {
      const float *a = A + (size_t)r * sm;
      KERNEL(v16f) c = b0;
      for (int k = 0; k < K; k++) c += a[k * sk] * KERNEL(load16)(slab + (size_t)k * 16);
      KERNEL(store16)(o16, c);
      for (int q = 0; q < w; q++) out[(size_t)r * Ncols + j + q] = o16[q];
    }
  }
#else
  for (int j = wide; j < Ncols; j += 8) {
    const int w = Ncols - j < 8 ? Ncols - j : 8;
    float b8[8] = {0};
    for (int k = 0; k < K; k++) {
      for (int q = 0; q < w; q++) slab[(size_t)k * 8 + q] = Bm[(size_t)k * Ncols + j + q];
      for (int q = w; q < 8; q++) slab[(size_t)k * 8 + q] = 0.f;
    }
    if (bias)
      for (int q = 0; q < w; q++) b8[q] = bias[j + q];
    const v8f b0 = KERNEL(load8)(b8);
    float o8[8];
    int r = 0;
    for (; r + 4 <= M; r += 4) {
      const float *a = A + (size_t)r * sm;
      v8f c0 = b0, c1 = b0, c2 = b0, c3 = b0;
      for (int k = 0; k < K; k++) {
        const v8f bv = KERNEL(load8)(slab + (size_t)k * 8);
        c0 += a[k * sk] * bv;
        c1 += a[sm + k * sk] * bv;
        c2 += a[2 * sm + k * sk] * bv;
        c3 += a[3 * sm + k * sk] * bv;
      }
      const v8f c[4] = {c0, c1, c2, c3};
      for (int i = 0; i < 4; i++) {
        KERNEL(store8)(o8, c[i]);
        for (int q = 0; q < w; q++) out[(size_t)(r + i) * Ncols + j + q] = o8[q];
      }
    }
    for (; r < M; r++) {
      const float *a = A + (size_t)r * sm;
      v8f c = b0;
      for (int k = 0; k < K; k++) c += a[k * sk] * KERNEL(load8)(slab + (size_t)k * 8);
      KERNEL(store8)(o8, c);
      for (int q = 0; q < w; q++) out[(size_t)r * Ncols + j + q] = o8[q];
    }
  }
#endif
  if (relu)
    for (size_t i = 0; i < (size_t)M * Ncols; i++) out[i] = KERNEL(relu1)(out[i]);
}

/* dst [cols, rows] = src [rows, cols]^T */
static void KERNEL(transpose)(int rows, int cols, const float *restrict src, float *restrict dst) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

/*
 * One task: mean softmax cross-entropy of an MLP with ReLU hidden layers over B examples, and
 * (when gw is not NULL) its gradient. sizes: L + 1 layer widths; x [B, sizes[0]]; label [B];
 * w[i] [sizes[i], sizes[i+1]], b[i] [sizes[i+1]]; scratch: mlp_scratch_floats() floats.
 */
static float KERNEL(mlp_task)(int B, int L, const int32_t *sizes, const float *x, const int32_t *label,
                              const float *const *w, const float *const *b, float *const *gw, float *const *gb,
                              float *scratch) {
  const float *acts[MLP_MAX_LAYERS + 1];
  float *slab = scratch, *next = scratch + mlp_slab_floats(B, L, sizes);
  acts[0] = x;
  for (int i = 0; i < L; i++) {
    float *out = next;
    next += (size_t)B * sizes[i + 1];
    KERNEL(matmul_rows)(B, sizes[i], sizes[i + 1], acts[i], sizes[i], 1, w[i], b[i], out, i + 1 < L, slab);
    acts[i + 1] = out;
  }
  const int C = sizes[L];
  float *dz = (float *)acts[L]; /* the logits become d loss / d logits in place */
  double loss = 0.0;
  /* e: exp(z - max) of each row, in double: each exponential once, then divided by the row's sum
   * (the same float softmax as exp(z - max - log sum), up to double rounding). exp_d and log_d
   * (exp_log_kernel.h, ~1e-15 relative) in one flat loop over a block of rows, which vectorises,
   * where libm's exp and log were a call per value (a quarter of this kernel's time on the seed's
   * shapes). z - max <= 0; below -700 (e^-700 is 0 in float either way) it is clamped to keep
   * exp_d's scale a normal double; NaN compares false and stays NaN. */
  const int rowsPerBlock = C >= 1024 ? 1 : 1024 / C;
  double ez[(size_t)rowsPerBlock * C];
  float rowMax[rowsPerBlock];
  for (int r0 = 0; r0 < B; r0 += rowsPerBlock) {
    const int nr = B - r0 < rowsPerBlock ? B - r0 : rowsPerBlock;
    float *zb = dz + (size_t)r0 * C;
    for (int r = 0; r < nr; r++) {
      const float *z = zb + (size_t)r * C;
      float m = z[0];
      for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
      rowMax[r] = m;
      for (int c = 0; c < C; c++) ez[(size_t)r * C + c] = (double)(z[c] - m);
    }
    const size_t n = (size_t)nr * C;
    for (size_t e = 0; e < n; e++) ez[e] = KERNEL(exp_d)(ez[e] < -700.0 ? -700.0 : ez[e]);
    for (int r = 0; r < nr; r++) {
      float *z = zb + (size_t)r * C;
      const double *er = ez + (size_t)r * C;
      double s = 0.0;
      for (int c = 0; c < C; c++) s += er[c];
      const int y = label[r0 + r];
      /* s is in [1, C] unless z holds NaN or infinities: log_d takes positive finite values only */
      loss -= (double)(z[y] - rowMax[r]) - (s >= 1.0 && s < 0x1p1000 ? KERNEL(log_d)(s) : log(s));
      for (int c = 0; c < C; c++) z[c] = ((float)(er[c] / s) - (c == y ? 1.f : 0.f)) / (float)B;
    }
  }
  if (gw) {
    /* after the activations: W^T [widest, widest] and two [B, widest] buffers used in turn for
     * d loss / d input */
    const int maxW = mlp_max_width(L, sizes);
    float *wT = next;
    float *buf[2] = {wT + (size_t)maxW * maxW, wT + (size_t)maxW * maxW + (size_t)B * maxW};
    for (int i = L - 1; i >= 0; i--) {
      const int nIn = sizes[i], nOut = sizes[i + 1];
      KERNEL(matmul_rows)(nIn, B, nOut, acts[i], 1, nIn, dz, NULL, gw[i], 0, slab); /* gW = in^T dz (in read transposed) */
      for (int j = 0; j < nOut; j++) gb[i][j] = 0.f;
      for (int r = 0; r < B; r++)
        for (int j = 0; j < nOut; j++) gb[i][j] += dz[(size_t)r * nOut + j];
      if (i == 0) break;
      float *dIn = buf[i % 2];
      KERNEL(transpose)(nIn, nOut, w[i], wT);
      KERNEL(matmul_rows)(B, nOut, nIn, dz, nOut, 1, wT, NULL, dIn, 0, slab); /* dz W^T */
      const float *h = acts[i];
      for (size_t e = 0; e < (size_t)B * nIn; e++) dIn[e] = h[e] > 0.f ? dIn[e] : (h[e] != h[e] ? h[e] : 0.f); /* ReLU' */
      dz = dIn;
    }
  }
  return (float)(loss / B);
}
