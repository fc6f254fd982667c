/*
 * e^x and ln x in double precision, branch-free so that loops calling them vectorise; compiled
 * once per instruction set with the kernel header that includes it (KERNEL(name), lopt_isa.h), so
 * it has no include guard. Used by the elementwise kernels (unary_kernel.h) and the image-MLP
 * kernel's softmax (libs/tasks/native/image_mlp_kernel.h).
 */

static inline uint64_t KERNEL(bits_d)(double x) {
  uint64_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}

static inline double KERNEL(from_bits_d)(uint64_t u) {
  double x;
  __builtin_memcpy(&x, &u, sizeof x);
  return x;
}

static inline uint32_t KERNEL(bits_f)(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}

static inline float KERNEL(from_bits_f)(uint32_t u) {
  float x;
  __builtin_memcpy(&x, &u, sizeof x);
  return x;
}

/*
 * e^x for x in [-104, 89] (callers clamp; NaN passes through as NaN): x = n·ln2 + r with n the
 * nearest integer to x/ln2 (the 1.5·2^52 shifter rounds and leaves n in the low bits), |r| <= ln2/2,
 * e^r by its Taylor polynomial to degree 11 (truncation < 2e-15 relative), times 2^n built in the
 * exponent field. Relative error ~1e-15, far below a float ulp.
 */
static inline double KERNEL(exp_d)(double x) {
  const double shifter = 0x1.8p52;
  const double t = x * 0x1.71547652b82fep0 + shifter;
  const double n = t - shifter;
  const double r = (x - n * 0x1.62e42fee00000p-1) - n * 0x1.a39ef35793c76p-33;
  double p = 1.0 / 39916800;
  p = p * r + 1.0 / 3628800;
  p = p * r + 1.0 / 362880;
  p = p * r + 1.0 / 40320;
  p = p * r + 1.0 / 5040;
  p = p * r + 1.0 / 720;
  p = p * r + 1.0 / 120;
  p = p * r + 1.0 / 24;
  p = p * r + 1.0 / 6;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  /* n in [-151, 129]: n + 1023 is a normal exponent; the low 12 bits of t's pattern hold n mod 4096 */
  const double scale = KERNEL(from_bits_d)((KERNEL(bits_d)(t) + 1023) << 52);
  return p * scale;
}

/*
 * ln(x) for a positive finite double x >= 2^-150 (callers select the results for 0, negative,
 * infinite and NaN inputs): x = 2^e·m with m in [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1),
 * |s| <= 0.1716, by its odd series to s^17 (truncation < 1e-14 relative).
 */
static inline double KERNEL(log_d)(double x) {
  const uint64_t sqrt_half = 0x3fe6a09e667f3bcdULL; /* √½ */
  /* 2^11 more in the exponent keeps the difference positive for any x >= 2^-150 */
  const uint64_t u = KERNEL(bits_d)(x) - sqrt_half + (2048ULL << 52);
  const double e = KERNEL(from_bits_d)((u >> 52) | 0x4330000000000000ULL) - 0x1p52 - 2048.0;
  const double m = KERNEL(from_bits_d)((u & 0x000fffffffffffffULL) + sqrt_half);
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 2.0 / 17;
  p = p * s2 + 2.0 / 15;
  p = p * s2 + 2.0 / 13;
  p = p * s2 + 2.0 / 11;
  p = p * s2 + 2.0 / 9;
  p = p * s2 + 2.0 / 7;
  p = p * s2 + 2.0 / 5;
  p = p * s2 + 2.0 / 3;
  p = p * s2 + 2.0;
  return e * 0x1.62e42fefa39efp-1 + s * p;
}
