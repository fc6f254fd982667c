/*
 * The host kernels' training-mode batch norm (+ relu) forward and backward over [M, C] maps, in
 * float64 (the arithmetic of src/resnet_kernels.ts's JavaScript bodies), compiled for the baseline
 * instruction set (no FMA contraction: bit for bit the JavaScript values). The relu flag is
 * tested outside the loops, which then vectorise (with -fno-trapping-math: selects, no
 * branches; a masked position adds +0, and the sums, from +0, are never −0, so the same values).
 */

/*
 * Batch norm forward over x [n / c, c]: y (relu'd when `relu`), mean, variance and r =
 * rsqrt(variance + eps) [c]; s: 3c doubles of scratch.
 */
/* (noinline: inlined into a caller, GCC drops the restrict qualifiers and no longer vectorises) */
__attribute__((noinline)) static void bn_forward(size_t n, int c, int relu, const float *restrict x, const float *restrict scale, const float *restrict offset, float *restrict y,
                              float *restrict mean, float *restrict variance, float *restrict rOut, double *restrict s) {
  const size_t m = n / c;
  double *s1 = s, *s2 = s + c, *inv = s + 2 * c;
  for (int ch = 0; ch < c; ch++) s1[ch] = s2[ch] = 0.0;
  for (size_t p = 0; p < n; p += c)
    for (int ch = 0; ch < c; ch++) {
      const double v = x[p + ch];
      s1[ch] += v;
      s2[ch] += v * v;
    }
  const float eps = 1e-5f;
  for (int ch = 0; ch < c; ch++) {
    const double mean64 = s1[ch] / (double)m;
    mean[ch] = (float)mean64;
    variance[ch] = (float)(s2[ch] / (double)m - mean64 * mean64);
    rOut[ch] = (float)(1.0 / sqrt((double)(float)((double)variance[ch] + (double)eps)));
    inv[ch] = (double)rOut[ch] * (double)scale[ch];
  }
  for (size_t p = 0; p < n; p += c)
    if (relu)
      for (int ch = 0; ch < c; ch++) {
        const double v = ((double)x[p + ch] - (double)mean[ch]) * inv[ch] + (double)offset[ch];
        y[p + ch] = (float)(v < 0 ? 0.0 : v);
      }
    else
      for (int ch = 0; ch < c; ch++) y[p + ch] = (float)(((double)x[p + ch] - (double)mean[ch]) * inv[ch] + (double)offset[ch]);
}

/*
 * Batch norm backward: dx [n / c, c], d scale and d offset [c]
 * (written); s: 5c doubles of scratch.
 */
__attribute__((noinline)) static void bn_backward(size_t n, int c, int relu, const float *restrict dy, const float *restrict x, const float *restrict y, const float *restrict mean,
                               const float *restrict r, const float *restrict scale, float *restrict dx, float *restrict dScale, float *restrict dOffset,
                               double *restrict s) {
  const size_t m = n / c;
  double *sg = s, *sgx = s + c, *av = s + 2 * c, *meanG = s + 3 * c, *k = s + 4 * c;
  for (int ch = 0; ch < c; ch++) sg[ch] = sgx[ch] = 0.0;
  /* with relu, the positions where y is not positive add nothing */
  for (size_t p = 0; p < n; p += c)
    if (relu)
      for (int ch = 0; ch < c; ch++) {
        const double g = dy[p + ch], gx = g * ((double)x[p + ch] - (double)mean[ch]), yv = y[p + ch];
        sg[ch] += yv > 0 ? g : 0.0;
        sgx[ch] += yv > 0 ? gx : 0.0;
      }
    else
      for (int ch = 0; ch < c; ch++) {
        const double g = dy[p + ch];
        sg[ch] += g;
        sgx[ch] += g * ((double)x[p + ch] - (double)mean[ch]);
      }
  for (int ch = 0; ch < c; ch++) {
    const double sgxh = sgx[ch] * (double)r[ch];
    dOffset[ch] = (float)sg[ch];
    dScale[ch] = (float)sgxh;
    av[ch] = (double)scale[ch] * (double)r[ch];
    meanG[ch] = sg[ch] / (double)m;
    k[ch] = ((double)r[ch] * sgxh) / (double)m;
  }
  for (size_t p = 0; p < n; p += c)
    for (int ch = 0; ch < c; ch++) {
      const double d = dy[p + ch], yv = y[p + ch];
      const double g = relu ? (yv > 0 ? d : 0.0) : d;
      const float v = (float)(av[ch] * (g - meanG[ch] - ((double)x[p + ch] - (double)mean[ch]) * k[ch]));
      dx[p + ch] = v;
    }
}

