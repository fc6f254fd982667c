/*
 * Shared by lopt-ts's native addons (libs/<lib>/native): N-API argument helpers that name the bad
 * argument, and the per-instruction-set build of a kernel.
 *
 * A kernel file is compiled once per instruction set on x86-64 (GCC/Clang) and picked at run time:
 * AVX-512VL (32 vector registers), AVX2+FMA, and the baseline, so a binary built on one machine
 * stays safe on an older one. An addon includes its kernel header three times:
 *
 *   #define LOPT_KERNEL_HEADER "my_kernel.h"   (defines static functions named KERNEL(name))
 *   #include "lopt_isa.h"                        (after this file)
 *
 * and gets my_fn_avx512 / my_fn_avx2 / my_fn_base. `lopt_variants()` lists what this CPU runs.
 */
#ifndef LOPT_NAPI_H
#define LOPT_NAPI_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define LOPT_MAX_VARIANTS 3

/* Names of the variants this CPU runs, best first; returns how many (index 0 is the default). */
static inline int lopt_variants(const char *names[LOPT_MAX_VARIANTS]) {
  int n = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) names[n++] = "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) names[n++] = "avx2";
#endif
  names[n++] = "base";
  return n;
}

static inline napi_value lopt_fail(napi_env env, const char *msg) {
  napi_throw_error(env, "LOPT_NATIVE", msg);
  return NULL;
}

static inline int lopt_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want) return 0;
  return 1;
}

static inline int lopt_f32(napi_env env, napi_value v, float **data, size_t *len) {
  return lopt_typed(env, v, napi_float32_array, (void **)data, len);
}

static inline int lopt_i32(napi_env env, napi_value v, int32_t **data, size_t *len) {
  return lopt_typed(env, v, napi_int32_array, (void **)data, len);
}

/* Element i of a JS array of Float32Array. */
static inline int lopt_f32_at(napi_env env, napi_value arr, uint32_t i, float **data, size_t *len) {
  napi_value el;
  if (napi_get_element(env, arr, i, &el) != napi_ok) return 0;
  return lopt_f32(env, el, data, len);
}

/* The optional variant argument: undefined -> 0 (the best), else the index of that name among
 * this CPU's variants; -1 if it is not one of them. */
static inline int lopt_variant_arg(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 0;
  char name[16] = {0};
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok) return -1;
  const char *names[LOPT_MAX_VARIANTS];
  const int n = lopt_variants(names);
  for (int i = 0; i < n; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

/*
 * A kernel call's arguments: n of them, then an optional variant name. Fills a[0..n] (a holds
 * n + 1) and returns the index of the variant to run (0 without a name); on a wrong number of
 * arguments, or a name this CPU does not run, throws "<name>: ..." and returns -1.
 */
static inline int lopt_kernel_args(napi_env env, napi_callback_info info, const char *name, size_t n, napi_value *a) {
  size_t argc = n + 1;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char msg[160];
  if (argc != n && argc != n + 1) {
    snprintf(msg, sizeof msg, "%s: expected %zu arguments and an optional variant name", name, n);
    lopt_fail(env, msg);
    return -1;
  }
  const int variant = argc == n + 1 ? lopt_variant_arg(env, a[n]) : 0;
  if (variant < 0) {
    snprintf(msg, sizeof msg, "%s: variant not supported on this CPU (see kernelVariants())", name);
    lopt_fail(env, msg);
  }
  return variant;
}

/* kernelVariants(): the names of the variants this CPU runs, best (the default) first. */
static napi_value lopt_kernel_variants(napi_env env, napi_callback_info info) {
  (void)info;
  const char *names[LOPT_MAX_VARIANTS];
  const int n = lopt_variants(names);
  napi_value arr, s;
  napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n; i++) {
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

static inline void lopt_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  napi_set_named_property(env, exports, name, f);
}

#endif
