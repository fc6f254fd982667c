/*
 * @lopt/core's native addon (lopt_core.node), called from JavaScript with views of the backend's
 * memory (the wasm heap, the cpu backend's arrays):
 *
 *   unary(op, x, y[, variant])
 *     Elementwise float32 kernels for the wasm backend (src/wasm_unary_kernels.ts registers them
 *     in place of tfjs-backend-wasm 4.22's Tanh, Exp, Log, Softplus, Expm1, Log1p, Sqrt, Rsqrt,
 *     Sign, Sin and Cos, which run as scalar libm loops at 2-44 ns a value). Vectorised per instruction set
 *     (unary_kernel.h, lopt_isa.h). op: the op's index (OP_* below); x, y: Float32Array of one
 *     length (y is written; they must not overlap).
 *   im2colT(g, x, colsT), col2im(g, cols, dx)
 *     The patch copies of the conv backprop kernels (conv_cols.h; src/wasm_conv_kernels.ts).
 *   minmax(isMax, a, b, y[, variant])
 *     tfjs-backend-wasm's Maximum / Minimum (std::max / std::min, the same NaN behaviour) for one
 *     operand of one value or both of y's length (src/wasm_unary_kernels.ts).
 *   pow(a, b, y[, variant])
 *     tfjs-backend-wasm's Pow (C's powf, its special cases included), a or b broadcast as for minmax.
 *   reduceMiddle(x, out, outer, R, inner, mean)
 *     Sum (mean: / R) of x viewed as [outer, R, inner] over its middle axis (src/wasm_reduce_kernels.ts).
 */
#include <float.h>
#include <math.h>
#include "lopt_napi.h"

/* The op codes OP_* are unary_kernel.h's. */

#define LOPT_KERNEL_HEADER "unary_kernel.h"
#include "lopt_isa.h"
#include "conv_cols.h"

typedef void (*UnaryFn)(int, const float *, float *, size_t, float);
typedef void (*MinMaxFn)(int, const float *, size_t, const float *, size_t, float *, size_t);
typedef void (*PowFn)(const float *, size_t, const float *, size_t, float *, size_t);

/* tfjs-backend-wasm's Softplus threshold: logf(FLT_EPSILON) + 2.0, stored as a float. */
static float softplus_threshold(void) {
  static float t = 0.0f;
  if (t == 0.0f) t = (float)((double)logf(FLT_EPSILON) + 2.0);
  return t;
}

static napi_value Unary(napi_env env, napi_callback_info info) {
  napi_value a[4];
  const int variant = lopt_kernel_args(env, info, "unary", 3, a); /* (op, x, y) */
  if (variant < 0) return NULL;
  const UnaryFn fn = (UnaryFn)LOPT_PICK(unary, variant);
  int32_t op;
  if (napi_get_value_int32(env, a[0], &op) != napi_ok || op < 0 || op >= OP_COUNT) return lopt_fail(env, "unary: op must be an op index");
  float *x, *y;
  size_t nx, ny;
  if (!lopt_f32(env, a[1], &x, &nx)) return lopt_fail(env, "unary: x must be a Float32Array");
  if (!lopt_f32(env, a[2], &y, &ny) || ny != nx) return lopt_fail(env, "unary: y must be a Float32Array of x's length");
  if (nx > 0 && x < y + ny && y < x + nx) return lopt_fail(env, "unary: x and y must not overlap");
  fn(op, x, y, nx, softplus_threshold());
  return NULL;
}

/* a, b, y (a and b of one value or y's length, y not overlapping them) from a[first..first + 2]. */
static int binary_args(napi_env env, napi_value *a, float **x, size_t *nx, float **z, size_t *nz, float **y, size_t *ny) {
  if (!lopt_f32(env, a[0], x, nx) || !lopt_f32(env, a[1], z, nz) || !lopt_f32(env, a[2], y, ny)) return 0;
  if (!((*nx == *ny || *nx == 1) && (*nz == *ny || *nz == 1)) || *ny == 0) return 0;
  if ((*x < *y + *ny && *y < *x + *nx) || (*z < *y + *ny && *y < *z + *nz)) return 0;
  return 1;
}

static napi_value MinMax(napi_env env, napi_callback_info info) {
  napi_value a[5];
  const int variant = lopt_kernel_args(env, info, "minmax", 4, a); /* (isMax, a, b, y) */
  if (variant < 0) return NULL;
  const MinMaxFn fn = (MinMaxFn)LOPT_PICK(minmax, variant);
  bool is_max;
  float *x, *z, *y;
  size_t nx, nz, ny;
  if (napi_get_value_bool(env, a[0], &is_max) != napi_ok) return lopt_fail(env, "minmax: isMax must be a boolean");
  if (!binary_args(env, a + 1, &x, &nx, &z, &nz, &y, &ny))
    return lopt_fail(env, "minmax: a, b and y must be Float32Arrays, a and b of one value or y's (non-zero) length, y not overlapping them");
  fn(is_max, x, nx, z, nz, y, ny);
  return NULL;
}

static napi_value Pow(napi_env env, napi_callback_info info) {
  napi_value a[4];
  const int variant = lopt_kernel_args(env, info, "pow", 3, a); /* (a, b, y) */
  if (variant < 0) return NULL;
  const PowFn fn = (PowFn)LOPT_PICK(powv, variant);
  float *x, *z, *y;
  size_t nx, nz, ny;
  if (!binary_args(env, a, &x, &nx, &z, &nz, &y, &ny))
    return lopt_fail(env, "pow: a, b and y must be Float32Arrays, a and b of one value or y's (non-zero) length, y not overlapping them");
  fn(x, nx, z, nz, y, ny);
  return NULL;
}

/* g: Int32Array [12] of the convolution's geometry (conv_cols.h); checks the arrays' lengths. */
static int conv_args(napi_env env, napi_value *a, int32_t **g, float **src, size_t *nsrc, float **dst, size_t *ndst) {
  size_t ng;
  if (!lopt_i32(env, a[0], g, &ng) || ng != 12) return 0;
  for (int k = 0; k < 12; k++)
    if ((*g)[k] < (k >= 10 ? 0 : 1)) return 0;
  return lopt_f32(env, a[1], src, nsrc) && lopt_f32(env, a[2], dst, ndst);
}

static napi_value Im2colT(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t *g;
  float *x, *cols;
  size_t nx, ncols;
  if (argc != 3 || !conv_args(env, a, &g, &x, &nx, &cols, &ncols)) return lopt_fail(env, "im2colT: expected (geometry Int32Array[12], x Float32Array, colsT Float32Array)");
  if (nx != (size_t)g[0] * g[1] * g[2] * g[3]) return lopt_fail(env, "im2colT: x must hold B·H·W·C values");
  if (ncols != (size_t)g[0] * g[4] * g[5] * g[6] * g[7] * g[3]) return lopt_fail(env, "im2colT: colsT must hold K·M values");
  im2col_t(g, x, cols);
  return NULL;
}

static napi_value Col2im(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t *g;
  float *cols, *dx;
  size_t ncols, ndx;
  if (argc != 3 || !conv_args(env, a, &g, &cols, &ncols, &dx, &ndx)) return lopt_fail(env, "col2im: expected (geometry Int32Array[12], cols Float32Array, dx Float32Array)");
  if (ncols != (size_t)g[0] * g[4] * g[5] * g[6] * g[7] * g[3]) return lopt_fail(env, "col2im: cols must hold M·K values");
  if (ndx != (size_t)g[0] * g[1] * g[2] * g[3]) return lopt_fail(env, "col2im: dx must hold B·H·W·C values");
  col2im(g, cols, dx);
  return NULL;
}

/*
 * out[o, i] = Σ_r x[o, r, i], summed in float from r = 0 up, as tfjs-backend-wasm's Sum (and Mean:
 * then / (float)R) sums each output after moving the reduced axes last (kernels/Sum.cc, Mean.cc):
 * the same additions in the same order, so the same values, without the transpose; vectorised
 * across i (each lane keeps its own order).
 */
static void reduce_middle(const float *restrict x, float *restrict out, size_t outer, size_t R, size_t inner, int mean) {
  for (size_t o = 0; o < outer; o++) {
    float *restrict acc = out + o * inner;
    const float *xo = x + o * R * inner;
    for (size_t i = 0; i < inner; i++) acc[i] = 0.0f;
    for (size_t r = 0; r < R; r++) {
      const float *restrict row = xo + r * inner;
      for (size_t i = 0; i < inner; i++) acc[i] += row[i];
    }
    if (mean) {
      const float d = (float)R;
      for (size_t i = 0; i < inner; i++) acc[i] = acc[i] / d;
    }
  }
}

static napi_value ReduceMiddle(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  float *x, *out;
  size_t nx, nout;
  int64_t outer, R, inner;
  bool mean;
  if (argc != 6 || !lopt_f32(env, a[0], &x, &nx) || !lopt_f32(env, a[1], &out, &nout) || napi_get_value_int64(env, a[2], &outer) != napi_ok ||
      napi_get_value_int64(env, a[3], &R) != napi_ok || napi_get_value_int64(env, a[4], &inner) != napi_ok || napi_get_value_bool(env, a[5], &mean) != napi_ok)
    return lopt_fail(env, "reduceMiddle: expected (x Float32Array, out Float32Array, outer, R, inner, mean boolean)");
  if (outer < 1 || R < 1 || inner < 1 || nx != (size_t)outer * R * inner || nout != (size_t)outer * inner)
    return lopt_fail(env, "reduceMiddle: x must hold outer·R·inner values and out outer·inner (all positive)");
  if (x < out + nout && out < x + nx) return lopt_fail(env, "reduceMiddle: x and out must not overlap");
  reduce_middle(x, out, (size_t)outer, (size_t)R, (size_t)inner, mean);
  return NULL;
}

#include <stdlib.h>
#include "permutation.h"
#include "erfinv.h"

/* randomBits(k0, k1, partitionable, out Uint32Array): jax.random.bits(key, out.length) into out. */
static napi_value RandomBits(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  uint32_t k0, k1;
  bool partitionable;
  void *out;
  size_t n;
  if (argc != 4 || napi_get_value_uint32(env, a[0], &k0) != napi_ok || napi_get_value_uint32(env, a[1], &k1) != napi_ok ||
      napi_get_value_bool(env, a[2], &partitionable) != napi_ok || !lopt_typed(env, a[3], napi_uint32_array, &out, &n))
    return lopt_fail(env, "randomBits: expected (k0, k1 uint32, partitionable boolean, out Uint32Array)");
  lopt_random_bits(k0, k1, n, partitionable, (uint32_t *)out);
  return NULL;
}

/* stableOrder(bits Uint32Array, order Int32Array): the indices sorted by bits, ties in index order. */
static napi_value StableOrder(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *bits;
  int32_t *order;
  size_t n, no;
  if (argc != 2 || !lopt_typed(env, a[0], napi_uint32_array, &bits, &n) || !lopt_i32(env, a[1], &order, &no) || no != n)
    return lopt_fail(env, "stableOrder: expected (bits Uint32Array, order Int32Array of the same length)");
  int32_t *tmp = malloc(n ? n * sizeof *tmp : 1);
  if (!tmp) return lopt_fail(env, "stableOrder: out of memory");
  lopt_stable_order((const uint32_t *)bits, n, order, tmp);
  free(tmp);
  return NULL;
}

/* normalFromUniform(u Float32Array, out Float32Array, lo, hi): out = clamp(√2 · erfinv(u), lo, hi) (erfinv.h). */
static napi_value NormalFromUniform(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  float *u, *out;
  size_t nu, no;
  double lo, hi;
  if (argc != 4 || !lopt_f32(env, a[0], &u, &nu) || !lopt_f32(env, a[1], &out, &no) || no != nu ||
      napi_get_value_double(env, a[2], &lo) != napi_ok || napi_get_value_double(env, a[3], &hi) != napi_ok)
    return lopt_fail(env, "normalFromUniform: expected (u Float32Array, out Float32Array of the same length, lo, hi numbers)");
  lopt_normal_from_uniform(u, out, nu, (float)lo, (float)hi);
  return NULL;
}

NAPI_MODULE_INIT() {
  lopt_export(env, exports, "normalFromUniform", NormalFromUniform);
  lopt_export(env, exports, "randomBits", RandomBits);
  lopt_export(env, exports, "stableOrder", StableOrder);
  lopt_export(env, exports, "reduceMiddle", ReduceMiddle);
  lopt_export(env, exports, "minmax", MinMax);
  lopt_export(env, exports, "pow", Pow);
  lopt_export(env, exports, "im2colT", Im2colT);
  lopt_export(env, exports, "col2im", Col2im);
  lopt_export(env, exports, "unary", Unary);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  return exports;
}
