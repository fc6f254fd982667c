/*
 * The ResNet's native kernels (the addon lopt_resnet.node), called with views of the backend's
 * memory:
 *
 * - the host kernels of src/resnet_kernels.ts: training-mode batch norm (+ relu) forward and
 *   backward (resnet_bn.h), and the 3x3 stride-2 SAME max pool's input gradient. The same float64
 *   arithmetic as the JavaScript bodies there (sums in order over positions, one rounding to
 *   float32 per stored value; no FMA contraction), so the same values:
 *
 *   resnetBatchNorm(C, relu, x, scale, offset, y, mean, variance, r)
 *   resnetBatchNormGrad(C, relu, dy, x, y, mean, r, scale, dx, dScale, dOffset)
 *   resnetMaxPoolGrad(b, h, w, c, x, y, dy, dx)
 *
 * - the whole network in one call, forward, backward and moving averages (resnet_net.h):
 *
 *   resnetNetValueAndGrad(plan, N, B, x, label, params[], loss, grads[] | null, ...)
 *
 * - a plain convnet (conv + bias + activation layers, mean pool, linear head) in one call (conv_net.h):
 *
 *   convNetValueAndGrad(spec, acts, N, B, x, label, params[], loss, grads[] | null)
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

#include "resnet_bn.h"

/* SAME padding of a 3-wide stride-2 window along an axis of length n: the padding before. */
static int pool_before(int n) {
  const int o = (n + 1) / 2, t = (o - 1) * 2 + 3 - n;
  return (t > 0 ? t : 0) / 2;
}

/* The window of output (i, j) of image bi of that pool on an h x w x c map (padding beforeH,
 * beforeW): the offsets of its in-map elements' first channel, in the gradient rule's priority
 * order (column, then row); returns how many (at most 9). */
static inline int pool_window(int bi, int i, int j, int h, int w, int c, int beforeH, int beforeW, size_t cand[9]) {
  const int r0 = 2 * i - beforeH < 0 ? 0 : 2 * i - beforeH, r1 = 2 * i - beforeH + 2 > h - 1 ? h - 1 : 2 * i - beforeH + 2;
  const int c0 = 2 * j - beforeW < 0 ? 0 : 2 * j - beforeW, c1 = 2 * j - beforeW + 2 > w - 1 ? w - 1 : 2 * j - beforeW + 2;
  int nc = 0;
  for (int cc = c0; cc <= c1; cc++)
    for (int rr = r0; rr <= r1; rr++) cand[nc++] = (((size_t)bi * h + rr) * w + cc) * c;
  return nc;
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
  bn_backward(n, c, relu, dy, x, y, mean, r, scale, dx, dScale, dOffset, s);
  free(s);
  return NULL;
}

#include "resnet_net.h"
#include "conv_net.h"

typedef void (*MaxPoolGradFn)(int, int, int, int, const float *, const float *, const float *, float *, int32_t *);

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
  int32_t *found = malloc(sizeof(int32_t) * (size_t)c);
  if (!found) return lopt_fail(env, "resnetMaxPoolGrad: out of memory");
  ((MaxPoolGradFn)LOPT_PICK(maxpool_backward, 0))(b, h, w, c, x, y, dy, dx, found);
  free(found);
  return NULL;
}


NAPI_MODULE_INIT() {
  lopt_export(env, exports, "resnetBatchNorm", ResnetBatchNorm);
  lopt_export(env, exports, "resnetBatchNormGrad", ResnetBatchNormGrad);
  lopt_export(env, exports, "resnetMaxPoolGrad", ResnetMaxPoolGrad);
  lopt_export(env, exports, "resnetNetValueAndGrad", ResnetNetValueAndGrad);
  lopt_export(env, exports, "convNetValueAndGrad", ConvNetValueAndGrad);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  return exports;
}
