/*
 * One MLPLOpt update (reference `learned_optimizers/mlp_lopt.py`, the update of the optimizer that
 * `MLPLOpt.opt_fn` returns) for N stacked tasks, fused into a single pass per leaf:
 * momenta, per-leaf second-moment normalisation, the 19 -> 32 -> 32 -> 2 MLP and the step.
 * The tf.js path needs ~45 kernels and three layout transposes for the same arithmetic; here
 * parameters sit in the vector lanes and each layer's hidden units are accumulated a few at a
 * time in registers (mlp_lopt_kernel.h).
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
 * Written with GCC/Clang vector extensions (16 x float with AVX-512, 8 otherwise) and built per
 * instruction set (AVX-512VL, AVX2+FMA, baseline; ../../core/native/lopt_napi.h) with the best one
 * picked at run time.
 * Only the seed's shape (hidden size 32, two hidden layers) is compiled; the JavaScript side uses
 * the tf.js path for any other.
 */
#include <math.h>
#include "lopt_napi.h"

#define F 8   /* g, p and six momenta */
#define T 11  /* tanh time features */
#define K 6   /* momentum decays */
#define H 32  /* hidden width */
/* Parameters in the vector lanes: a tile is PG vectors of LOPT_VW parameters, and the hidden units
 * are accumulated JT at a time in registers (PG * JT accumulators), each weight broadcast from
 * memory into the multiply-adds of all PG vectors. Tuned per instruction set (32 zmm / 16 ymm). */
#ifndef PG_AVX512
#define PG_AVX512 2
#endif
#ifndef JT_AVX512
#define JT_AVX512 8
#endif
#ifndef PG_AVX2
#define PG_AVX2 3
#endif
#ifndef JT_AVX2
#define JT_AVX2 4
#endif
#ifndef PG_BASE
#define PG_BASE 1
#endif
#ifndef JT_BASE
#define JT_BASE 4
#endif

/* θ of one task as read by the kernel: weights are broadcast one float at a time. */
typedef struct {
  float row0[H];     /* b0 + time @ W0[F:]: the time features are the same for every row */
  float w0[F][H];
  float w1[H][H];
  float b1[H];
  float w2t[2][H];   /* W2 transposed: one row per output */
  float b2[2];
} __attribute__((aligned(64))) TaskWeights;

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

#define LOPT_KERNEL_HEADER "mlp_lopt_kernel.h"
#include "lopt_isa.h"
#undef LOPT_KERNEL_HEADER
#define LOPT_KERNEL_HEADER "fma_probe.h"
#include "lopt_isa.h"

typedef void (*LeafStepFn)(const TaskWeights *, int64_t, const float *, const float *, const float *, float *, float *,
                           const float *, float, float);

#define MAX_LEAVES 4096

/* Per call, not static: worker threads call the addon concurrently. */
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

/* fmaProbe(iters, variant?) -> {flops, width}: runs the FMA peak loop (fma_probe.h); the caller times it. */
typedef float (*FmaProbeFn)(int64_t, float, float);
typedef int (*FmaWidthFn)(void);
static napi_value FmaProbe(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int64_t iters = 0;
  if (argc < 1 || napi_get_value_int64(env, a[0], &iters) != napi_ok || iters < 1) return lopt_fail(env, "fmaProbe: iters must be a positive integer");
  int variant = 0;
  if (argc > 1 && napi_get_value_int32(env, a[1], &variant) != napi_ok) return lopt_fail(env, "fmaProbe: variant must be an index into kernelVariants()");
  FmaProbeFn probe = (FmaProbeFn)LOPT_PICK(fma_probe, variant);
  FmaWidthFn width = (FmaWidthFn)LOPT_PICK(fma_probe_width, variant);
  if (!probe || !width) return lopt_fail(env, "fmaProbe: variant not supported on this CPU (see kernelVariants())");
  volatile float sink = probe(iters, 0.999999f, 1e-7f);
  (void)sink;
  napi_value out, flops, w;
  napi_create_object(env, &out);
  napi_create_double(env, 2.0 * 24.0 * (double)width() * (double)iters, &flops);
  napi_create_int32(env, width(), &w);
  napi_set_named_property(env, out, "flops", flops);
  napi_set_named_property(env, out, "width", w);
  return out;
}

static napi_value MlpLoptStep(napi_env env, napi_callback_info info) {
  napi_value a[14];
  const int variant = lopt_kernel_args(env, info, "mlpLoptStep", 13, a);
  if (variant < 0) return NULL;
  const LeafStepFn leaf_step = (LeafStepFn)LOPT_PICK(leaf_step, variant);
  int32_t N;
  bool perTask;
  double expMult, stepMult;
  if (napi_get_value_int32(env, a[0], &N) != napi_ok || N < 1) return lopt_fail(env, "mlpLoptStep: N must be a positive integer");
  if (napi_get_value_bool(env, a[1], &perTask) != napi_ok) return lopt_fail(env, "mlpLoptStep: perTask must be a boolean");
  if (napi_get_value_double(env, a[11], &expMult) != napi_ok || napi_get_value_double(env, a[12], &stepMult) != napi_ok)
    return lopt_fail(env, "mlpLoptStep: expMult and stepMult must be numbers");
  uint32_t L = 0, Lk;
  if (napi_get_array_length(env, a[2], &L) != napi_ok || L > MAX_LEAVES) return lopt_fail(env, "mlpLoptStep: p must be an array of Float32Array");
  for (int k = 3; k <= 6; k++) {
    if (napi_get_array_length(env, a[k], &Lk) != napi_ok || Lk != L) return lopt_fail(env, "mlpLoptStep: p, g, m, pOut and mOut must have one entry per leaf");
  }
  float *th[6];
  size_t thLen[6];
  const size_t thSize[6] = {(F + T) * H, H, H * H, H, H * 2, 2};
  const size_t reps = perTask ? (size_t)N : 1;
  for (uint32_t k = 0; k < 6; k++) {
    if (!lopt_f32_at(env, a[7], k, &th[k], &thLen[k]) || thLen[k] != reps * thSize[k])
      return lopt_fail(env, "mlpLoptStep: theta must be 6 Float32Arrays [w0 [19,32], b0 [32], w1 [32,32], b1 [32], w2 [32,2], b2 [2]], with a leading N when perTask");
  }
  int32_t *iteration;
  size_t itLen;
  if (!lopt_i32(env, a[8], &iteration, &itLen) || itLen != (size_t)N) return lopt_fail(env, "mlpLoptStep: iteration must be an Int32Array of length N");
  float *decays, *timeScales;
  size_t dLen, tLen;
  if (!lopt_f32(env, a[9], &decays, &dLen) || dLen != K) return lopt_fail(env, "mlpLoptStep: decays must be a Float32Array of length 6");
  if (!lopt_f32(env, a[10], &timeScales, &tLen) || tLen != T) return lopt_fail(env, "mlpLoptStep: timeScales must be a Float32Array of length 11");

  LeafTable tab;
  if (!leaf_table_alloc(&tab, L)) return lopt_fail(env, "mlpLoptStep: out of memory");
  for (uint32_t i = 0; i < L; i++) {
    size_t lp, lg, lm, lpo, lmo;
    if (!lopt_f32_at(env, a[2], i, &tab.p[i], &lp) || !lopt_f32_at(env, a[3], i, &tab.g[i], &lg) || !lopt_f32_at(env, a[4], i, &tab.m[i], &lm) ||
        !lopt_f32_at(env, a[5], i, &tab.pOut[i], &lpo) || !lopt_f32_at(env, a[6], i, &tab.mOut[i], &lmo))
      return leaf_table_free(&tab), lopt_fail(env, "mlpLoptStep: every entry of p, g, m, pOut and mOut must be a Float32Array");
    if (lp % (size_t)N != 0 || lg != lp || lpo != lp || lm != lp * K || lmo != lm)
      return leaf_table_free(&tab), lopt_fail(env, "mlpLoptStep: leaf sizes disagree (p, g, pOut: [N, S]; m, mOut: [N, S, 6])");
    tab.size[i] = (int64_t)(lp / (size_t)N);
  }
  TaskWeights tw;
  for (int32_t n = 0; n < N; n++) {
    const size_t o = perTask ? (size_t)n : 0;
    load_task(&tw, th[0] + o * thSize[0], th[1] + o * thSize[1], th[2] + o * thSize[2], th[3] + o * thSize[3],
              th[4] + o * thSize[4], th[5] + o * thSize[5], iteration[n], timeScales);
    for (uint32_t i = 0; i < L; i++) {
      const int64_t s = tab.size[i];
      leaf_step(&tw, s, tab.p[i] + n * s, tab.g[i] + n * s, tab.m[i] + n * s * K, tab.pOut[i] + n * s, tab.mOut[i] + n * s * K,
                decays, (float)expMult, (float)stepMult);
    }
  }
  leaf_table_free(&tab);
  return NULL;
}

void lopt_register_per_param_mlp(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  lopt_register_per_param_mlp(env, exports);
  lopt_export(env, exports, "mlpLoptStep", MlpLoptStep);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  lopt_export(env, exports, "fmaProbe", FmaProbe);
  return exports;
}
