/*
 * The ResNet's host kernels (src/resnet_kernels.ts) in C: training-mode batch norm (+ relu)
 * forward and backward, and the 3x3 stride-2 SAME max pool's input gradient (the addon
 * lopt_resnet.node). The same loops and
 * the same float64 arithmetic as the JavaScript bodies there (sums in order over positions, one
 * rounding to float32 per stored value), so the same values; called with views of the backend's
 * memory:
 *
 *   resnetBatchNorm(C, relu, x, scale, offset, y, mean, variance, r)
 *   resnetBatchNormGrad(C, relu, dy, x, y, mean, r, scale, dx, dScale, dOffset)
 *   resnetMaxPoolGrad(b, h, w, c, x, y, dy, dx)
 */
#include <math.h>
#include <stdlib.h>
#include "lopt_napi.h"

#define ARGS(n)                                      \
  size_t argc = n;                                   \
  napi_value a[n];                                   \
  napi_get_cb_info(env, info, &argc, a, NULL, NULL); \
  if (argc != n) return lopt_fail(env, "resnet kernels: wrong number of arguments");

static int get_f32(napi_env env, napi_value v, float **p, size_t want) {
  size_t len;
  return lopt_f32(env, v, p, &len) && len == want;
}

/*
 * Batch norm forward over x [n / c, c]: y (relu'd when `relu`), mean, variance and r =
 * rsqrt(variance + eps) [c]; s: 3c doubles of scratch.
 */
static void bn_forward(size_t n, int c, int relu, const float *x, const float *scale, const float *offset, float *y, float *mean, float *variance,
                       float *rOut, double *s) {
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
    for (int ch = 0; ch < c; ch++) {
      const double v = ((double)x[p + ch] - (double)mean[ch]) * inv[ch] + (double)offset[ch];
      y[p + ch] = relu && v < 0 ? 0.0f : (float)v;
    }
}

/*
 * Batch norm backward: dx [n / c, c] (written, or added to when `acc`), d scale and d offset [c]
 * (written); s: 5c doubles of scratch.
 */
static void bn_backward(size_t n, int c, int relu, const float *dy, const float *x, const float *y, const float *mean, const float *r, const float *scale,
                        float *dx, float *dScale, float *dOffset, int acc, double *s) {
  const size_t m = n / c;
  double *sg = s, *sgx = s + c, *av = s + 2 * c, *meanG = s + 3 * c, *k = s + 4 * c;
  for (int ch = 0; ch < c; ch++) sg[ch] = sgx[ch] = 0.0;
  for (size_t p = 0; p < n; p += c)
    for (int ch = 0; ch < c; ch++) {
      if (relu && !(y[p + ch] > 0)) continue;
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
      const double g = relu && !(y[p + ch] > 0) ? 0.0 : (double)dy[p + ch];
      const float v = (float)(av[ch] * (g - meanG[ch] - ((double)x[p + ch] - (double)mean[ch]) * k[ch]));
      dx[p + ch] = acc ? dx[p + ch] + v : v;
    }
}

/* SAME padding of a 3-wide stride-2 window along an axis of length n: the padding before. */
static int pool_before(int n) {
  const int o = (n + 1) / 2, t = (o - 1) * 2 + 3 - n;
  return (t > 0 ? t : 0) / 2;
}

/*
 * The input gradient of the 3x3 stride-2 SAME max pool of x [b, h, w, c] with output y: each
 * window's dy is added to dx at the first element (column, then row) equal to the maximum.
 */
static void maxpool_backward(int b, int h, int w, int c, const float *x, const float *y, const float *dy, float *dx) {
  const int oh = (h + 1) / 2, ow = (w + 1) / 2, beforeH = pool_before(h), beforeW = pool_before(w);
  size_t cand[9];
  for (int bi = 0; bi < b; bi++)
    for (int i = 0; i < oh; i++) {
      const int r0 = 2 * i - beforeH < 0 ? 0 : 2 * i - beforeH, r1 = 2 * i - beforeH + 2 > h - 1 ? h - 1 : 2 * i - beforeH + 2;
      for (int j = 0; j < ow; j++) {
        const int c0 = 2 * j - beforeW < 0 ? 0 : 2 * j - beforeW, c1 = 2 * j - beforeW + 2 > w - 1 ? w - 1 : 2 * j - beforeW + 2;
        /* the window's elements in priority order: column, then row */
        int nc = 0;
        for (int cc = c0; cc <= c1; cc++)
          for (int rr = r0; rr <= r1; rr++) cand[nc++] = (((size_t)bi * h + rr) * w + cc) * c;
        const size_t k = (((size_t)bi * oh + i) * ow + j) * c;
        for (int ch = 0; ch < c; ch++) {
          const float yv = y[k + ch];
          for (int t = 0; t < nc; t++)
            if (x[cand[t] + ch] == yv) {
              dx[cand[t] + ch] += dy[k + ch];
              break;
            }
        }
      }
    }
}

static napi_value ResnetBatchNorm(napi_env env, napi_callback_info info) {
  ARGS(9)
  int32_t c;
  bool relu;
  float *x, *scale, *offset, *y, *mean, *variance, *rOut;
  size_t n;
  if (napi_get_value_int32(env, a[0], &c) != napi_ok || c < 1 || napi_get_value_bool(env, a[1], &relu) != napi_ok || !lopt_f32(env, a[2], &x, &n) || n % c)
    return lopt_fail(env, "resnetBatchNorm: C, relu, x [M, C]");
  if (!get_f32(env, a[3], &scale, c) || !get_f32(env, a[4], &offset, c) || !get_f32(env, a[5], &y, n) || !get_f32(env, a[6], &mean, c) ||
      !get_f32(env, a[7], &variance, c) || !get_f32(env, a[8], &rOut, c))
    return lopt_fail(env, "resnetBatchNorm: scale, offset [C], y [M, C], mean, variance, r [C]");
  double *s = malloc(3 * (size_t)c * sizeof(double));
  if (!s) return lopt_fail(env, "resnetBatchNorm: out of memory");
  bn_forward(n, c, relu, x, scale, offset, y, mean, variance, rOut, s);
  free(s);
  return NULL;
}

static napi_value ResnetBatchNormGrad(napi_env env, napi_callback_info info) {
  ARGS(11)
  int32_t c;
  bool relu;
  float *dy, *x, *y, *mean, *r, *scale, *dx, *dScale, *dOffset;
  size_t n;
  if (napi_get_value_int32(env, a[0], &c) != napi_ok || c < 1 || napi_get_value_bool(env, a[1], &relu) != napi_ok || !lopt_f32(env, a[3], &x, &n) || n % c)
    return lopt_fail(env, "resnetBatchNormGrad: C, relu, dy, x [M, C]");
  if (!get_f32(env, a[2], &dy, n) || !get_f32(env, a[4], &y, n) || !get_f32(env, a[5], &mean, c) || !get_f32(env, a[6], &r, c) || !get_f32(env, a[7], &scale, c) ||
      !get_f32(env, a[8], &dx, n) || !get_f32(env, a[9], &dScale, c) || !get_f32(env, a[10], &dOffset, c))
    return lopt_fail(env, "resnetBatchNormGrad: dy, y, dx [M, C]; mean, r, scale, dScale, dOffset [C]");
  double *s = malloc(5 * (size_t)c * sizeof(double));
  if (!s) return lopt_fail(env, "resnetBatchNormGrad: out of memory");
  bn_backward(n, c, relu, dy, x, y, mean, r, scale, dx, dScale, dOffset, 0, s);
  free(s);
  return NULL;
}

static napi_value ResnetMaxPoolGrad(napi_env env, napi_callback_info info) {
  ARGS(8)
  int32_t d[4];
  for (int i = 0; i < 4; i++)
    if (napi_get_value_int32(env, a[i], &d[i]) != napi_ok || d[i] < 1) return lopt_fail(env, "resnetMaxPoolGrad: b, h, w, c");
  const int b = d[0], h = d[1], w = d[2], c = d[3];
  const int oh = (h + 1) / 2, ow = (w + 1) / 2;
  float *x, *y, *dy, *dx;
  const size_t nx = (size_t)b * h * w * c, ny = (size_t)b * oh * ow * c;
  if (!get_f32(env, a[4], &x, nx) || !get_f32(env, a[5], &y, ny) || !get_f32(env, a[6], &dy, ny) || !get_f32(env, a[7], &dx, nx))
    return lopt_fail(env, "resnetMaxPoolGrad: x, dx [b, h, w, c]; y, dy [b, ceil(h/2), ceil(w/2), c]");
  for (size_t i = 0; i < nx; i++) dx[i] = 0;
  maxpool_backward(b, h, w, c, x, y, dy, dx);
  return NULL;
}

#include "resnet_net.h"

NAPI_MODULE_INIT() {
  lopt_export(env, exports, "resnetBatchNorm", ResnetBatchNorm);
  lopt_export(env, exports, "resnetBatchNormGrad", ResnetBatchNormGrad);
  lopt_export(env, exports, "resnetMaxPoolGrad", ResnetMaxPoolGrad);
  lopt_export(env, exports, "resnetNetValueAndGrad", ResnetNetValueAndGrad);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  return exports;
}
