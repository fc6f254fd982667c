/*
 * im2col / col2im of a 2-D convolution (NHWC, no dilation), for the wasm and cpu conv backprop
 * kernels (src/wasm_conv_kernels.ts): the same loops as their JavaScript versions, in the same
 * order (so col2im's sums are bit-identical), at memory speed.
 *
 * g (int32[12]): B, H, W, C, Ho, Wo, kh, kw, sh, sw, top, left; M = B·Ho·Wo, K = kh·kw·C.
 */

/*
 * colsT[(i, j, c), (b, y, x)] = x[b, y·sh + i − top, x·sw + j − left, c], 0 outside (colsT: [K, M]).
 * Each output element is written once; for one (i, j, b, y) the Wo-long runs of every channel row
 * are written contiguously (a blocked transpose of the [Wo, C] input patch), not one channel
 * column at a time M values apart.
 */
static void im2col_t(const int32_t *g, const float *restrict x, float *restrict colsT) {
  const int B = g[0], H = g[1], W = g[2], C = g[3], Ho = g[4], Wo = g[5], kh = g[6], kw = g[7], sh = g[8], sw = g[9], top = g[10], left = g[11];
  const size_t M = (size_t)B * Ho * Wo;
  for (int i = 0; i < kh; i++)
    for (int j = 0; j < kw; j++) {
      float *rows = colsT + (size_t)(i * kw + j) * C * M;
      /* the output columns whose input column is inside: ox in [lo, hi) */
      int lo = 0, hi = Wo;
      while (lo < Wo && lo * sw + j - left < 0) lo++;
      while (hi > lo && (hi - 1) * sw + j - left >= W) hi--;
      for (int b = 0; b < B; b++)
        for (int oy = 0; oy < Ho; oy++) {
          const int iy = oy * sh + i - top;
          const size_t m0 = ((size_t)b * Ho + oy) * Wo;
          if (iy < 0 || iy >= H) {
            for (int c = 0; c < C; c++) memset(rows + (size_t)c * M + m0, 0, sizeof(float) * Wo);
            continue;
          }
          const float *src = x + (((size_t)b * H + iy) * W + (lo * sw + j - left)) * C;
          const size_t step = (size_t)sw * C;
          for (int c = 0; c < C; c++) {
            float *restrict dst = rows + (size_t)c * M + m0;
            for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
            const float *s = src + c;
            for (int ox = lo; ox < hi; ox++, s += step) dst[ox] = *s;
            for (int ox = hi; ox < Wo; ox++) dst[ox] = 0.0f;
          }
        }
    }
}

/* dx = 0, then dx[b, y·sh + i − top, x·sw + j − left, :] += cols[(b, y, x), (i, j, :)] (outside: dropped). */
static void col2im(const int32_t *g, const float *restrict cols, float *restrict dx) {
  const int B = g[0], H = g[1], W = g[2], C = g[3], Ho = g[4], Wo = g[5], kh = g[6], kw = g[7], sh = g[8], sw = g[9], top = g[10], left = g[11];
  const size_t K = (size_t)kh * kw * C;
  memset(dx, 0, sizeof(float) * B * H * W * C);
  for (int b = 0; b < B; b++)
    for (int oy = 0; oy < Ho; oy++)
      for (int ox = 0; ox < Wo; ox++) {
        const float *row = cols + (((size_t)b * Ho + oy) * Wo + ox) * K;
        for (int i = 0; i < kh; i++) {
          const int iy = oy * sh + i - top;
          if (iy < 0 || iy >= H) continue;
          for (int j = 0; j < kw; j++) {
            const int ix = ox * sw + j - left;
            if (ix < 0 || ix >= W) continue;
            float *dst = dx + (((size_t)b * H + iy) * W + ix) * C;
            const float *src = row + (size_t)(i * kw + j) * C;
            for (int c = 0; c < C; c++) dst[c] += src[c];
          }
        }
      }
}
