/*
 * The whole-network ResNet kernel (resnet_net.h), compiled once per instruction set (see
 * ../../core/native/lopt_isa.h): every function is named KERNEL(name). The convolutions are
 * im2col + a register-blocked GEMM over NHWC maps; batch norm and the max-pool gradient are
 * resnet.c's bodies (the same float64 arithmetic as the host kernels).
 */

static inline v8f KERNEL(ld8)(const float *p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline void KERNEL(st8)(float *p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }

#ifndef NET_V8D
#define NET_V8D
typedef double v8d __attribute__((vector_size(64)));
#endif

/*
 * The float64 sums over positions of a map whose channels are a multiple of 8, in registers: up
 * to 64 channels (8 vectors of 8 lanes, two sums each) per pass over the positions. Per channel the
 * same sums in the same order as the plain loops (which GCC left scalar).
 */
#define NET_BN_WIDE(C) ((C) % 8 == 0)

/*
 * The input gradient of the 3x3 stride-2 SAME max pool of x [b, h, w, c] with output y: each
 * window's dy is added to dx at the first element (column, then row) equal to the maximum (the
 * rule of src/resnet_kernels.ts's JavaScript body; additions only, so every variant gives its values).
 */
static void KERNEL(maxpool_backward)(int b, int h, int w, int c, const float *restrict x, const float *restrict y, const float *restrict dy, float *restrict dx, int32_t *restrict found) {
  const int oh = (h + 1) / 2, ow = (w + 1) / 2, beforeH = pool_before(h), beforeW = pool_before(w);
  size_t cand[9];
  for (int bi = 0; bi < b; bi++)
    for (int i = 0; i < oh; i++) {
      for (int j = 0; j < ow; j++) {
        /* the window's elements in priority order: column, then row */
        const int nc = pool_window(bi, i, j, h, w, c, beforeH, beforeW, cand);
        const size_t k = (((size_t)bi * oh + i) * ow + j) * c;
        /* per channel the first candidate equal to the maximum takes dy (vectorised over channels:
         * `found` marks the channels already served) */
        for (int ch = 0; ch < c; ch++) found[ch] = 0;
        for (int t = 0; t < nc; t++) {
          const float *restrict xt = x + cand[t];
          float *restrict dxt = dx + cand[t];
          int ch = 0;
          for (; ch + 8 <= c; ch += 8) { /* 8 channels at a time, by masks */
            v8f xv, yv, dv, dxv;
            v8i f;
            memcpy(&xv, xt + ch, sizeof xv);
            memcpy(&yv, y + k + ch, sizeof yv);
            memcpy(&dv, dy + k + ch, sizeof dv);
            memcpy(&dxv, dxt + ch, sizeof dxv);
            memcpy(&f, found + ch, sizeof f);
            const v8i hit = (xv == yv) & ~f;
            dxv += (v8f)((v8i)dv & hit); /* + 0 where no hit: dx is never −0, so unchanged */
            f |= hit;
            memcpy(dxt + ch, &dxv, sizeof dxv);
            memcpy(found + ch, &f, sizeof f);
          }
          for (; ch < c; ch++)
            if (!found[ch] && xt[ch] == y[k + ch]) {
              dxt[ch] += dy[k + ch];
              found[ch] = -1;
            }
        }
      }
    }
}

/*
 * The whole-network kernel's batch norm: the statistics and the gradient's sums in float64 as
 * resnet_bn.h (and the host kernels), the per-element passes in float32 (rounding-level apart from
 * resnet_bn.h's float64 ones). Maps of fewer than 8 channels dividing 8 run as flat arrays with
 * lane j holding channel j mod C, so that they vectorise too.
 */

/* Per-channel values v [C] spread over 8 lanes (lane j: channel j mod C; C divides 8). */
static inline void KERNEL(lanes8)(int C, const float *v, float *out8) {
  for (int j = 0; j < 8; j++) out8[j] = v[j % C];
}

/* s1[c] = Σ x[:, c], s2[c] = Σ x[:, c]² over x [n / C, C], in float64. */
__attribute__((noinline)) static void KERNEL(bn_sums)(size_t n, int C, const float *restrict x, double *restrict s1, double *restrict s2) {
  for (int c = 0; c < C; c++) s1[c] = s2[c] = 0.0;
  if (C < 8 && 8 % C == 0) {
    double a1[8] = {0}, a2[8] = {0};
    size_t e = 0;
    for (; e + 8 <= n; e += 8)
      for (int j = 0; j < 8; j++) {
        const double v = x[e + j];
        a1[j] += v;
        a2[j] += v * v;
      }
    for (int j = 0; e + j < n; j++) {
      const double v = x[e + j];
      a1[j] += v;
      a2[j] += v * v;
    }
    for (int j = 0; j < 8; j++) {
      s1[j % C] += a1[j];
      s2[j % C] += a2[j];
    }
    return;
  }
  if (NET_BN_WIDE(C)) {
    for (int c0 = 0; c0 < C; c0 += 64) {
      const int nb = (C - c0 < 64 ? C - c0 : 64) / 8;
      v8d a1[8], a2[8];
      for (int u = 0; u < 8; u++) a1[u] = a2[u] = (v8d){0};
      for (size_t p = c0; p < n; p += C)
        for (int u = 0; u < nb; u++) {
          const v8d v = __builtin_convertvector(KERNEL(ld8)(x + p + 8 * u), v8d);
          a1[u] += v;
          a2[u] += v * v;
        }
      for (int u = 0; u < nb; u++)
        for (int j = 0; j < 8; j++) {
          s1[c0 + 8 * u + j] = a1[u][j];
          s2[c0 + 8 * u + j] = a2[u][j];
        }
    }
    return;
  }
  for (size_t p = 0; p < n; p += C)
    for (int c = 0; c < C; c++) {
      const double v = x[p + c];
      s1[c] += v;
      s2[c] += v * v;
    }
}

/* y = (x − m)·a + o per channel (float32), then max(·, 0) when relu (NaN stays). */
__attribute__((noinline)) static void KERNEL(bn_apply)(size_t n, int C, int relu, const float *restrict x, const float *restrict m, const float *restrict a,
                                                       const float *restrict o, float *restrict y) {
  if (C < 8 && 8 % C == 0) {
    float m8[8], a8[8], o8[8];
    KERNEL(lanes8)(C, m, m8);
    KERNEL(lanes8)(C, a, a8);
    KERNEL(lanes8)(C, o, o8);
    size_t e = 0;
    for (; e + 8 <= n; e += 8)
      for (int j = 0; j < 8; j++) {
        const float v = (x[e + j] - m8[j]) * a8[j] + o8[j];
        y[e + j] = relu && v < 0 ? 0.f : v;
      }
    for (int j = 0; e + j < n; j++) {
      const float v = (x[e + j] - m8[j]) * a8[j] + o8[j];
      y[e + j] = relu && v < 0 ? 0.f : v;
    }
    return;
  }
  for (size_t p = 0; p < n; p += C)
    if (relu)
      for (int c = 0; c < C; c++) {
        const float v = (x[p + c] - m[c]) * a[c] + o[c];
        y[p + c] = v < 0 ? 0.f : v;
      }
    else
      for (int c = 0; c < C; c++) y[p + c] = (x[p + c] - m[c]) * a[c] + o[c];
}

/* sg[c] = Σ g, sgx[c] = Σ g·(x − mean) over x [n / C, C] in float64, g = dy (where y > 0 when relu, else 0). */
__attribute__((noinline)) static void KERNEL(bn_grad_sums)(size_t n, int C, int relu, const float *restrict dy, const float *restrict x, const float *restrict y,
                                                           const float *restrict mean, double *restrict sg, double *restrict sgx) {
  for (int c = 0; c < C; c++) sg[c] = sgx[c] = 0.0;
  if (C < 8 && 8 % C == 0) {
    /* 8 lanes of float64 sums in registers, written out as vectors (the array form ran at ~6 ns an
     * element, 10x the wide-map path); per lane the same sums in the same order */
    v8d a1 = {0}, a2 = {0}, m8;
    for (int j = 0; j < 8; j++) m8[j] = mean[j % C];
    size_t e = 0;
    for (; e + 8 <= n; e += 8) {
      const v8f dv = KERNEL(ld8)(dy + e), yv = KERNEL(ld8)(y + e);
      const v8f gv = relu ? (v8f)((v8i)dv & (yv > 0)) : dv; /* 0 where y ≤ 0: +0 adds nothing */
      const v8d g = __builtin_convertvector(gv, v8d), xd = __builtin_convertvector(KERNEL(ld8)(x + e), v8d);
      a1 += g;
      a2 += g * (xd - m8);
    }
    double t1[8], t2[8];
    __builtin_memcpy(t1, &a1, sizeof t1);
    __builtin_memcpy(t2, &a2, sizeof t2);
    for (int j = 0; e + j < n; j++) {
      const double g = dy[e + j], gx = g * ((double)x[e + j] - m8[j]), yv = y[e + j];
      const int on = !relu || yv > 0;
      t1[j] += on ? g : 0.0;
      t2[j] += on ? gx : 0.0;
    }
    for (int j = 0; j < 8; j++) {
      sg[j % C] += t1[j];
      sgx[j % C] += t2[j];
    }
    return;
  }
  if (NET_BN_WIDE(C)) {
    for (int c0 = 0; c0 < C; c0 += 64) {
      const int nb = (C - c0 < 64 ? C - c0 : 64) / 8;
      v8d a1[8], a2[8], m[8];
      for (int u = 0; u < 8; u++) {
        a1[u] = a2[u] = (v8d){0};
        for (int j = 0; j < 8; j++) m[u][j] = u < nb ? mean[c0 + 8 * u + j] : 0.0;
      }
      for (size_t p = c0; p < n; p += C)
        for (int u = 0; u < nb; u++) {
          const v8f dv = KERNEL(ld8)(dy + p + 8 * u);
          const v8f gv = relu ? (v8f)((v8i)dv & (KERNEL(ld8)(y + p + 8 * u) > 0)) : dv; /* +0 where y ≤ 0 */
          const v8d g = __builtin_convertvector(gv, v8d);
          a1[u] += g;
          a2[u] += g * (__builtin_convertvector(KERNEL(ld8)(x + p + 8 * u), v8d) - m[u]);
        }
      for (int u = 0; u < nb; u++)
        for (int j = 0; j < 8; j++) {
          sg[c0 + 8 * u + j] = a1[u][j];
          sgx[c0 + 8 * u + j] = a2[u][j];
        }
    }
    return;
  }
  for (size_t p = 0; p < n; p += C)
    if (relu)
      for (int c = 0; c < C; c++) {
        const double g = dy[p + c], gx = g * ((double)x[p + c] - (double)mean[c]), yv = y[p + c];
        sg[c] += yv > 0 ? g : 0.0;
        sgx[c] += yv > 0 ? gx : 0.0;
      }
    else
      for (int c = 0; c < C; c++) {
        const double g = dy[p + c];
        sg[c] += g;
        sgx[c] += g * ((double)x[p + c] - (double)mean[c]);
      }
}

/* dx += a·(g − mg − (x − mean)·k) per channel (float32), g = dy (where y > 0 when relu, else 0). */
__attribute__((noinline)) static void KERNEL(bn_grad_apply)(size_t n, int C, int relu, const float *restrict dy, const float *restrict x, const float *restrict y,
                                                            const float *restrict mean, const float *restrict a, const float *restrict mg,
                                                            const float *restrict k, float *restrict dx) {
  if (C < 8 && 8 % C == 0) {
    float m8[8], a8[8], g8[8], k8[8];
    KERNEL(lanes8)(C, mean, m8);
    KERNEL(lanes8)(C, a, a8);
    KERNEL(lanes8)(C, mg, g8);
    KERNEL(lanes8)(C, k, k8);
    const v8f av = KERNEL(ld8)(a8), gm = KERNEL(ld8)(g8), mv = KERNEL(ld8)(m8), kv = KERNEL(ld8)(k8);
    size_t e = 0;
    for (; e + 8 <= n; e += 8) {
      const v8f dv = KERNEL(ld8)(dy + e);
      const v8f g = relu ? (v8f)((v8i)dv & (KERNEL(ld8)(y + e) > 0)) : dv;
      KERNEL(st8)(dx + e, KERNEL(ld8)(dx + e) + av * (g - gm - (KERNEL(ld8)(x + e) - mv) * kv));
    }
    for (int j = 0; e + j < n; j++) {
      const float g = !relu || y[e + j] > 0 ? dy[e + j] : 0.f;
      dx[e + j] += a8[j] * (g - g8[j] - (x[e + j] - m8[j]) * k8[j]);
    }
    return;
  }
  for (size_t p = 0; p < n; p += C)
    for (int c = 0; c < C; c++) {
      const float g = !relu || y[p + c] > 0 ? dy[p + c] : 0.f;
      dx[p + c] += a[c] * (g - mg[c] - (x[p + c] - mean[c]) * k[c]);
    }
}

/*
 * Training-mode batch norm (+ relu) of x [n / C, C]: y, the batch mean and variance (as
 * resnet_bn.h's, float64 statistics) and r = rsqrt(variance + eps); f: 3C floats of scratch, d: 2C doubles.
 */
static void KERNEL(net_bn_forward)(size_t n, int C, int relu, const float *x, const float *scale, const float *offset, float *y, float *mean, float *variance,
                                   float *r, float *f, double *d) {
  const size_t m = n / C;
  double *s1 = d, *s2 = d + C;
  KERNEL(bn_sums)(n, C, x, s1, s2);
  float *a = f;
  for (int c = 0; c < C; c++) {
    const double mean64 = s1[c] / (double)m;
    mean[c] = (float)mean64;
    variance[c] = (float)(s2[c] / (double)m - mean64 * mean64);
    r[c] = (float)(1.0 / sqrt((double)(float)((double)variance[c] + (double)1e-5f)));
    a[c] = (float)((double)r[c] * (double)scale[c]);
  }
  KERNEL(bn_apply)(n, C, relu, x, mean, a, offset, y);
}

/* Its backward: dx += …, d scale and d offset written (see bn_backward); f: 3C floats of scratch, d: 2C doubles. */
static void KERNEL(net_bn_backward)(size_t n, int C, int relu, const float *dy, const float *x, const float *y, const float *mean, const float *r,
                                    const float *scale, float *dx, float *dScale, float *dOffset, float *f, double *d) {
  const size_t m = n / C;
  double *sg = d, *sgx = d + C;
  KERNEL(bn_grad_sums)(n, C, relu, dy, x, y, mean, sg, sgx);
  float *a = f, *mg = f + C, *k = f + 2 * C;
  for (int c = 0; c < C; c++) {
    const double sgxh = sgx[c] * (double)r[c];
    dOffset[c] = (float)sg[c];
    dScale[c] = (float)sgxh;
    a[c] = (float)((double)scale[c] * (double)r[c]);
    mg[c] = (float)(sg[c] / (double)m);
    k[c] = (float)(((double)r[c] * sgxh) / (double)m);
  }
  KERNEL(bn_grad_apply)(n, C, relu, dy, x, y, mean, a, mg, k, dx);
}

/*
 * R rows x 8·V columns of C (+)= over k in [k0, k1) of A(m, k) · Bm[k, :]: R·V vector accumulators
 * (R and V are constants where it is inlined, so they stay in registers).
 */
static inline __attribute__((always_inline)) void KERNEL(tile)(const int R, const int V, int k0, int k1, const float *restrict a, size_t sm, size_t sk,
                                                                 const float *restrict b, size_t ldb, float *restrict c, size_t ldc, int add) {
  v8f acc[12][2];
  const v8f zero = {0};
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) acc[i][v] = add ? KERNEL(ld8)(c + (size_t)i * ldc + 8 * v) : zero;
  for (int k = k0; k < k1; k++) {
    const float *brow = b + (size_t)k * ldb;
    v8f bv[2];
    for (int v = 0; v < V; v++) bv[v] = KERNEL(ld8)(brow + 8 * v);
    const float *ak = a + (size_t)k * sk;
    for (int i = 0; i < R; i++) {
      const float x = ak[(size_t)i * sm];
      for (int v = 0; v < V; v++) acc[i][v] += x * bv[v];
    }
  }
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) KERNEL(st8)(c + (size_t)i * ldc + 8 * v, acc[i][v]);
}

/*
 * gemm's last w < 8 columns over k in [k0, k1) (C (+)= when add): with A read transposed (sm = 1,
 * A(m..m+7, k) contiguous) 8 rows at a time as vectors; with A row-major and a K block of 16 or
 * more, each output as a dot product of A's row and a copy of B's column (8 partial sums, so in
 * another order than the other paths: float rounding apart); else one output at a time.
 */
static void KERNEL(gemm_narrow)(int M, int w, int k0, int k1, const float *restrict A, size_t sm, size_t sk, const float *restrict Bm, size_t ldb, float *restrict C,
                                size_t ldc, int add) {
  const v8f zero = {0};
  int m = 0;
  if (sm == 1) {
    for (; m + 8 <= M; m += 8) {
      v8f acc[8];
      for (int q = 0; q < w; q++) {
        float t[8];
        for (int i = 0; i < 8; i++) t[i] = add ? C[(size_t)(m + i) * ldc + q] : 0.f;
        acc[q] = KERNEL(ld8)(t);
      }
      for (int k = k0; k < k1; k++) {
        const v8f av = KERNEL(ld8)(A + m + (size_t)k * sk);
        const float *brow = Bm + (size_t)k * ldb;
        for (int q = 0; q < w; q++) acc[q] += av * brow[q];
      }
      for (int q = 0; q < w; q++) {
        float t[8];
        KERNEL(st8)(t, acc[q]);
        for (int i = 0; i < 8; i++) C[(size_t)(m + i) * ldc + q] = t[i];
      }
    }
  } else if (sk == 1 && k1 - k0 >= 16) {
    float bt[8][256]; /* B's columns of this K block, contiguous */
    for (int q = 0; q < w; q++)
      for (int k = k0; k < k1; k++) bt[q][k - k0] = Bm[(size_t)k * ldb + q];
    const int kn = k1 - k0, k8 = kn & ~7;
    for (; m < M; m++) {
      const float *a = A + (size_t)m * sm + k0;
      for (int q = 0; q < w; q++) {
        v8f acc = zero;
        for (int k = 0; k < k8; k += 8) acc += KERNEL(ld8)(a + k) * KERNEL(ld8)(bt[q] + k);
        float t[8];
        KERNEL(st8)(t, acc);
        float sum = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        for (int k = k8; k < kn; k++) sum += a[k] * bt[q][k];
        float *c = C + (size_t)m * ldc + q;
        *c = add ? *c + sum : sum;
      }
    }
  }
  for (; m < M; m++) {
    const float *a = A + (size_t)m * sm;
    for (int q = 0; q < w; q++) {
      float sum = add ? C[(size_t)m * ldc + q] : 0.f;
      for (int k = k0; k < k1; k++) sum += a[(size_t)k * sk] * Bm[(size_t)k * ldb + q];
      C[(size_t)m * ldc + q] = sum;
    }
  }
}

/*
 * C[m, n] (+= when acc) Σ_k A(m, k) · Bm[k, n] for m < M, n < N, with A(m, k) = A[m·sm + k·sk]
 * (row-major [M, K]: sm = K, sk = 1; a row-major [K, M] read transposed: sm = 1, sk = M), Bm
 * row-major with row stride ldb, C with row stride ldc. Tiles of 6 rows x 16 columns (12 vector
 * accumulators; the last rows 4, 2, 1 at a time; with AVX-512's 32 registers 12 rows, and the last
 * ones as one tile), then 8 columns, then the last N % 8 columns
 * (gemm_narrow); K in blocks of 256 so that a tile's panel of Bm stays in cache. Every output is
 * the sum over k in order (a float accumulator, stored between K blocks).
 */
static void KERNEL(gemm)(int M, int N, int K, const float *restrict A, size_t sm, size_t sk, const float *restrict Bm, size_t ldb, float *restrict C, size_t ldc,
                         int acc) {
  if (K == 0) {
    if (!acc)
      for (int m = 0; m < M; m++) memset(C + (size_t)m * ldc, 0, sizeof(float) * N);
    return;
  }
  for (int k0 = 0; k0 < K; k0 += 256) {
    const int k1 = K - k0 < 256 ? K : k0 + 256;
    const int add = acc || k0 > 0;
    int n0 = 0;
#define GEMM_TILE(R, V) KERNEL(tile)(R, V, k0, k1, A + (size_t)m * sm, sm, sk, Bm + n0, ldb, C + (size_t)m * ldc + n0, ldc, add)
    for (; n0 + 16 <= N; n0 += 16) {
      int m = 0;
#if LOPT_VW == 16
      /* 32 vector registers: 12 rows (24 accumulators), and the last 1–11 rows as one tile */
      for (; m + 12 <= M; m += 12) GEMM_TILE(12, 2);
      switch (M - m) {
        case 11: GEMM_TILE(11, 2); break;
        case 10: GEMM_TILE(10, 2); break;
        case 9: GEMM_TILE(9, 2); break;
        case 8: GEMM_TILE(8, 2); break;
        case 7: GEMM_TILE(7, 2); break;
        case 6: GEMM_TILE(6, 2); break;
        case 5: GEMM_TILE(5, 2); break;
        case 4: GEMM_TILE(4, 2); break;
        case 3: GEMM_TILE(3, 2); break;
        case 2: GEMM_TILE(2, 2); break;
        case 1: GEMM_TILE(1, 2); break;
      }
#else
      for (; m + 6 <= M; m += 6) GEMM_TILE(6, 2);
      if (M - m >= 4) GEMM_TILE(4, 2), m += 4;
      if (M - m >= 2) GEMM_TILE(2, 2), m += 2;
      if (M - m >= 1) GEMM_TILE(1, 2), m += 1;
#endif
    }
    for (; n0 + 8 <= N; n0 += 8) {
      int m = 0;
      for (; m + 6 <= M; m += 6) GEMM_TILE(6, 1);
      if (M - m >= 4) GEMM_TILE(4, 1), m += 4;
      if (M - m >= 2) GEMM_TILE(2, 1), m += 2;
      if (M - m >= 1) GEMM_TILE(1, 1), m += 1;
    }
#undef GEMM_TILE
    if (n0 < N) KERNEL(gemm_narrow)(M, N - n0, k0, k1, A, sm, sk, Bm + n0, ldb, C + n0, ldc, add);
  }
}

/* cols [B·Ho·Wo, k·k·C] (row (b, y, x), column (i, j, c)) = x[b, y·s + i − top, x·s + j − left, c], 0 outside. */
static void KERNEL(im2col)(const ConvGeom *g, const float *restrict x, float *restrict cols) {
  const int k = g->k, C = g->C, kc = k * C;
  const size_t K = (size_t)k * kc;
  float *row = cols;
  if (g->pad && k > 1) {
    /* image by image into a zero-padded copy, then each patch row is k runs of k·C values without
     * bounds tests (the per-element tests cost more than the copies for 1- to 4-channel maps) */
    const int Hp = (g->Ho - 1) * g->s + k, Wp = (g->Wo - 1) * g->s + k;
    float *restrict pad = g->pad;
    for (int b = 0; b < g->B; b++) {
      memset(pad, 0, sizeof(float) * Hp * Wp * C);
      const int x0 = g->left, x1 = g->W + g->left < Wp ? g->W + g->left : Wp; /* padded columns the map fills */
      for (int iy = 0; iy < g->H; iy++) {
        const int py = iy + g->top;
        if (py >= Hp) break;
        memcpy(pad + ((size_t)py * Wp + x0) * C, x + (((size_t)b * g->H + iy) * g->W) * C, sizeof(float) * (x1 - x0) * C);
      }
      for (int oy = 0; oy < g->Ho; oy++)
        for (int ox = 0; ox < g->Wo; ox++, row += K) {
          const float *src = pad + ((size_t)oy * g->s * Wp + (size_t)ox * g->s) * C;
          if (kc == 3)
            for (int i = 0; i < k; i++) {
              const float *sp = src + (size_t)i * Wp * C;
              row[3 * i] = sp[0];
              row[3 * i + 1] = sp[1];
              row[3 * i + 2] = sp[2];
            }
          else
            for (int i = 0; i < k; i++) {
              const float *sp = src + (size_t)i * Wp * C;
              for (int q = 0; q < kc; q++) row[(size_t)i * kc + q] = sp[q];
            }
        }
    }
    return;
  }
  for (int b = 0; b < g->B; b++)
    for (int oy = 0; oy < g->Ho; oy++)
      for (int ox = 0; ox < g->Wo; ox++, row += K) {
        const int ix0 = ox * g->s - g->left;
        const int full = ix0 >= 0 && ix0 + k <= g->W; /* the window's columns all inside */
        for (int i = 0; i < k; i++) {
          const int iy = oy * g->s + i - g->top;
          float *restrict dst = row + (size_t)i * kc;
          if (iy < 0 || iy >= g->H) {
            for (int q = 0; q < kc; q++) dst[q] = 0.f;
            continue;
          }
          const float *src = x + ((size_t)b * g->H + iy) * g->W * C;
          if (full) {
            /* k·C contiguous values of the input row (NHWC) */
            const float *sp = src + (size_t)ix0 * C;
            if (kc >= 32) memcpy(dst, sp, sizeof(float) * kc);
            else
              for (int q = 0; q < kc; q++) dst[q] = sp[q];
            continue;
          }
          for (int j = 0; j < k; j++) {
            const int ix = ix0 + j;
            const int inside = ix >= 0 && ix < g->W;
            const float *sp = inside ? src + (size_t)ix * C : src;
            for (int c = 0; c < C; c++) dst[j * C + c] = inside ? sp[c] : 0.f;
          }
        }
      }
}

/* dx[b, y·s + i − top, x·s + j − left, :] += cols[(b, y, x), (i, j, :)] (outside: dropped). */
static void KERNEL(col2im_add)(const ConvGeom *g, const float *restrict cols, float *restrict dx) {
  const size_t K = (size_t)g->k * g->k * g->C;
  const float *row = cols;
  for (int b = 0; b < g->B; b++)
    for (int oy = 0; oy < g->Ho; oy++)
      for (int ox = 0; ox < g->Wo; ox++, row += K)
        for (int i = 0; i < g->k; i++) {
          const int iy = oy * g->s + i - g->top;
          if (iy < 0 || iy >= g->H) continue;
          for (int j = 0; j < g->k; j++) {
            const int ix = ox * g->s + j - g->left;
            if (ix < 0 || ix >= g->W) continue;
            float *restrict d = dx + (((size_t)b * g->H + iy) * g->W + ix) * g->C;
            const float *src = row + ((size_t)i * g->k + j) * g->C;
            for (int c = 0; c < g->C; c++) d[c] += src[c];
          }
        }
}

/* dst [cols, rows] = src [rows, cols]^T */
static void KERNEL(transpose)(int rows, int cols, const float *restrict src, float *restrict dst) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

/* out [B·Ho·Wo, Co] = conv(x, w), w [k, k, C, Co] (HWIO); cols: room for the patches (unused by a 1x1 stride-1 conv). */
static void KERNEL(conv_forward)(const ConvGeom *g, const float *x, const float *w, float *out, float *cols) {
  const int M = g->B * g->Ho * g->Wo, K = g->k * g->k * g->C;
  const float *a = x;
  if (!(g->k == 1 && g->s == 1)) {
    KERNEL(im2col)(g, x, cols);
    a = cols;
  }
  KERNEL(gemm)(M, g->Co, K, a, (size_t)K, 1, w, (size_t)g->Co, out, (size_t)g->Co, 0);
}

/*
 * The convolution's backward: dw [k·k·C, Co] += patchesᵀ · dy, and (dx not NULL) dx += the
 * transposed convolution of dy; cols: the patches (filled here unless `haveCols`), dcols, wt: scratch.
 */
static void KERNEL(conv_backward)(const ConvGeom *g, const float *x, const float *w, const float *dy, float *dw, float *dx, float *cols, int haveCols, float *dcols,
                                  float *wt) {
  const int M = g->B * g->Ho * g->Wo, K = g->k * g->k * g->C;
  const int direct = g->k == 1 && g->s == 1;
  const float *a = x;
  if (!direct) {
    if (!haveCols) KERNEL(im2col)(g, x, cols);
    a = cols;
  }
  KERNEL(gemm)(K, g->Co, M, a, 1, (size_t)K, dy, (size_t)g->Co, dw, (size_t)g->Co, 1);
  if (!dx) return;
  KERNEL(transpose)(K, g->Co, w, wt);
  if (direct) {
    KERNEL(gemm)(M, K, g->Co, dy, (size_t)g->Co, 1, wt, (size_t)K, dx, (size_t)K, 1);
  } else {
    KERNEL(gemm)(M, K, g->Co, dy, (size_t)g->Co, 1, wt, (size_t)K, dcols, (size_t)K, 0);
    KERNEL(col2im_add)(g, dcols, dx);
  }
}

/*
 * 3x3 stride-2 SAME max pool of x [B, H, W, C]: y = the maximum over the window's elements inside
 * the map (NaN wins, as tf's), and arg = which of them the gradient goes to: the first, in the order
 * of the max-pool gradient rule (column, then row; see maxpool_backward), equal to the maximum
 * (a scan keeping the first of equal values), −1 where the maximum is NaN (no gradient).
 */
__attribute__((noinline)) static void KERNEL(maxpool_forward)(int B, int H, int W, int C, const float *restrict x, float *restrict y, int32_t *restrict arg) {
  const int oh = (H + 1) / 2, ow = (W + 1) / 2, bh = pool_before(H), bw = pool_before(W);
  size_t cand[9];
  for (int b = 0; b < B; b++)
    for (int i = 0; i < oh; i++) {
      for (int j = 0; j < ow; j++) {
        const int nc = pool_window(b, i, j, H, W, C, bh, bw, cand);
        const size_t k = (((size_t)b * oh + i) * ow + j) * C;
        float *restrict out = y + k;
        int32_t *restrict at = arg + k;
        int ch = 0;
        /* 32 channels at a time: four independent chains of compares (one chain waits on each
         * compare and select before the next candidate) */
        for (; ch + 32 <= C; ch += 32) {
          v8f o0 = KERNEL(ld8)(x + cand[0] + ch), o1 = KERNEL(ld8)(x + cand[0] + ch + 8), o2 = KERNEL(ld8)(x + cand[0] + ch + 16),
              o3 = KERNEL(ld8)(x + cand[0] + ch + 24);
          v8i a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
          for (int t = 1; t < nc; t++) {
            const v8i tv = {t, t, t, t, t, t, t, t};
            const float *xt = x + cand[t] + ch;
#define NET_POOL_STEP(o, a, off)                                \
  {                                                             \
    const v8f v = KERNEL(ld8)(xt + (off));                      \
    const v8i take = v > o, pick = take | (v != v);             \
    o = (v8f)(((v8i)v & pick) | ((v8i)o & ~pick));              \
    a = (a & ~take) | (tv & take);                              \
  }
            NET_POOL_STEP(o0, a0, 0)
            NET_POOL_STEP(o1, a1, 8)
            NET_POOL_STEP(o2, a2, 16)
            NET_POOL_STEP(o3, a3, 24)
#undef NET_POOL_STEP
          }
          a0 |= o0 != o0;
          a1 |= o1 != o1;
          a2 |= o2 != o2;
          a3 |= o3 != o3;
          KERNEL(st8)(out + ch, o0);
          KERNEL(st8)(out + ch + 8, o1);
          KERNEL(st8)(out + ch + 16, o2);
          KERNEL(st8)(out + ch + 24, o3);
          __builtin_memcpy(at + ch, &a0, sizeof a0);
          __builtin_memcpy(at + ch + 8, &a1, sizeof a1);
          __builtin_memcpy(at + ch + 16, &a2, sizeof a2);
          __builtin_memcpy(at + ch + 24, &a3, sizeof a3);
        }
        /* 8 channels at a time in registers, by masks (written out: as a plain loop GCC left it
         * scalar, with a branch per compare, ~60% of the whole kernel's time) */
        for (; ch + 8 <= C; ch += 8) {
          v8f o = KERNEL(ld8)(x + cand[0] + ch);
          v8i a = {0};
          for (int t = 1; t < nc; t++) {
            const v8f v = KERNEL(ld8)(x + cand[t] + ch);
            const v8i take = v > o, pick = take | (v != v);
            o = (v8f)(((v8i)v & pick) | ((v8i)o & ~pick));
            a = (a & ~take) | ((v8i){t, t, t, t, t, t, t, t} & take);
          }
          a |= o != o; /* −1 where the maximum is NaN */
          KERNEL(st8)(out + ch, o);
          __builtin_memcpy(at + ch, &a, sizeof a);
        }
        for (; ch < C; ch++) {
          float o = x[cand[0] + ch];
          int32_t a = 0;
          for (int t = 1; t < nc; t++) {
            const float v = x[cand[t] + ch];
            const int take = v > o;
            o = take || v != v ? v : o;
            a = take ? t : a;
          }
          out[ch] = o;
          at[ch] = o != o ? -1 : a;
        }
      }
    }
}

/* The max pool's input gradient from maxpool_forward's arg: dx[the chosen element] += dy, window by window. */
__attribute__((noinline)) static void KERNEL(maxpool_backward_arg)(int B, int H, int W, int C, const int32_t *restrict arg, const float *restrict dy, float *restrict dx) {
  const int oh = (H + 1) / 2, ow = (W + 1) / 2, bh = pool_before(H), bw = pool_before(W);
  size_t cand[9];
  for (int b = 0; b < B; b++)
    for (int i = 0; i < oh; i++) {
      for (int j = 0; j < ow; j++) {
        const int nc = pool_window(b, i, j, H, W, C, bh, bw, cand);
        const size_t k = (((size_t)b * oh + i) * ow + j) * C;
        /* candidate by candidate, vectorised over the channels (+0 where not chosen: dx is never −0) */
        for (int t = 0; t < nc; t++) {
          float *restrict d = dx + cand[t];
          for (int ch = 0; ch < C; ch++) d[ch] += arg[k + ch] == t ? dy[k + ch] : 0.f;
        }
      }
    }
}

/* One task of the network (resnet_net.h's plan): forward, loss and (grads not NULL) backward. */
static float KERNEL(net_task)(const NetPlan *P, int B, const float *image, const int32_t *label, const float *const *params, float *const *grads,
                              float *const *statMean, float *const *statVar, NetScratch *S) {
  float **act = S->act, **dact = S->dact;
  act[0] = (float *)image;
  int bnIndex = 0, convIndex = 0;
  float loss = 0.f;
  for (int o = 0; o < P->numOps; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    switch (op[0]) {
      case NET_CONV: {
        ConvGeom g;
        net_conv_geom(P, B, op, &g);
        g.pad = S->pad;
        float *kept = S->convCols[convIndex++];
        KERNEL(conv_forward)(&g, act[op[1]], params[op[3]], act[op[2]], kept ? kept : S->cols);
        break;
      }
      case NET_BN: {
        const int in = op[1], out = op[2], c = P->shapes[3 * in + 2];
        KERNEL(net_bn_forward)(net_elems(P, B, in), c, op[5], act[in], params[op[3]], params[op[4]], act[out], statMean[op[6]], statVar[op[6]], S->r[bnIndex++],
                               S->bnf, S->dbl);
        break;
      }
      case NET_MAXPOOL: {
        const int in = op[1], out = op[2], H = P->shapes[3 * in], W = P->shapes[3 * in + 1], c = P->shapes[3 * in + 2];
        KERNEL(maxpool_forward)(B, H, W, c, act[in], act[out], S->poolArg[out]);
        break;
      }
      case NET_ADD: {
        const float *x = act[op[1]], *y = act[op[2]];
        float *z = act[op[3]];
        for (size_t e = 0, n = net_elems(P, B, op[3]); e < n; e++) z[e] = x[e] + y[e];
        break;
      }
      case NET_RELU: {
        const float *x = act[op[1]];
        float *y = act[op[2]];
        for (size_t e = 0, n = net_elems(P, B, op[2]); e < n; e++) y[e] = x[e] > 0.f || x[e] != x[e] ? x[e] : 0.f;
        break;
      }
      case NET_HEAD:
        loss = net_head_forward(P, B, op, act[op[1]], params[op[2]], params[op[3]], label, S);
        break;
    }
  }
  if (!grads) return loss;
  for (int i = 1; i < P->numBuffers; i++) memset(dact[i], 0, sizeof(float) * net_elems(P, B, i));
  for (int i = 0; i < P->numParams; i++) memset(grads[i], 0, sizeof(float) * P->paramSizes[i]);
  for (int o = P->numOps - 1; o >= 0; o--) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    switch (op[0]) {
      case NET_CONV: {
        ConvGeom g;
        net_conv_geom(P, B, op, &g);
        g.pad = S->pad;
        float *kept = S->convCols[--convIndex];
        KERNEL(conv_backward)(&g, act[op[1]], params[op[3]], dact[op[2]], grads[op[3]], op[1] == 0 ? NULL : dact[op[1]], kept ? kept : S->cols, kept != NULL,
                              S->dcols, S->wt);
        break;
      }
      case NET_BN: {
        const int in = op[1], out = op[2], c = P->shapes[3 * in + 2];
        KERNEL(net_bn_backward)(net_elems(P, B, in), c, op[5], dact[out], act[in], act[out], statMean[op[6]], S->r[--bnIndex], params[op[3]], dact[in],
                                grads[op[3]], grads[op[4]], S->bnf, S->dbl);
        break;
      }
      case NET_MAXPOOL: {
        const int in = op[1], out = op[2], H = P->shapes[3 * in], W = P->shapes[3 * in + 1], c = P->shapes[3 * in + 2];
        KERNEL(maxpool_backward_arg)(B, H, W, c, S->poolArg[out], dact[out], dact[in]);
        break;
      }
      case NET_ADD: {
        const float *dz = dact[op[3]];
        float *dx = dact[op[1]], *dy = dact[op[2]];
        for (size_t e = 0, n = net_elems(P, B, op[3]); e < n; e++) {
          dx[e] += dz[e];
          dy[e] += dz[e];
        }
        break;
      }
      case NET_RELU: {
        const float *x = act[op[1]], *dy = dact[op[2]];
        float *dx = dact[op[1]];
        for (size_t e = 0, n = net_elems(P, B, op[2]); e < n; e++)
          if (x[e] > 0.f) dx[e] += dy[e];
        break;
      }
      case NET_HEAD:
        net_head_backward(P, B, op, act[op[1]], params[op[2]], dact[op[1]], grads[op[2]], grads[op[3]], S);
        break;
    }
  }
  return loss;
}
