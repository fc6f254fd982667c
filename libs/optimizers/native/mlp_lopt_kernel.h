/*
 * The fused MLPLOpt kernel, included by mlp_lopt_step.c once per instruction set: KERNEL(name)
 * pastes the target's suffix, so each copy is compiled (and inlined) for its own target.
 *
 * Parameters sit in the vector lanes (LOPT_VW of them per vector, lopt_isa.h: 16 with AVX-512, 8
 * otherwise): a tile is PG vectors, TILE parameters. Each layer's output units are accumulated JT
 * at a time in PG * JT registers, every multiply-add taking one weight broadcast from memory, so
 * the MLP is multiply-adds and loads only (no lane shuffles). The tile's first hidden layer is
 * staged in an aligned buffer between the layers.
 */
typedef float KERNEL(vf) __attribute__((vector_size(LOPT_VW * 4)));
typedef int32_t KERNEL(vi) __attribute__((vector_size(LOPT_VW * 4)));
typedef float KERNEL(vfu) __attribute__((vector_size(LOPT_VW * 4), aligned(4), may_alias));
#if LOPT_VW == 16
#define LOPT_LOW_HALF(v) __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
#define LOPT_HIGH_HALF(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)
#define LOPT_CONCAT(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#else
#define LOPT_LOW_HALF(v) __builtin_shufflevector(v, v, 0, 1, 2, 3)
#define LOPT_HIGH_HALF(v) __builtin_shufflevector(v, v, 4, 5, 6, 7)
#define LOPT_CONCAT(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7)
#endif
/* half a vector of floats, and as many doubles (one register's worth but on the baseline) */
typedef float KERNEL(vh) __attribute__((vector_size(LOPT_VW * 2)));
typedef double KERNEL(vd) __attribute__((vector_size(LOPT_VW * 4)));
typedef int64_t KERNEL(vl) __attribute__((vector_size(LOPT_VW * 4)));
#if LOPT_VW == 16
#define PG PG_AVX512
#define JT JT_AVX512
#elif defined(__AVX2__)
#define PG PG_AVX2
#define JT JT_AVX2
#else
#define PG PG_BASE
#define JT JT_BASE
#endif
#define TILE (PG * LOPT_VW)
_Static_assert(H % JT == 0, "the hidden width must be a multiple of the register tile");

/* max(v, 0) that keeps NaN (as jax.nn.relu and tf.relu do): only lanes with v <= 0 become 0. */
static inline KERNEL(vf) KERNEL(relu)(KERNEL(vf) v) {
  const KERNEL(vf) zero = {0};
  return (KERNEL(vf))((KERNEL(vi))v & ~(v <= zero));
}

/* x in every lane (x - 0 is x, -0 and NaN included: a broadcast) */
static inline KERNEL(vf) KERNEL(splat)(float x) {
  return x - (KERNEL(vf)){0};
}

/* One dense layer on a tile, out[j][g] = relu(b[j] + sum_c in[c][g] * w[c][j]) for j < H: the
 * units JT at a time in registers, each sum over the inputs in order, from the bias, as one
 * multiply-add chain. */
static inline void KERNEL(dense_relu)(int nin, const KERNEL(vf) in[][PG], const float *w, const float *b, KERNEL(vf) out[H][PG]) {
  typedef KERNEL(vf) vf;
  for (int j0 = 0; j0 < H; j0 += JT) {
    vf acc[JT][PG];
    for (int jj = 0; jj < JT; jj++)
      for (int g = 0; g < PG; g++) acc[jj][g] = KERNEL(splat)(b[j0 + jj]);
    for (int c = 0; c < nin; c++) {
      const float *wc = w + c * H + j0;
      for (int jj = 0; jj < JT; jj++)
        for (int g = 0; g < PG; g++) acc[jj][g] += in[c][g] * wc[jj];
    }
    for (int jj = 0; jj < JT; jj++)
      for (int g = 0; g < PG; g++) out[j0 + jj][g] = KERNEL(relu)(acc[jj][g]);
  }
}

/* The MLP on one tile of normalised features feat[c][g] (lane l of vector g is parameter
 * g * LOPT_VW + l): writes direction d[g] and magnitude mg[g]. */
static inline void KERNEL(mlp_tile)(const TaskWeights *tw, const KERNEL(vf) feat[F][PG], KERNEL(vf) d[PG], KERNEL(vf) mg[PG]) {
  typedef KERNEL(vf) vf;
  vf h0[H][PG] __attribute__((aligned(64))), h1[H][PG] __attribute__((aligned(64)));
  KERNEL(dense_relu)(F, feat, &tw->w0[0][0], tw->row0, h0);
  KERNEL(dense_relu)(H, (const vf(*)[PG])h0, &tw->w1[0][0], tw->b1, h1);
  /* the output layer in the order of the earlier hidden-units-in-lanes kernel (bit-identical
   * results): per output, LOPT_VW partial sums over the units i, i + LOPT_VW, ..., then their sum */
  for (int g = 0; g < PG; g++) {
    vf sd = {0}, sm = {0};
    for (int i = 0; i < LOPT_VW; i++) {
      vf pd = {0}, pm = {0};
      for (int c = i; c < H; c += LOPT_VW) {
        pd += h1[c][g] * tw->w2t[0][c];
        pm += h1[c][g] * tw->w2t[1][c];
      }
      sd += pd;
      sm += pm;
    }
    d[g] = tw->b2[0] + sd;
    mg[g] = tw->b2[1] + sm;
  }
}

/* exp of each lane, as expf: computed in float64 (x = k ln2 + r, |r| <= ln2 / 2, e^r by its Taylor
 * series to r^10, error < 3e-13) and rounded once to float, so correctly rounded but for about 1 in
 * 10^8 arguments (glibc's expf, which the scalar loop called, is one float ulp off for about 1 in
 * 10^4). Arguments are clamped to [-110, 100], beyond which the float result is 0 or inf; NaN stays NaN. */
static inline KERNEL(vf) KERNEL(vexp)(KERNEL(vf) x) {
  typedef KERNEL(vf) vf;
  typedef KERNEL(vi) vi;
  typedef KERNEL(vd) vd;
  typedef KERNEL(vl) vl;
  const vf lo = (vf){0} - 110.f, hi = (vf){0} + 100.f;
  const vi below = x < lo, above = x > hi; /* NaN: neither */
  x = (vf)(((vi)x & ~(below | above)) | ((vi)lo & below) | ((vi)hi & above));
  KERNEL(vh) half[2] = {LOPT_LOW_HALF(x), LOPT_HIGH_HALF(x)}, res[2];
  for (int h = 0; h < 2; h++) {
    const vd xd = __builtin_convertvector(half[h], vd);
    const vd shift = (vd){0} + 0x1.8p52; /* adding it rounds to an integer, kept in the low bits */
    const vd z = xd * 0x1.71547652b82fep0 + shift;
    const vd kd = z - shift;
    vd r = xd - kd * 0x1.62e42fefa39efp-1; /* ln 2, high and low parts */
    r = r - kd * 0x1.abc9e3b39803fp-56;
    vd q = (vd){0} + 1.0 / 3628800;
    q = q * r + 1.0 / 362880;
    q = q * r + 1.0 / 40320;
    q = q * r + 1.0 / 5040;
    q = q * r + 1.0 / 720;
    q = q * r + 1.0 / 120;
    q = q * r + 1.0 / 24;
    q = q * r + 1.0 / 6;
    q = q * r + 0.5;
    q = q * r + 1.0;
    q = q * r + 1.0;
    const vd scale = (vd)((((vl)z - (vl)shift) + 1023) << 52); /* 2^k */
    res[h] = __builtin_convertvector(q * scale, KERNEL(vh));
  }
  return LOPT_CONCAT(res[0], res[1]);
}

/* One leaf of one task: S parameters. */
static void KERNEL(leaf_step)(const TaskWeights *tw, int64_t S, const float *p, const float *g, const float *m, float *pOut,
                              float *mOut, const float *decays, float expMult, float stepMult) {
  typedef KERNEL(vf) vf;
  /* Pass 1: the momenta, and the second moments of g, p and the momenta as float64 sums over the
   * leaf in element order. One element's six momenta are one 8-float vector (two lanes unused). */
  const v8f dec8 = {decays[0], decays[1], decays[2], decays[3], decays[4], decays[5], 0.f, 0.f};
  v8f mix8;
  for (int k = 0; k < 8; k++) mix8[k] = 1.f - dec8[k];
  const v8i keep6 = {-1, -1, -1, -1, -1, -1, 0, 0};
  v8d ssm = {0};
  double ssg = 0, ssp = 0;
  for (int64_t e = 0; e < S; e++) {
    const float ge = g[e], pe = p[e];
    ssg += (double)ge * ge;
    ssp += (double)pe * pe;
    v8f mv;
    if (e + 1 < S) {
      mv = *(const v8fu *)(m + e * K); /* the last two lanes: the next element's, unused */
    } else {
      mv = (v8f){0};
      memcpy(&mv, m + e * K, K * sizeof(float));
    }
    const v8f gm = ge * mix8;
#ifdef __FMA__
    v8f v = __builtin_ia32_vfmaddps256(mv, dec8, gm); /* m * decay + g * (1 - decay), as one multiply-add */
#else
    v8f v = mv * dec8 + gm;
#endif
    *(v4fu *)(mOut + e * K) = (v4fu){v[0], v[1], v[2], v[3]};
    *(v2fu *)(mOut + e * K + 4) = (v2fu){v[4], v[5]};
    v = (v8f)((v8i)v & keep6);
    const v8d vd = __builtin_convertvector(v, v8d);
    ssm += vd * vd;
  }
  double ss[F] = {ssg, ssp};
  for (int k = 0; k < K; k++) ss[2 + k] = ssm[k];
  float scale[F];
  for (int c = 0; c < F; c++) scale[c] = (float)(1.0 / sqrt(1e-5 + (double)(float)(ss[c] / (double)S)));
  vf feat[F][PG] __attribute__((aligned(64)));
  vf d[PG] __attribute__((aligned(64))), mg[PG] __attribute__((aligned(64)));
  float(*fl)[TILE] = (float(*)[TILE])feat;
  float ptail[TILE] __attribute__((aligned(64)));
  for (int64_t e0 = 0; e0 < S; e0 += TILE) {
    const int rows = S - e0 < TILE ? (int)(S - e0) : TILE;
    if (rows == TILE) {
      for (int b = 0; b < TILE; b++) {
        fl[0][b] = g[e0 + b] * scale[0];
        fl[1][b] = p[e0 + b] * scale[1];
      }
      const float *mo = mOut + e0 * K;
      for (int b = 0; b < TILE; b++)
        for (int k = 0; k < K; k++) fl[2 + k][b] = mo[b * K + k] * scale[2 + k];
    } else {
      memset(feat, 0, sizeof feat);
      for (int b = 0; b < rows; b++) {
        const int64_t e = e0 + b;
        fl[0][b] = g[e] * scale[0];
        fl[1][b] = p[e] * scale[1];
        for (int k = 0; k < K; k++) fl[2 + k][b] = mOut[e * K + k] * scale[2 + k];
      }
    }
    KERNEL(mlp_tile)(tw, (const vf(*)[PG])feat, d, mg);
    /* the step, p - d * exp(mg * expMult) * stepMult (a tile past the leaf's end reads p from ptail) */
    const float *pt = p + e0;
    if (rows < TILE) {
      memset(ptail, 0, sizeof ptail);
      memcpy(ptail, pt, (size_t)rows * sizeof(float));
      pt = ptail;
    }
    for (int q = 0; q < PG; q++) {
      const vf pv = *(const KERNEL(vfu) *)(pt + q * LOPT_VW), ev = KERNEL(vexp)(mg[q] * expMult);
      const vf out = pv - d[q] * ev * stepMult;
      if (rows == TILE)
        *(KERNEL(vfu) *)(pOut + e0 + q * LOPT_VW) = out;
      else
        for (int b = 0; b < LOPT_VW && q * LOPT_VW + b < rows; b++) pOut[e0 + q * LOPT_VW + b] = out[b];
    }
  }
}

#undef PG
#undef LOPT_LOW_HALF
#undef LOPT_HIGH_HALF
#undef LOPT_CONCAT
#undef JT
#undef TILE
