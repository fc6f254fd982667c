/*
 * One MLPLOpt update (spec §6.2) for N stacked tasks, fused into a single pass per leaf:
 * momenta, per-leaf second-moment normalisation, the 19 -> 32 -> 32 -> 2 MLP and the step.
 * The tf.js path needs ~45 kernels and three layout transposes for the same arithmetic; here the
 * hidden activations of a block of rows stay in registers and never go to memory.
 *
 * Called from JavaScript (src/native.ts) with Float32Array views over the backend's own memory
 * (the wasm heap or the cpu backend's arrays): nothing is copied in or out.
 *
 *   mlpLoptStep(N, perTask, p[], g[], m[], pOut[], mOut[], theta[6], iteration, decays,
 *               timeScales, expMult, stepMult[, variant])
 *   kernelVariants() -> e.g. ['avx512', 'avx2', 'base']: what this CPU runs, the default first
 *
 * p[i], g[i], pOut[i]: leaf i of all tasks, [N, S_i]; m[i], mOut[i]: [N, S_i, 6];
 * theta = [w0 [19,32], b0 [32], w1 [32,32], b1 [32], w2 [32,2], b2 [2]], each with a leading [N]
 * when perTask; iteration: Int32Array [N] (the pre-increment counters); decays: Float32Array [6];
 * timeScales: Float32Array [11].
 *
 * Written with GCC/Clang vector extensions (8 x float), so the compiler picks AVX2/FMA, SSE or
 * NEON for the machine it is built on. Only the seed's shape (hidden size 32, two hidden layers)
 * is compiled; the JavaScript side uses the tf.js path for any other.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

#define F 8   /* g, p and six momenta */
#define T 11  /* tanh time features */
#define K 6   /* momentum decays */
#define H 32  /* hidden width */
#define Q (H / 8)
#define R 4   /* rows per block */

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* θ of one task copied to aligned locals (the heap views need not be 32-byte aligned). */
typedef struct {
  v8f row0[Q];     /* b0 + time @ W0[F:]: the time features are the same for every row */
  v8f w0[F][Q];
  v8f w1[H][Q];
  v8f b1[Q];
  v8f w2t[2][Q];   /* W2 transposed: one row per output */
  float b2[2];
} TaskWeights;

static void load_task(TaskWeights *tw, const float *w0, const float *b0, const float *w1, const float *b1,
                      const float *w2, const float *b2, int32_t iteration, const float *timeScales) {
  float row0[H], tfeat[T];
  for (int q = 0; q < T; q++) tfeat[q] = tanhf((float)iteration / timeScales[q] - 1.f);
  for (int j = 0; j < H; j++) {
    float acc = b0[j];
    for (int q = 0; q < T; q++) acc += tfeat[q] * w0[(F + q) * H + j];
    row0[j] = acc;
  }
  memcpy(tw->row0, row0, sizeof row0);
  memcpy(tw->w0, w0, sizeof tw->w0);
  memcpy(tw->w1, w1, sizeof tw->w1);
  memcpy(tw->b1, b1, sizeof tw->b1);
  float w2t[2][H];
  for (int c = 0; c < H; c++) {
    w2t[0][c] = w2[c * 2];
    w2t[1][c] = w2[c * 2 + 1];
  }
  memcpy(tw->w2t, w2t, sizeof w2t);
  tw->b2[0] = b2[0];
  tw->b2[1] = b2[1];
}

/* The kernel compiled once per instruction set on x86-64 (GCC/Clang) and picked at run time:
 * AVX-512VL (32 vector registers: the row block's activations need no spills), AVX2+FMA, and the
 * baseline; a binary built on one machine stays safe on an older one. */
#if defined(__x86_64__) && defined(__GNUC__)
#define KERNEL(name) name##_avx512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#include "mlp_lopt_kernel.h"
#pragma GCC pop_options
#undef KERNEL
#define KERNEL(name) name##_avx2
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "mlp_lopt_kernel.h"
#pragma GCC pop_options
#undef KERNEL
#define HAVE_X86_KERNELS 1
#endif
#define KERNEL(name) name##_base
#include "mlp_lopt_kernel.h"
#undef KERNEL

typedef void (*LeafStepFn)(const TaskWeights *, int64_t, const float *, const float *, const float *, float *, float *,
                           const float *, float, float);

typedef struct {
  const char *name;
  LeafStepFn fn;
} Variant;

/* The variants this CPU can run, best first. */
static int supported_variants(Variant out[3]) {
  int n = 0;
#ifdef HAVE_X86_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) out[n++] = (Variant){"avx512", leaf_step_avx512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = (Variant){"avx2", leaf_step_avx2};
#endif
  out[n++] = (Variant){"base", leaf_step_base};
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * N-API glue: argument checks with messages that name the argument. */

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, "LOPT_NATIVE", msg);
  return NULL;
}

static int get_f32(napi_env env, napi_value v, float **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_float32_array) return 0;
  *data = (float *)ptr;
  return 1;
}

static int get_f32_at(napi_env env, napi_value arr, uint32_t i, float **data, size_t *len) {
  napi_value el;
  if (napi_get_element(env, arr, i, &el) != napi_ok) return 0;
  return get_f32(env, el, data, len);
}

#define MAX_LEAVES 4096

typedef struct {
  float **p, **g, **m, **pOut, **mOut;
  int64_t *size;
} LeafTable;

static int leaf_table_alloc(LeafTable *t, uint32_t L) {
  void **block = calloc(5 * (size_t)L + 1, sizeof(void *));
  t->size = calloc((size_t)L + 1, sizeof(int64_t));
  if (!block || !t->size) return free(block), free(t->size), 0;
  t->p = (float **)block;
  t->g = t->p + L;
  t->m = t->g + L;
  t->pOut = t->m + L;
  t->mOut = t->pOut + L;
  return 1;
}

static void leaf_table_free(LeafTable *t) {
  free(t->p);
  free(t->size);
}

static napi_value MlpLoptStep(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value a[14];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc != 13 && argc != 14) return fail(env, "mlpLoptStep: expected 13 arguments and an optional variant name");
  Variant variants[3];
  const int numVariants = supported_variants(variants);
  LeafStepFn leaf_step = variants[0].fn;
  napi_valuetype vt = napi_undefined;
  if (argc == 14) napi_typeof(env, a[13], &vt);
  if (vt != napi_undefined) {
    char name[16] = {0};
    size_t nameLen = 0;
    if (napi_get_value_string_utf8(env, a[13], name, sizeof name, &nameLen) != napi_ok) return fail(env, "mlpLoptStep: variant must be a string");
    leaf_step = NULL;
    for (int i = 0; i < numVariants; i++)
      if (strcmp(name, variants[i].name) == 0) leaf_step = variants[i].fn;
    if (!leaf_step) return fail(env, "mlpLoptStep: variant not supported on this CPU (see kernelVariants())");
  }
  int32_t N;
  bool perTask;
  double expMult, stepMult;
  if (napi_get_value_int32(env, a[0], &N) != napi_ok || N < 1) return fail(env, "mlpLoptStep: N must be a positive integer");
  if (napi_get_value_bool(env, a[1], &perTask) != napi_ok) return fail(env, "mlpLoptStep: perTask must be a boolean");
  if (napi_get_value_double(env, a[11], &expMult) != napi_ok || napi_get_value_double(env, a[12], &stepMult) != napi_ok)
    return fail(env, "mlpLoptStep: expMult and stepMult must be numbers");
  uint32_t L = 0, Lk;
  if (napi_get_array_length(env, a[2], &L) != napi_ok || L > MAX_LEAVES) return fail(env, "mlpLoptStep: p must be an array of Float32Array");
  for (int k = 3; k <= 6; k++) {
    if (napi_get_array_length(env, a[k], &Lk) != napi_ok || Lk != L) return fail(env, "mlpLoptStep: p, g, m, pOut and mOut must have one entry per leaf");
  }
  float *th[6];
  size_t thLen[6];
  const size_t thSize[6] = {(F + T) * H, H, H * H, H, H * 2, 2};
  const size_t reps = perTask ? (size_t)N : 1;
  for (uint32_t k = 0; k < 6; k++) {
    if (!get_f32_at(env, a[7], k, &th[k], &thLen[k]) || thLen[k] != reps * thSize[k])
      return fail(env, "mlpLoptStep: theta must be 6 Float32Arrays [w0 [19,32], b0 [32], w1 [32,32], b1 [32], w2 [32,2], b2 [2]], with a leading N when perTask");
  }
  void *itPtr;
  size_t itLen;
  napi_typedarray_type itType;
  bool isTa = false;
  if (napi_is_typedarray(env, a[8], &isTa) != napi_ok || !isTa ||
      napi_get_typedarray_info(env, a[8], &itType, &itLen, &itPtr, NULL, NULL) != napi_ok || itType != napi_int32_array || itLen != (size_t)N)
    return fail(env, "mlpLoptStep: iteration must be an Int32Array of length N");
  float *decays, *timeScales;
  size_t dLen, tLen;
  if (!get_f32(env, a[9], &decays, &dLen) || dLen != K) return fail(env, "mlpLoptStep: decays must be a Float32Array of length 6");
  if (!get_f32(env, a[10], &timeScales, &tLen) || tLen != T) return fail(env, "mlpLoptStep: timeScales must be a Float32Array of length 11");

  /* Per call, not static: worker threads call this concurrently. */
  LeafTable tab;
  if (!leaf_table_alloc(&tab, L)) return fail(env, "mlpLoptStep: out of memory");
  float **P = tab.p, **G = tab.g, **M = tab.m, **PO = tab.pOut, **MO = tab.mOut;
  int64_t *S = tab.size;
  for (uint32_t i = 0; i < L; i++) {
    size_t lp, lg, lm, lpo, lmo;
    if (!get_f32_at(env, a[2], i, &P[i], &lp) || !get_f32_at(env, a[3], i, &G[i], &lg) || !get_f32_at(env, a[4], i, &M[i], &lm) ||
        !get_f32_at(env, a[5], i, &PO[i], &lpo) || !get_f32_at(env, a[6], i, &MO[i], &lmo))
      return leaf_table_free(&tab), fail(env, "mlpLoptStep: every entry of p, g, m, pOut and mOut must be a Float32Array");
    if (lp % (size_t)N != 0 || lg != lp || lpo != lp || lm != lp * K || lmo != lm)
      return leaf_table_free(&tab), fail(env, "mlpLoptStep: leaf sizes disagree (p, g, pOut: [N, S]; m, mOut: [N, S, 6])");
    S[i] = (int64_t)(lp / (size_t)N);
  }
  const int32_t *iteration = (const int32_t *)itPtr;
  TaskWeights tw __attribute__((aligned(32)));
  for (int32_t n = 0; n < N; n++) {
    const size_t o = perTask ? (size_t)n : 0;
    load_task(&tw, th[0] + o * thSize[0], th[1] + o * thSize[1], th[2] + o * thSize[2], th[3] + o * thSize[3],
              th[4] + o * thSize[4], th[5] + o * thSize[5], iteration[n], timeScales);
    for (uint32_t i = 0; i < L; i++) {
      const int64_t s = S[i];
      leaf_step(&tw, s, P[i] + n * s, G[i] + n * s, M[i] + n * s * K, PO[i] + n * s, MO[i] + n * s * K, decays, (float)expMult,
                (float)stepMult);
    }
  }
  leaf_table_free(&tab);
  return NULL;
}

/* kernelVariants(): the names of the variants this CPU runs, best (the default) first. */
static napi_value KernelVariants(napi_env env, napi_callback_info info) {
  (void)info;
  Variant variants[3];
  const int n = supported_variants(variants);
  napi_value arr, s;
  napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n; i++) {
    napi_create_string_utf8(env, variants[i].name, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "mlpLoptStep", NAPI_AUTO_LENGTH, MlpLoptStep, NULL, &fn);
  napi_set_named_property(env, exports, "mlpLoptStep", fn);
  napi_create_function(env, "kernelVariants", NAPI_AUTO_LENGTH, KernelVariants, NULL, &fn);
  napi_set_named_property(env, exports, "kernelVariants", fn);
  return exports;
}
