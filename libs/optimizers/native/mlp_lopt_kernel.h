/*
 * The fused MLPLOpt kernel, included by mlp_lopt_step.c once per instruction set: KERNEL(name)
 * pastes the target's suffix, so each copy is compiled (and inlined) for its own target.
 */
/* max(v, 0) that keeps NaN (as jax.nn.relu and tf.relu do): only lanes with v <= 0 become 0. */
static inline v8f KERNEL(relu)(v8f v) {
  const v8f zero = {0};
  return (v8f)((v8i)v & ~(v <= zero));
}

static inline float KERNEL(hsum)(v8f v) {
  float s = 0.f;
  for (int i = 0; i < 8; i++) s += v[i];
  return s;
}

/* The MLP on R rows of normalised features; writes direction and magnitude per row. */
static inline void KERNEL(mlp_block)(const TaskWeights *tw, const float feat[R][F], float out[R][2]) {
  v8f h0[R][Q], h1[R][Q];
  const v8f zero = {0};
  for (int r = 0; r < R; r++) {
    for (int q = 0; q < Q; q++) h0[r][q] = tw->row0[q];
    for (int c = 0; c < F; c++)
      for (int q = 0; q < Q; q++) h0[r][q] += feat[r][c] * tw->w0[c][q];
    for (int q = 0; q < Q; q++) h0[r][q] = KERNEL(relu)(h0[r][q]);
  }
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) h1[r][q] = tw->b1[q];
  for (int c = 0; c < H; c++) {
    for (int r = 0; r < R; r++) {
      const float a = h0[r][c / 8][c % 8];
      for (int q = 0; q < Q; q++) h1[r][q] += a * tw->w1[c][q];
    }
  }
  for (int r = 0; r < R; r++) {
    v8f d = zero, m = zero;
    for (int q = 0; q < Q; q++) {
      const v8f h = KERNEL(relu)(h1[r][q]);
      d += h * tw->w2t[0][q];
      m += h * tw->w2t[1][q];
    }
    out[r][0] = tw->b2[0] + KERNEL(hsum)(d);
    out[r][1] = tw->b2[1] + KERNEL(hsum)(m);
  }
}

/* One leaf of one task: S parameters. */
static void KERNEL(leaf_step)(const TaskWeights *tw, int64_t S, const float *p, const float *g, const float *m, float *pOut,
                      float *mOut, const float *decays, float expMult, float stepMult) {
  double ss[F] = {0};
  float mix[K];
  for (int k = 0; k < K; k++) mix[k] = 1.f - decays[k];
  for (int64_t e = 0; e < S; e++) {
    const float ge = g[e], pe = p[e];
    ss[0] += (double)ge * ge;
    ss[1] += (double)pe * pe;
    for (int k = 0; k < K; k++) {
      const float v = m[e * K + k] * decays[k] + ge * mix[k];
      mOut[e * K + k] = v;
      ss[2 + k] += (double)v * v;
    }
  }
  float scale[F];
  for (int c = 0; c < F; c++) scale[c] = (float)(1.0 / sqrt(1e-5 + (double)(float)(ss[c] / (double)S)));
  float feat[R][F], out[R][2];
  for (int64_t e0 = 0; e0 < S; e0 += R) {
    const int rows = S - e0 < R ? (int)(S - e0) : R;
    for (int r = 0; r < R; r++) {
      if (r < rows) {
        const int64_t e = e0 + r;
        feat[r][0] = g[e] * scale[0];
        feat[r][1] = p[e] * scale[1];
        for (int k = 0; k < K; k++) feat[r][2 + k] = mOut[e * K + k] * scale[2 + k];
      } else {
        memset(feat[r], 0, sizeof feat[r]);
      }
    }
    KERNEL(mlp_block)(tw, feat, out);
    for (int r = 0; r < rows; r++) {
      const int64_t e = e0 + r;
      pOut[e] = p[e] - out[r][0] * expf(out[r][1] * expMult) * stepMult;
    }
  }
}

