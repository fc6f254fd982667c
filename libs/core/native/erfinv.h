/*
 * Normal draws from uniform ones, as random.ts `normalArray` / `truncatedNormalArray` compute them
 * (jax.random.normal: √2 · erfinv(u)). erfinv is Giles' single-precision polynomial as XLA
 * evaluates it (random.ts `erfinv`), written with the same float64 operations and the same
 * roundings to float32 as the JavaScript, so the two give the same bits (normal_native.test.ts);
 * the JavaScript stays the reference.
 */
static const float ERFINV_LT5[9] = {2.81022636e-8f, 3.43273939e-7f, -3.5233877e-6f, -4.39150654e-6f, 0.00021858087f,
                                    -0.00125372503f, -0.00417768164f, 0.246640727f, 1.50140941f};
static const float ERFINV_GE5[9] = {-0.000200214257f, 0.000100950558f, 0.00134934322f, -0.00367342844f, 0.00573950773f,
                                    -0.0076224613f, 0.00943887047f, 1.00167406f, 2.83297682f};

static float lopt_erfinv32(float x) {
  /* every intermediate is a double rounded to float where the JavaScript calls Math.fround */
  float w = (float)(-log1p(-(double)(float)((double)x * (double)x)));
  const float *c;
  if (w < 5.f) {
    w = (float)((double)w - 2.5);
    c = ERFINV_LT5;
  } else {
    w = (float)((double)(float)sqrt((double)w) - 3.0);
    c = ERFINV_GE5;
  }
  float p = c[0];
  for (int i = 1; i < 9; i++) p = (float)((double)c[i] + (double)(float)((double)p * (double)w));
  return fabsf(x) == 1.f ? x * INFINITY : (float)((double)p * (double)x);
}

/*
 * out[i] = √2 · erfinv(u[i]) in float32, then JavaScript's Math.min(hi, Math.max(lo, v)) (±Infinity:
 * no bound): NaN stays NaN, and of two zeros max takes +0 and min -0.
 */
static void lopt_normal_from_uniform(const float *u, float *out, size_t n, float lo, float hi) {
  const double sqrt2 = (double)(float)1.4142135623730951;
  for (size_t i = 0; i < n; i++) {
    float v = (float)(sqrt2 * (double)lopt_erfinv32(u[i]));
    if (v < lo || (v == lo && !signbit(lo))) v = lo;
    if (v > hi || (v == hi && signbit(hi))) v = hi;
    out[i] = v;
  }
}
