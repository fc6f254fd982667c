/*
 * Elementwise float32 kernels, compiled once per instruction set (lopt_isa.h). Each loop body is
 * branch-free straight-line code (selects, no calls) so the compiler vectorises it; the
 * transcendental ones evaluate in double precision and round once to float, which gives the
 * correctly rounded float result except where the exact value lies within ~1e-13 (relative) of a
 * rounding boundary, i.e. what tfjs-backend-wasm's libm loops (expf, logf, tanhf, expm1f) return
 * up to a rare last-ulp difference.
 */

#ifndef LOPT_UNARY_OPS /* once, however many instruction sets (and files) include this */
#define LOPT_UNARY_OPS
/* Op codes (the order of WASM_UNARY_OPS in src/wasm_unary_kernels.ts). */
enum { OP_TANH, OP_EXP, OP_LOG, OP_SOFTPLUS, OP_EXPM1, OP_LOG1P, OP_SQRT, OP_RSQRT, OP_SIGN, OP_SIN, OP_COS, OP_COUNT };
#endif

#include "exp_log_kernel.h"

static inline float KERNEL(exp_f)(float x) {
  double d = (double)x;
  d = d < -104.0 ? -104.0 : d; /* e^-104 rounds to +0 in float, e^89 to +inf; NaN compares false */
  d = d > 89.0 ? 89.0 : d;
  return (float)KERNEL(exp_d)(d);
}

static inline float KERNEL(log_f)(float x) {
  const double d = (double)x;
  const double ok = d > 0.0 && d < 0x1p128 ? d : 1.0; /* keep log_d's input in range */
  const float y = (float)KERNEL(log_d)(ok);
  /* 0 -> -inf, +inf -> +inf, negative or NaN -> NaN */
  return x > 0.0f ? (x < __builtin_inff() ? y : x) : (x == 0.0f ? -__builtin_inff() : __builtin_nanf(""));
}

/* tanh: odd Taylor polynomial below 1/16, else 1 − 2/(e^{2|x|} + 1); |x| clamped at 10 (→ 1.0f). */
static inline float KERNEL(tanh_f)(float x) {
  double t = __builtin_fabs((double)x);
  t = t > 10.0 ? 10.0 : t;
  const double t2 = t * t;
  double p = -1382.0 / 155925;
  p = p * t2 + 62.0 / 2835;
  p = p * t2 - 17.0 / 315;
  p = p * t2 + 2.0 / 15;
  p = p * t2 - 1.0 / 3;
  const double small = t + t * t2 * p;
  const double large = 1.0 - 2.0 / (KERNEL(exp_d)(2.0 * t) + 1.0);
  const float r = (float)(t < 0.0625 ? small : large);
  return KERNEL(from_bits_f)(KERNEL(bits_f)(r) | (KERNEL(bits_f)(x) & 0x80000000u));
}

/* expm1: Taylor polynomial below 1/16 in magnitude, else e^x − 1 (x clamped to [-104, 89]). */
static inline float KERNEL(expm1_f)(float x) {
  double d = (double)x;
  d = d < -104.0 ? -104.0 : d;
  d = d > 89.0 ? 89.0 : d;
  double p = 1.0 / 3628800;
  p = p * d + 1.0 / 362880;
  p = p * d + 1.0 / 40320;
  p = p * d + 1.0 / 5040;
  p = p * d + 1.0 / 720;
  p = p * d + 1.0 / 120;
  p = p * d + 1.0 / 24;
  p = p * d + 1.0 / 6;
  p = p * d + 0.5;
  const double small = d * (1.0 + d * p); /* keeps -0 */
  const double large = KERNEL(exp_d)(d) - 1.0;
  return (float)(__builtin_fabs(d) < 0.0625 ? small : large);
}

/* tfjs-backend-wasm's Softplus (kernels/Softplus.cc): e^x below the threshold, x above its
 * negation, else log(1 + e^x) with e^x rounded to float first and the log taken in double. */
static inline float KERNEL(softplus_f)(float x, float threshold) {
  const float ex = KERNEL(exp_f)(x);
  const double mid = 1.0 + (double)ex; /* in [1, 1 + e^14] between the thresholds: log_d's range */
  const float lg = (float)KERNEL(log_d)(mid == mid ? mid : 1.0);
  return x < threshold ? ex : (x > -threshold || x != x ? x : lg);
}

/*
 * sin (want_cos = 0) or cos (1) of x for |x| < 2^19 (larger ones: unary() recomputes them with libm):
 * x = n·π/2 + r, |r| <= π/4, with π/2 in two parts (fdlibm's pio2_1, 33 bits, so n·pio2_1 is exact,
 * and pio2_1t), then the Taylor polynomial of sin r or cos r as the quadrant (n + want_cos) mod 4
 * says, and its sign.
 */
static inline float KERNEL(sincos_f)(float x, int want_cos) {
  const double d = (double)x;
  const double shifter = 0x1.8p52;
  const double t = d * 0x1.45f306dc9c883p-1 + shifter;
  const double n = t - shifter;
  const double r = (d - n * 0x1.921fb544p0) - n * 0x1.0b4611a626331p-34;
  const uint64_t q = KERNEL(bits_d)(t) + (uint64_t)want_cos;
  const double r2 = r * r;
  double ps = 1.0 / 6227020800;
  ps = ps * r2 - 1.0 / 39916800;
  ps = ps * r2 + 1.0 / 362880;
  ps = ps * r2 - 1.0 / 5040;
  ps = ps * r2 + 1.0 / 120;
  ps = ps * r2 - 1.0 / 6;
  const double sn = r * (1.0 + r2 * ps); /* keeps -0 */
  double pc = 1.0 / 479001600;
  pc = pc * r2 - 1.0 / 3628800;
  pc = pc * r2 + 1.0 / 40320;
  pc = pc * r2 - 1.0 / 720;
  pc = pc * r2 + 1.0 / 24;
  pc = pc * r2 - 0.5;
  const double cs = 1.0 + r2 * pc;
  const double v = (q & 1) ? cs : sn;
  return (float)((q & 2) ? -v : v);
}

/* tfjs-backend-wasm's Sign: 0 for NaN and for |x| < FLT_EPSILON, else ±1. */
static inline float KERNEL(sign_f)(float x) {
  const float eps = 0x1p-23f;
  return (x < eps && x > -eps) || x != x ? 0.0f : (x > 0.0f ? 1.0f : -1.0f);
}

static void KERNEL(unary)(int op, const float *restrict x, float *restrict y, size_t n, float softplus_threshold) {
  switch (op) {
    case OP_TANH:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(tanh_f)(x[i]);
      break;
    case OP_EXP:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(exp_f)(x[i]);
      break;
    case OP_LOG:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(log_f)(x[i]);
      break;
    case OP_SOFTPLUS:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(softplus_f)(x[i], softplus_threshold);
      break;
    case OP_EXPM1:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(expm1_f)(x[i]);
      break;
    case OP_LOG1P:
      /* tfjs-backend-wasm's Log1p is logf((float)(x + 1.0)) (kernels/Log1p.cc) */
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(log_f)((float)((double)x[i] + 1.0));
      break;
    case OP_SQRT:
      for (size_t i = 0; i < n; i++) y[i] = __builtin_sqrtf(x[i]);
      break;
    case OP_RSQRT:
      for (size_t i = 0; i < n; i++) y[i] = 1.0f / __builtin_sqrtf(x[i]);
      break;
    case OP_SIGN:
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(sign_f)(x[i]);
      break;
    case OP_SIN:
    case OP_COS: {
      const int want_cos = op == OP_COS;
      for (size_t i = 0; i < n; i++) y[i] = KERNEL(sincos_f)(x[i], want_cos);
      /* |x| >= 2^19, Inf and NaN: libm in double (rare in practice; correctly rounded to float) */
      for (size_t i = 0; i < n; i++)
        if (!(__builtin_fabsf(x[i]) < 0x1p19f)) y[i] = (float)(want_cos ? cos((double)x[i]) : sin((double)x[i]));
      break;
    }
  }
}

/*
 * tfjs-backend-wasm's Maximum / Minimum for float32 (kernels/Maximum.cc: std::max(a, b), which is
 * a < b ? b : a, so a NaN in a wins and one in b loses; Minimum: b < a ? b : a), where a or b is one
 * value broadcast (na or nb == 1) or both have n values.
 */
static void KERNEL(minmax)(int is_max, const float *restrict a, size_t na, const float *restrict b, size_t nb, float *restrict y, size_t n) {
  if (na == n && nb == n) {
    if (is_max)
      for (size_t i = 0; i < n; i++) y[i] = a[i] < b[i] ? b[i] : a[i];
    else
      for (size_t i = 0; i < n; i++) y[i] = b[i] < a[i] ? b[i] : a[i];
  } else if (nb == 1) {
    const float s = b[0];
    if (is_max)
      for (size_t i = 0; i < n; i++) y[i] = a[i] < s ? s : a[i];
    else
      for (size_t i = 0; i < n; i++) y[i] = s < a[i] ? s : a[i];
  } else {
    const float s = a[0];
    if (is_max)
      for (size_t i = 0; i < n; i++) y[i] = s < b[i] ? b[i] : s;
    else
      for (size_t i = 0; i < n; i++) y[i] = b[i] < s ? b[i] : s;
  }
}

/*
 * x^y as C's powf (tfjs-backend-wasm's Pow: kernels/Pow.cc, pow on floats), evaluated as
 * e^(y·ln|x|) in double and rounded once, with C99's special cases: y = ±0 or x = 1 → 1 (even
 * with NaN), NaN → NaN, a negative x with a non-integer y → NaN, the sign of x for odd integer y,
 * and the zero / infinite x and y cases by |x| against 1.
 */
static inline float KERNEL(pow_f)(float xf, float yf) {
  const double x = (double)xf, y = (double)yf;
  const double ax = __builtin_fabs(x), ay = __builtin_fabs(y);
  const double inf = __builtin_inf();
  const double shifter = 0x1.8p52;
  const double ty = y + shifter; /* y rounded to an integer, for |y| < 2^51 */
  /* floats of magnitude >= 2^24 are even integers; below, y is odd where the rounded y equals it
   * and its lowest bit is set */
  const double odd = ay < 0x1p24 && ty - shifter == y && (KERNEL(bits_d)(ty) & 1) ? 1.0 : 0.0;
  const double non_int = ay < 0x1p24 && ty - shifter != y ? 1.0 : 0.0;
  const double ok = ax > 0.0 && ax < 0x1p128 ? ax : 1.0; /* log_d's range */
  double e = y * KERNEL(log_d)(ok);
  e = e < -104.0 ? -104.0 : e;
  e = e > 89.0 ? 89.0 : e;
  double mag = KERNEL(exp_d)(e);
  /* |x| = 0 or Inf, or |y| = Inf: 0 or Inf by whether |x|^y grows (1 for |x| = 1) */
  const double edge = (ax == 0.0 || ax == inf || ay == inf) ? (ax == 1.0 ? 1.0 : ((ax > 1.0) == (y > 0.0) ? inf : 0.0)) : mag;
  /* a negative x (-0 included) with an odd y: -|x|^y */
  const double neg = KERNEL(from_bits_d)(KERNEL(bits_d)(edge) | (KERNEL(bits_d)(x) & 0x8000000000000000ULL));
  double r = odd == 1.0 ? neg : edge;
  const double neg_finite = x < 0.0 && ax != inf ? 1.0 : 0.0; /* (a form the vectoriser takes) */
  r = neg_finite * non_int == 1.0 ? __builtin_nan("") : r;
  r = x != x || y != y ? __builtin_nan("") : r;
  r = y == 0.0 || x == 1.0 ? 1.0 : r;
  return (float)r;
}

static void KERNEL(pow_n)(const float *restrict a, const float *restrict b, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = KERNEL(pow_f)(a[i], b[i]);
}

/* Pow for a or b of one value (broadcast: in blocks, from a filled buffer) or both of n values. */
static void KERNEL(powv)(const float *restrict a, size_t na, const float *restrict b, size_t nb, float *restrict y, size_t n) {
  if (na == n && nb == n) return KERNEL(pow_n)(a, b, y, n);
  float fill[256];
  for (size_t k = 0; k < 256; k++) fill[k] = na == n ? b[0] : a[0];
  for (size_t i = 0; i < n; i += 256) {
    const size_t m = n - i < 256 ? n - i : 256;
    if (na == n) KERNEL(pow_n)(a + i, fill, y + i, m);
    else KERNEL(pow_n)(fill, b + i, y + i, m);
  }
}
