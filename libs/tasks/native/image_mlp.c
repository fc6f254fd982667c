/*
 * Loss and gradient of N stacked MLP image classifiers (ImageMLPTask with ReLU; reference
 * `tasks/fixed/image_mlp.py`, `_MLPImageTask`): for each task, dense layers with ReLU between
 * them, softmax cross-entropy averaged over the batch, and the hand-written backward pass. The
 * tf.js path needs ~60 kernels per step for the same values (N small matMuls per layer,
 * transposes, softmax pieces); here a task is one pass over its batch.
 *
 * Called from JavaScript (src/native.ts) with views of the backend's memory:
 *
 *   imageMlpValueAndGrad(N, B, sizes, x, label, w[], b[], loss, gw[] | null, gb[] | null[, variant])
 *
 * sizes: Int32Array [L + 1] (input, hidden..., classes); x: Float32Array [N, B, sizes[0]];
 * label: Int32Array [N, B]; w[i]: [N, sizes[i], sizes[i+1]], b[i]: [N, sizes[i+1]]; loss: [N]
 * (written); gw, gb: like w, b (written; null for the loss only).
 */
#include <math.h>
#include <stdio.h>
#include "lopt_napi.h"

#define MLP_MAX_LAYERS 16

static int mlp_max_width(int L, const int32_t *sizes) {
  int maxW = 1;
  for (int i = 0; i <= L; i++) maxW = sizes[i] > maxW ? sizes[i] : maxW;
  return maxW;
}

/* matmul_rows's zero-padded slab of a narrow layer's columns: 16 (AVX-512) or 8 columns of the
 * longest K (a layer's width, or B) */
static size_t mlp_slab_floats(int B, int L, const int32_t *sizes) {
  const int maxW = mlp_max_width(L, sizes);
  return 16 * (size_t)(maxW > B ? maxW : B);
}

/* mlp_task's scratch: the slab, the activations, then (backward) W^T and two d-input buffers */
static size_t mlp_scratch_floats(int B, int L, const int32_t *sizes) {
  const int maxW = mlp_max_width(L, sizes);
  size_t n = mlp_slab_floats(B, L, sizes) + (size_t)maxW * maxW + 2 * (size_t)B * maxW;
  for (int i = 1; i <= L; i++) n += (size_t)B * sizes[i];
  return n;
}

#define LOPT_KERNEL_HEADER "image_mlp_kernel.h"
#include "lopt_isa.h"

typedef float (*MlpTaskFn)(int, int, const int32_t *, const float *, const int32_t *, const float *const *,
                           const float *const *, float *const *, float *const *, float *);

static napi_value ImageMlpValueAndGrad(napi_env env, napi_callback_info info) {
  napi_value a[11];
  const int variant = lopt_kernel_args(env, info, "imageMlpValueAndGrad", 10, a);
  if (variant < 0) return NULL;
  const MlpTaskFn mlp_task = (MlpTaskFn)LOPT_PICK(mlp_task, variant);
  int32_t N, B;
  if (napi_get_value_int32(env, a[0], &N) != napi_ok || N < 1) return lopt_fail(env, "imageMlpValueAndGrad: N must be a positive integer");
  if (napi_get_value_int32(env, a[1], &B) != napi_ok || B < 1) return lopt_fail(env, "imageMlpValueAndGrad: B must be a positive integer");
  int32_t *sizes;
  size_t numSizes;
  if (!lopt_i32(env, a[2], &sizes, &numSizes) || numSizes < 2 || numSizes > MLP_MAX_LAYERS + 1)
    return lopt_fail(env, "imageMlpValueAndGrad: sizes must be an Int32Array of 2 to 17 layer widths");
  const int L = (int)numSizes - 1;
  for (int i = 0; i <= L; i++)
    if (sizes[i] < 1) return lopt_fail(env, "imageMlpValueAndGrad: every layer width must be positive");
  float *x, *loss;
  int32_t *label;
  size_t xLen, labelLen, lossLen;
  if (!lopt_f32(env, a[3], &x, &xLen) || xLen != (size_t)N * B * sizes[0])
    return lopt_fail(env, "imageMlpValueAndGrad: x must be a Float32Array [N, B, sizes[0]]");
  if (!lopt_i32(env, a[4], &label, &labelLen) || labelLen != (size_t)N * B)
    return lopt_fail(env, "imageMlpValueAndGrad: label must be an Int32Array [N, B]");
  for (size_t i = 0; i < labelLen; i++)
    if (label[i] < 0 || label[i] >= sizes[L]) return lopt_fail(env, "imageMlpValueAndGrad: a label is outside [0, number of classes)");
  if (!lopt_f32(env, a[7], &loss, &lossLen) || lossLen != (size_t)N) return lopt_fail(env, "imageMlpValueAndGrad: loss must be a Float32Array [N]");
  napi_valuetype gt;
  napi_typeof(env, a[8], &gt);
  const int withGrad = gt != napi_null && gt != napi_undefined;
  float *w[MLP_MAX_LAYERS], *b[MLP_MAX_LAYERS], *gw[MLP_MAX_LAYERS], *gb[MLP_MAX_LAYERS];
  for (int i = 0; i < L; i++) {
    size_t lw, lb, lgw, lgb;
    const size_t nw = (size_t)N * sizes[i] * sizes[i + 1], nb = (size_t)N * sizes[i + 1];
    if (!lopt_f32_at(env, a[5], (uint32_t)i, &w[i], &lw) || lw != nw || !lopt_f32_at(env, a[6], (uint32_t)i, &b[i], &lb) || lb != nb)
      return lopt_fail(env, "imageMlpValueAndGrad: w[i] must be Float32Array [N, sizes[i], sizes[i+1]] and b[i] [N, sizes[i+1]]");
    if (withGrad && (!lopt_f32_at(env, a[8], (uint32_t)i, &gw[i], &lgw) || lgw != nw || !lopt_f32_at(env, a[9], (uint32_t)i, &gb[i], &lgb) || lgb != nb))
      return lopt_fail(env, "imageMlpValueAndGrad: gw and gb must be shaped like w and b");
  }
  float *scratch = malloc(sizeof(float) * mlp_scratch_floats(B, L, sizes));
  if (!scratch) return lopt_fail(env, "imageMlpValueAndGrad: out of memory");
  for (int n = 0; n < N; n++) {
    const float *wn[MLP_MAX_LAYERS], *bn[MLP_MAX_LAYERS];
    float *gwn[MLP_MAX_LAYERS], *gbn[MLP_MAX_LAYERS];
    for (int i = 0; i < L; i++) {
      const size_t ow = (size_t)n * sizes[i] * sizes[i + 1], ob = (size_t)n * sizes[i + 1];
      wn[i] = w[i] + ow;
      bn[i] = b[i] + ob;
      if (withGrad) {
        gwn[i] = gw[i] + ow;
        gbn[i] = gb[i] + ob;
      }
    }
    loss[n] = mlp_task(B, L, sizes, x + (size_t)n * B * sizes[0], label + (size_t)n * B, wn, bn, withGrad ? gwn : NULL,
                       withGrad ? gbn : NULL, scratch);
  }
  free(scratch);
  return NULL;
}

#include "gather_rows.h"

NAPI_MODULE_INIT() {
  lopt_export(env, exports, "imageMlpValueAndGrad", ImageMlpValueAndGrad);
  lopt_export(env, exports, "gatherRows", GatherRows);
  lopt_export(env, exports, "kernelVariants", lopt_kernel_variants);
  return exports;
}
