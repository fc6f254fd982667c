/*
 * The fused MLPLOpt kernel, included by mlp_lopt_step.c once per instruction set: KERNEL(name)
 * pastes the target's suffix, so each copy is compiled (and inlined) for its own target.
 */
/* LOPT_VW floats per vector (lopt_isa.h: 16 for AVX-512, 8 otherwise), RB rows per block. */
typedef float KERNEL(vf) __attribute__((vector_size(LOPT_VW * 4)));
typedef int32_t KERNEL(vi) __attribute__((vector_size(LOPT_VW * 4)));
#define QV (H / LOPT_VW)
#ifndef RB_FOR
#define RB_FOR(vw) ((vw) == 16 ? RB16 : RB8)
#endif
#define RB RB_FOR(LOPT_VW)

/* max(v, 0) that keeps NaN (as jax.nn.relu and tf.relu do): only lanes with v <= 0 become 0. */
static inline KERNEL(vf) KERNEL(relu)(KERNEL(vf) v) {
  const KERNEL(vf) zero = {0};
  return (KERNEL(vf))((KERNEL(vi))v & ~(v <= zero));
}

static inline float KERNEL(hsum)(KERNEL(vf) v) {
  float s = 0.f;
  for (int i = 0; i < LOPT_VW; i++) s += v[i];
  return s;
}

/* The MLP on RB rows of normalised features; writes direction and magnitude per row. The
 * weights are read as LOPT_VW-wide rows of the 64-byte aligned TaskWeights. */
static inline void KERNEL(mlp_block)(const TaskWeights *tw, const float feat[][F], float out[][2]) {
  typedef KERNEL(vf) vf;
  const vf *row0 = (const vf *)tw->row0, *b1 = (const vf *)tw->b1;
  vf h0[RB][QV], h1[RB][QV];
  const vf zero = {0};
  for (int r = 0; r < RB; r++) {
    for (int q = 0; q < QV; q++) h0[r][q] = row0[q];
    for (int c = 0; c < F; c++) {
      const vf *w0 = (const vf *)tw->w0[c];
      for (int q = 0; q < QV; q++) h0[r][q] += feat[r][c] * w0[q];
    }
    for (int q = 0; q < QV; q++) h0[r][q] = KERNEL(relu)(h0[r][q]);
  }
  for (int r = 0; r < RB; r++)
    for (int q = 0; q < QV; q++) h1[r][q] = b1[q];
  for (int c = 0; c < H; c++) {
    const vf *w1 = (const vf *)tw->w1[c];
    for (int r = 0; r < RB; r++) {
      const float a = h0[r][c / LOPT_VW][c % LOPT_VW];
      for (int q = 0; q < QV; q++) h1[r][q] += a * w1[q];
    }
  }
  const vf *w2d = (const vf *)tw->w2t[0], *w2m = (const vf *)tw->w2t[1];
  for (int r = 0; r < RB; r++) {
    vf d = zero, m = zero;
    for (int q = 0; q < QV; q++) {
      const vf h = KERNEL(relu)(h1[r][q]);
      d += h * w2d[q];
      m += h * w2m[q];
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
  float feat[RB][F], out[RB][2];
  for (int64_t e0 = 0; e0 < S; e0 += RB) {
    const int rows = S - e0 < RB ? (int)(S - e0) : RB;
    for (int r = 0; r < RB; r++) {
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


#undef QV
#undef RB
