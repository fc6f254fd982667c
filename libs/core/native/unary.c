/*
 * Elementwise float32 kernels for the wasm backend (src/wasm_unary_kernels.ts registers them in
 * place of tfjs-backend-wasm 4.22's Tanh, Exp, Log, Softplus, Expm1, Log1p, Sqrt, Rsqrt and Sign,
 * which run as scalar libm loops at 2-20 ns a value). Vectorised per instruction set
 * (unary_kernel.h, lopt_isa.h). Called from JavaScript with views of the wasm heap:
 *
 *   unary(op, x, y[, variant])
 *
 * op: the op's index (OP_* in unary_kernel.h); x, y: Float32Array of one length (y is written;
 * they must not overlap).
 */
#include <float.h>
#include <math.h>
#include "lopt_napi.h"

/* Op codes (the order of UNARY_OPS in src/wasm_unary_kernels.ts). */
enum { OP_TANH, OP_EXP, OP_LOG, OP_SOFTPLUS, OP_EXPM1, OP_LOG1P, OP_SQRT, OP_RSQRT, OP_SIGN, OP_COUNT };

#define LOPT_KERNEL_HEADER "unary_kernel.h"
#include "lopt_isa.h"

typedef void (*UnaryFn)(int, const float *, float *, size_t, float);

/* tfjs-backend-wasm's Softplus threshold: logf(FLT_EPSILON) + 2.0, stored as a float. */
static float softplus_threshold(void) {
  static float t = 0.0f;
  if (t == 0.0f) t = (float)((double)logf(FLT_EPSILON) + 2.0);
  return t;
}

static napi_value Unary(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc != 3 && argc != 4) return lopt_fail(env, "unary: expected 3 arguments (op, x, y) and an optional variant name");
  const UnaryFn fn = (UnaryFn)LOPT_PICK(unary, argc == 4 ? lopt_variant_arg(env, a[3]) : 0);
  if (!fn) return lopt_fail(env, "unary: variant not supported on this CPU (see kernelVariants())");
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

NAPI_MODULE_INIT() {
  lopt_export(env, exports, "unary", Unary);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  return exports;
}
