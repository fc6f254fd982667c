/*
 * The fused per-parameter MLP of per_param_mlp.c, included once per instruction set by lopt_isa.h:
 * KERNEL(name) pastes the target's suffix. Elements are processed BLK at a time, one lane per
 * element: the sources are transposed into per-channel rows of the block, each feature is one
 * elementwise loop over the block (vectorised by the compiler for the target), and the MLP is
 * LOPT_VW-wide vector multiply-adds with the small weights broadcast.
 */
typedef float KERNEL(pvf) __attribute__((vector_size(LOPT_VW * 4)));
typedef int32_t KERNEL(pvi) __attribute__((vector_size(LOPT_VW * 4)));
#define PV (BLK / LOPT_VW)
/* units per register tile: 4 x 4 accumulators with 16-float vectors; with 8-float ones (8 per unit,
 * enough to cover the multiply-add latency) one unit, as 16 registers hold no more */
#define PJ (LOPT_VW == 16 ? 4 : 1)

/* max(v, 0) that keeps NaN (as tf.relu and jax.nn.relu do). */
static inline KERNEL(pvf) KERNEL(pp_relu)(KERNEL(pvf) v) {
  const KERNEL(pvf) zero = {0};
  return (KERNEL(pvf))((KERNEL(pvi))v & ~(v <= zero));
}

/* The block's features, feat[col][b], from the elements e0 .. e0 + rows - 1 (lanes past `rows` get
 * zero sources). Advances the index walkers by `rows` elements and leaves the walked indices of the
 * block in idx[slot][b]. */
static void KERNEL(pp_features)(const PPTask *t, int64_t e0, int rows, PPWalk walk[2], float feat[][BLK], float src[][BLK],
                                int64_t idx[2][BLK]) {
  int ch = 0;
  for (int s = 0; s < t->nsrc; s++) {
    const int k = t->width[s];
    const float *x = t->src[s] + e0 * k;
    for (int c = 0; c < k; c++) {
      float *row = src[ch + c];
      for (int b = 0; b < rows; b++) row[b] = x[b * k + c];
      for (int b = rows; b < BLK; b++) row[b] = 0.f;
    }
    ch += k;
  }
  for (int a = 0; a < 2; a++) {
    if (!t->walked[a]) continue;
    for (int b = 0; b < rows; b++) idx[a][b] = pp_walk_next(&walk[a]);
    for (int b = rows; b < BLK; b++) idx[a][b] = idx[a][0];
    if (!t->factor[a]) continue;
    const int k = t->factorWidth;
    const float *f = t->factor[a];
    for (int c = 0; c < k; c++) {
      float *row = src[t->factorChannel[a] + c];
      for (int b = 0; b < BLK; b++) row[b] = f[idx[a][b] * k + c];
    }
  }
  int col = 0;
  for (int o = 0; o < t->nops; o++) {
    const int32_t *op = t->ops + o * PP_OP_INTS;
    const int code = op[0], k = op[1];
    const float eps = t->eps[o];
    for (int c = 0; c < k; c++) {
      /* a source of width 1 broadcasts over the channels */
      const float *A = src[op[2] + (op[3] == 1 ? 0 : c)];
      const float *B = op[4] >= 0 ? src[op[4] + (op[5] == 1 ? 0 : c)] : NULL;
      float *out = feat[col + c];
      switch (code) {
        case PP_COPY:
          for (int b = 0; b < BLK; b++) out[b] = A[b];
          break;
        case PP_CLIP:
          for (int b = 0; b < BLK; b++) out[b] = A[b] < -eps ? -eps : (A[b] > eps ? eps : A[b]);
          break;
        case PP_RSQRT:
          for (int b = 0; b < BLK; b++) out[b] = 1.f / sqrtf(A[b] + eps);
          break;
        case PP_MUL_RSQRT:
          for (int b = 0; b < BLK; b++) out[b] = A[b] * (1.f / sqrtf(B[b] + eps));
          break;
        case PP_MUL_SAFE_RSQRT:
          for (int b = 0; b < BLK; b++) {
            const float v = B[b] + eps;
            out[b] = A[b] * (1.f / sqrtf(v > 1e-9f ? v : 1e-9f));
          }
          break;
        case PP_MUL_FACTORS: {
          const int kf = t->factorWidth;
          const float *R = src[t->factorChannel[0] + (kf == 1 ? 0 : c)];
          const float *C = src[t->factorChannel[1] + (kf == 1 ? 0 : c)];
          for (int b = 0; b < BLK; b++) out[b] = A[b] * R[b] * C[b];
          break;
        }
      }
    }
    col += k;
  }
}

/* One leaf of one task: the features' second moments over the leaf (pass 1), then the MLP on the
 * normalised features (pass 2, the normalisers folded into the first layer's weights). */
static void KERNEL(pp_task)(const PPTask *t) {
  typedef KERNEL(pvf) vf;
  const int F = t->F, H0 = t->sizes[1];
  float src[PP_MAX_CH][BLK] __attribute__((aligned(64)));
  float feat[PP_MAX_F][BLK] __attribute__((aligned(64)));
  int64_t idx[2][BLK];
  PPWalk walk[2];
  double ss[PP_MAX_F] = {0};
  pp_walk_reset(t, walk);
  for (int64_t e0 = 0; e0 < t->S; e0 += BLK) {
    const int rows = t->S - e0 < BLK ? (int)(t->S - e0) : BLK;
    KERNEL(pp_features)(t, e0, rows, walk, feat, src, idx);
    for (int c = 0; c < F; c++) {
      float s = 0.f;
      for (int b = 0; b < rows; b++) s += feat[c][b] * feat[c][b];
      ss[c] += s;
    }
  }
  /* the first layer's weights with each feature row scaled by rsqrt(1e-5 + mean x^2) */
  float w0s[PP_MAX_F][PP_MAX_H];
  for (int c = 0; c < F; c++) {
    const float r = 1.f / sqrtf(1e-5f + (float)(ss[c] / (double)t->S));
    for (int j = 0; j < H0; j++) w0s[c][j] = t->w0[c * H0 + j] * r;
  }
  vf h[2][PP_MAX_H][PV];
  pp_walk_reset(t, walk);
  const int D = t->D;
  for (int64_t e0 = 0; e0 < t->S; e0 += BLK) {
    const int rows = t->S - e0 < BLK ? (int)(t->S - e0) : BLK;
    KERNEL(pp_features)(t, e0, rows, walk, feat, src, idx);
    /* layer 0: bias (+ the factored features' terms, gathered per element) + features @ w0s */
    for (int j = 0; j < H0; j++) {
      float *hj = (float *)h[0][j];
      for (int b = 0; b < BLK; b++) hj[b] = t->bias[j];
      for (int a = 0; a < 2; a++) {
        if (!t->term[a]) continue;
        const float *T = t->term[a];
        for (int b = 0; b < BLK; b++) hj[b] += T[idx[a][b] * H0 + j];
      }
    }
    /* PJ units at a time in registers (PJ * PV accumulators), each weight broadcast into the
     * multiply-adds of the whole block; per unit the sum over the features runs in order */
    int j0 = 0;
    for (; j0 + PJ <= H0; j0 += PJ) {
      vf acc[PJ][PV];
      for (int jj = 0; jj < PJ; jj++)
        for (int q = 0; q < PV; q++) acc[jj][q] = h[0][j0 + jj][q];
      for (int c = 0; c < F; c++) {
        const vf *x = (const vf *)feat[c];
        for (int jj = 0; jj < PJ; jj++) {
          const float w = w0s[c][j0 + jj];
          for (int q = 0; q < PV; q++) acc[jj][q] += x[q] * w;
        }
      }
      for (int jj = 0; jj < PJ; jj++)
        for (int q = 0; q < PV; q++) h[0][j0 + jj][q] = acc[jj][q];
    }
    for (int c = 0; c < F; c++) {
      const vf *x = (const vf *)feat[c];
      for (int j = j0; j < H0; j++) {
        const float w = w0s[c][j];
        for (int q = 0; q < PV; q++) h[0][j][q] += x[q] * w;
      }
    }
    /* the hidden layers, ReLU before each; only the wanted outputs of the last */
    int cur = 0, width = H0;
    for (int l = 1; l < D; l++) {
      const int out = t->sizes[l + 1];
      const int last = l == D - 1;
      for (int c = 0; c < width; c++)
        for (int q = 0; q < PV; q++) h[cur][c][q] = KERNEL(pp_relu)(h[cur][c][q]);
      const float *W = t->w[l], *Bv = t->b[l];
      const int nj = last ? t->nout : out;
      int jj = 0;
      for (; jj + PJ <= nj; jj += PJ) { /* PJ units at a time, as in layer 0 */
        vf acc[PJ][PV];
        int js[PJ];
        for (int u = 0; u < PJ; u++) {
          js[u] = last ? t->outCols[jj + u] : jj + u;
          for (int q = 0; q < PV; q++) acc[u][q] = (vf){0} + Bv[js[u]];
        }
        for (int c = 0; c < width; c++) {
          for (int u = 0; u < PJ; u++) {
            const float w = W[c * out + js[u]];
            for (int q = 0; q < PV; q++) acc[u][q] += h[cur][c][q] * w;
          }
        }
        for (int u = 0; u < PJ; u++)
          for (int q = 0; q < PV; q++) h[1 - cur][jj + u][q] = acc[u][q];
      }
      for (; jj < nj; jj++) {
        const int j = last ? t->outCols[jj] : jj;
        vf acc[PV];
        for (int q = 0; q < PV; q++) acc[q] = (vf){0} + Bv[j];
        for (int c = 0; c < width; c++) {
          const float w = W[c * out + j];
          for (int q = 0; q < PV; q++) acc[q] += h[cur][c][q] * w;
        }
        for (int q = 0; q < PV; q++) h[1 - cur][jj][q] = acc[q];
      }
      cur = 1 - cur;
      width = nj;
    }
    /* with one layer the outputs are columns of its (linear) output */
    if (t->stepP) {
      const float *d = (const float *)h[cur][D == 1 ? t->outCols[0] : 0];
      const float *mg = (const float *)h[cur][D == 1 ? t->outCols[1] : 1];
      const float *p = t->stepP + e0;
      float *o = t->stepOut + e0;
      for (int b = 0; b < rows; b++) o[b] = p[b] - d[b] * expf(mg[b] * t->expMult) * t->stepScale;
      continue;
    }
    for (int jj = 0; jj < t->nout; jj++) {
      const float *hv = (const float *)h[cur][D == 1 ? t->outCols[jj] : jj];
      float *o = t->out[jj] + e0;
      for (int b = 0; b < rows; b++) o[b] = hv[b];
    }
  }
}

#undef PV
#undef PJ
