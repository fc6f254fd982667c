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

/* One dense layer on a tile, relu(b[j] + sum_c in[c][g] * w[c][j]) for units j < H: the units JT
 * at a time in registers, each sum over the inputs in order, from the bias, as one multiply-add
 * chain. Written to out[j][g]; or, with w2 (the output layer, [2][H]), not stored but folded into
 * d[g] += relu(...) * w2[0][j] and mg[g] += relu(...) * w2[1][j], in unit order. */
static inline void KERNEL(dense_relu)(int nin, const KERNEL(vf) in[][PG], const float *w, const float *b, KERNEL(vf) out[H][PG],
                                      const float (*w2)[H], KERNEL(vf) d[PG], KERNEL(vf) mg[PG]) {
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
    if (w2) {
      for (int jj = 0; jj < JT; jj++)
        for (int g = 0; g < PG; g++) {
          const vf h = KERNEL(relu)(acc[jj][g]);
          d[g] += h * w2[0][j0 + jj];
          mg[g] += h * w2[1][j0 + jj];
        }
    } else {
      for (int jj = 0; jj < JT; jj++)
        for (int g = 0; g < PG; g++) out[j0 + jj][g] = KERNEL(relu)(acc[jj][g]);
    }
  }
}

/* The MLP on one tile of normalised features feat[c][g] (lane l of vector g is parameter
 * g * LOPT_VW + l): writes direction d[g] and magnitude mg[g]. The first hidden layer is staged in
 * h0; the second never leaves the registers. */
static inline void KERNEL(mlp_tile)(const TaskWeights *tw, const KERNEL(vf) feat[F][PG], KERNEL(vf) d[PG], KERNEL(vf) mg[PG]) {
  typedef KERNEL(vf) vf;
  vf h0[H][PG] __attribute__((aligned(64)));
  KERNEL(dense_relu)(F, feat, &tw->w0[0][0], tw->row0, h0, NULL, NULL, NULL);
  for (int g = 0; g < PG; g++) d[g] = mg[g] = KERNEL(splat)(0.f);
  KERNEL(dense_relu)(H, (const vf(*)[PG])h0, &tw->w1[0][0], tw->b1, NULL, (const float(*)[H])tw->w2t, d, mg);
  for (int g = 0; g < PG; g++) {
    d[g] += tw->b2[0];
    mg[g] += tw->b2[1];
  }
}

/* exp of each lane, as expf to within one float ulp (against glibc's expf: 0.8% of arguments one
 * ulp apart, none further): x = k ln 2 + r with ln 2 in two parts, e^r = 1 + r + r^2 P(r) with P of
 * degree 5 (the Cephes expf coefficients), times 2^k as two powers of two so that overflow gives
 * inf and underflow 0 or a subnormal. Arguments are clamped to [-110, 100], beyond which the float
 * result is 0 or inf; NaN stays NaN. */
static inline KERNEL(vf) KERNEL(vexp)(KERNEL(vf) x) {
  typedef KERNEL(vf) vf;
  typedef KERNEL(vi) vi;
  const vf lo = KERNEL(splat)(-110.f), hi = KERNEL(splat)(100.f);
  const vi below = x < lo, above = x > hi; /* NaN: neither */
  x = (vf)(((vi)x & ~(below | above)) | ((vi)lo & below) | ((vi)hi & above));
  const vf shift = KERNEL(splat)(0x1.8p23f); /* adding it rounds to an integer, kept in the low bits */
  const vf z = x * 1.44269504088896341f + shift;
  const vf kf = z - shift;
  vf r = x - kf * 0.693359375f; /* ln 2, high and low parts */
  r = r - kf * -2.12194440e-4f;
  vf q = KERNEL(splat)(1.9875691500e-4f);
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * (r * r) + r + 1.f;
  const vi k = (vi)z - (vi)shift, k1 = k >> 1, k2 = k - k1;
  return q * (vf)((k1 + 127) << 23) * (vf)((k2 + 127) << 23);
}

/* LOPT_VW elements' six momenta, [LOPT_VW, 6] in a[0..5] (element b's momentum k at flat
 * position 6b + k), to one vector per momentum, t[k] lane b: three two-source lane permutations
 * (a[0..1], a[2..3], a[4..5]) and two blends per momentum (GCC's __builtin_shuffle; other
 * compilers copy element by element). */
static inline void KERNEL(transpose6)(const KERNEL(vf) a[K], KERNEL(vf) t[K]) {
#if !defined(__GNUC__) || defined(__clang__) /* no __builtin_shuffle: element by element */
  const float *x = (const float *)a;
  for (int k = 0; k < K; k++)
    for (int b = 0; b < LOPT_VW; b++) t[k][b] = x[b * K + k];
#else
  typedef KERNEL(vi) vi;
#if LOPT_VW == 16
  const vi iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#else
  const vi iota = {0, 1, 2, 3, 4, 5, 6, 7};
#endif
  const int L = LOPT_VW;
  for (int k = 0; k < K; k++) {
    const vi pos = iota * K + k; /* of lane b's value; a two-source shuffle takes its index mod 2L */
    const KERNEL(vf) lo = __builtin_shuffle(a[0], a[1], pos), mid = __builtin_shuffle(a[2], a[3], pos - 2 * L),
                     hi = __builtin_shuffle(a[4], a[5], pos - 4 * L);
    const KERNEL(vf) lomid = __builtin_shuffle(lo, mid, iota + ((pos >= 2 * L) & L));
    t[k] = __builtin_shuffle(lomid, hi, iota + ((pos >= 4 * L) & L));
  }
#endif
}

/* One leaf of one task: S parameters. Pass 1: the momenta, and the second moments of g, p and the
 * momenta as float64 sums over the leaf in element order, scalar (a form with one element's
 * momenta as one 8-float vector, unaligned 32-byte loads and overlapping stores, was no faster on
 * a quiet core and 3.5x slower while other jobs shared the machine). Pass 2: the MLP on the
 * normalised features, tile by tile, and the step. */
static void KERNEL(leaf_step)(const TaskWeights *tw, int64_t S, const float *p, const float *g, const float *m, float *pOut,
                              float *mOut, const float *decays, float expMult, float stepMult) {
  typedef KERNEL(vf) vf;
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
      for (int q = 0; q < PG; q++) {
        KERNEL(vf) a[K], t[K];
        for (int i = 0; i < K; i++) a[i] = *(const KERNEL(vfu) *)(mo + (q * K + i) * LOPT_VW);
        KERNEL(transpose6)(a, t);
        for (int k = 0; k < K; k++) feat[2 + k][q] = t[k] * scale[2 + k];
      }
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
#undef JT
#undef TILE
