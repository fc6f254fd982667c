/*
 * The MLP classifier kernel, compiled once per instruction set (see ../../core/native/lopt_isa.h):
 * every function is named KERNEL(name).
 */

static inline v8f KERNEL(load8)(const float *p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline void KERNEL(store8)(float *p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }

/* max(v, 0) that keeps NaN (as tf.relu and jax.nn.relu do). */
static inline float KERNEL(relu1)(float v) { return v > 0.f || v != v ? v : 0.f; }

/*
 * out[m] = bias + A[m] @ Bm (+ ReLU) for M rows: A [M, K] with element (m, k) at A[m * sm + k * sk]
 * (row-major: sm = K, sk = 1; a row-major [K, M] read transposed: sm = 1, sk = M), Bm [K, Ncols],
 * bias [Ncols] or NULL, out [M, Ncols] row-major. Two rows and 32 columns at a time stay in vector
 * registers over the K loop; A's elements are read one at a time (broadcast), so a transposed A
 * costs no copy.
 */
static void KERNEL(matmul_rows)(int M, int K, int Ncols, const float *restrict A, size_t sm, size_t sk,
                                const float *restrict Bm, const float *restrict bias, float *restrict out, int relu) {
  const v8f zero = {0};
  int m = 0;
  for (; m + 2 <= M; m += 2) {
    const float *a0 = A + (size_t)m * sm, *a1 = a0 + sm;
    float *o0 = out + (size_t)m * Ncols, *o1 = o0 + Ncols;
    int j = 0;
    for (; j + 32 <= Ncols; j += 32) {
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
    for (; j + 8 <= Ncols; j += 8) {
      v8f c0 = bias ? KERNEL(load8)(bias + j) : zero, c1 = c0;
      for (int k = 0; k < K; k++) {
        const v8f bv = KERNEL(load8)(Bm + (size_t)k * Ncols + j);
        c0 += a0[k * sk] * bv;
        c1 += a1[k * sk] * bv;
      }
      KERNEL(store8)(o0 + j, c0);
      KERNEL(store8)(o1 + j, c1);
    }
    for (; j < Ncols; j++) {
      float c0 = bias ? bias[j] : 0.f, c1 = c0;
      for (int k = 0; k < K; k++) {
        c0 += a0[k * sk] * Bm[(size_t)k * Ncols + j];
        c1 += a1[k * sk] * Bm[(size_t)k * Ncols + j];
      }
      o0[j] = c0;
      o1[j] = c1;
    }
  }
  for (; m < M; m++) {
    const float *a0 = A + (size_t)m * sm;
    float *o0 = out + (size_t)m * Ncols;
    for (int j = 0; j < Ncols; j++) {
      float c = bias ? bias[j] : 0.f;
      for (int k = 0; k < K; k++) c += a0[k * sk] * Bm[(size_t)k * Ncols + j];
      o0[j] = c;
    }
  }
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
  float *next = scratch;
  acts[0] = x;
  for (int i = 0; i < L; i++) {
    float *out = next;
    next += (size_t)B * sizes[i + 1];
    KERNEL(matmul_rows)(B, sizes[i], sizes[i + 1], acts[i], sizes[i], 1, w[i], b[i], out, i + 1 < L);
    acts[i + 1] = out;
  }
  const int C = sizes[L];
  float *dz = (float *)acts[L]; /* the logits become d loss / d logits in place */
  double loss = 0.0;
  /* e: exp(z - max) of one row, in double: each exponential once, then divided by the row's sum
   * (the same float softmax as exp(z - max - log sum), up to double rounding) */
  double ez[C];
  for (int r = 0; r < B; r++) {
    float *z = dz + (size_t)r * C;
    float m = z[0];
    for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
    double s = 0.0;
    for (int c = 0; c < C; c++) s += ez[c] = exp((double)(z[c] - m));
    const int y = label[r];
    loss -= (double)(z[y] - m) - log(s);
    for (int c = 0; c < C; c++) z[c] = ((float)(ez[c] / s) - (c == y ? 1.f : 0.f)) / (float)B;
  }
  if (gw) {
    /* after the activations: W^T [widest, widest] and two [B, widest] buffers used in turn for
     * d loss / d input */
    int maxW = 1;
    for (int i = 0; i <= L; i++) maxW = sizes[i] > maxW ? sizes[i] : maxW;
    float *wT = next;
    float *buf[2] = {wT + (size_t)maxW * maxW, wT + (size_t)maxW * maxW + (size_t)B * maxW};
    for (int i = L - 1; i >= 0; i--) {
      const int nIn = sizes[i], nOut = sizes[i + 1];
      KERNEL(matmul_rows)(nIn, B, nOut, acts[i], 1, nIn, dz, NULL, gw[i], 0); /* gW = in^T dz (in read transposed) */
      for (int j = 0; j < nOut; j++) gb[i][j] = 0.f;
      for (int r = 0; r < B; r++)
        for (int j = 0; j < nOut; j++) gb[i][j] += dz[(size_t)r * nOut + j];
      if (i == 0) break;
      float *dIn = buf[i % 2];
      KERNEL(transpose)(nIn, nOut, w[i], wT);
      KERNEL(matmul_rows)(B, nOut, nIn, dz, nOut, 1, wT, NULL, dIn, 0); /* dz W^T */
      const float *h = acts[i];
      for (size_t e = 0; e < (size_t)B * nIn; e++) dIn[e] = h[e] > 0.f ? dIn[e] : (h[e] != h[e] ? h[e] : 0.f); /* ReLU' */
      dz = dIn;
    }
  }
  return (float)(loss / B);
}
