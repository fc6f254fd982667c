/*
 * The convnet kernel of conv_net.h, compiled once per instruction set (../../core/native/lopt_isa.h):
 * its convolutions are resnet_net_kernel.h's (im2col + register-blocked GEMM, the same suffix), its
 * head resnet_net.h's; the activations evaluate exp, tanh, sin and cos as core's unary kernels do
 * (unary_kernel.h: the values tf.js gets from them where the native kernels are on).
 */
#include "unary_kernel.h"

/* σ(v) = 1 / (1 + e^{-v}) */
static inline float KERNEL(sigmoid_f)(float v) { return 1.0f / (1.0f + KERNEL(exp_f)(-v)); }

/* |x| < 2^19: sincos_f's range; the rest (and NaN, Inf) by libm in double, as core's unary() does */
static inline int KERNEL(sincos_in_range)(float x) { return __builtin_fabsf(x) < 0x1p19f; }
static inline float KERNEL(sincos_libm)(float x, int want_cos) { return (float)(want_cos ? cos((double)x) : sin((double)x)); }

/* gelu's constants as tf.js's float32 scalars take them (lm_modules.ts: 2c, 2c·a, 3·2c·a; c = √(2/π), a = 0.044715) */
#define CONV_GELU_K1 ((float)(2 * 0.7978845608028654))
#define CONV_GELU_K2 ((float)(2 * 0.7978845608028654 * 0.044715))
#define CONV_GELU_K3 ((float)(3 * 2 * 0.7978845608028654 * 0.044715))
#define CONV_SELU_ALPHA 1.6732632423543772f
#define CONV_SELU_SCALE 1.0507009873554805f

/*
 * z[p, c] += b[c] (the convolution's bias, in place), then a = act(z), as the tf.js activations
 * compute them (parametric_utils.ts SAMPLE_ACTIVATIONS, conv.ts): selu as scale·(relu(z) +
 * α·(e^{min(z, 0)} − 1)), silu z·σ(z), gelu z·σ(z·(2c + 2ca·z²)), leaky_relu z ≥ 0 ? z : −0.5z.
 */
static void KERNEL(bias_act_forward)(int act, size_t n, int C, const float *restrict b, float *restrict z, float *restrict a) {
  for (size_t p = 0; p < n; p += C)
    for (int c = 0; c < C; c++) z[p + c] += b[c];
  switch (act) {
    case CONV_ACT_RELU:
      for (size_t i = 0; i < n; i++) a[i] = z[i] > 0.f ? z[i] : 0.f;
      break;
    case CONV_ACT_RELU6:
      for (size_t i = 0; i < n; i++) a[i] = z[i] > 0.f ? (z[i] < 6.f ? z[i] : 6.f) : 0.f;
      break;
    case CONV_ACT_SELU:
      for (size_t i = 0; i < n; i++) {
        const float v = z[i], r = v > 0.f ? v : 0.f, m = v < 0.f ? v : 0.f;
        a[i] = CONV_SELU_SCALE * (r + CONV_SELU_ALPHA * (KERNEL(exp_f)(m) - 1.f));
      }
      break;
    case CONV_ACT_TANH:
      for (size_t i = 0; i < n; i++) a[i] = KERNEL(tanh_f)(z[i]);
      break;
    case CONV_ACT_COS:
    case CONV_ACT_SIN:
      /* a vectorised pass, then the rare out-of-range values (as core's unary()) */
      for (size_t i = 0; i < n; i++) a[i] = KERNEL(sincos_f)(z[i], act == CONV_ACT_COS);
      for (size_t i = 0; i < n; i++)
        if (!KERNEL(sincos_in_range)(z[i])) a[i] = KERNEL(sincos_libm)(z[i], act == CONV_ACT_COS);
      break;
    case CONV_ACT_SIGMOID:
      for (size_t i = 0; i < n; i++) a[i] = KERNEL(sigmoid_f)(z[i]);
      break;
    case CONV_ACT_SILU:
      for (size_t i = 0; i < n; i++) a[i] = z[i] * KERNEL(sigmoid_f)(z[i]);
      break;
    case CONV_ACT_GELU:
      for (size_t i = 0; i < n; i++) {
        const float v = z[i];
        a[i] = v * KERNEL(sigmoid_f)(v * (v * v * CONV_GELU_K2 + CONV_GELU_K1));
      }
      break;
    case CONV_ACT_LEAKY:
      for (size_t i = 0; i < n; i++) a[i] = z[i] >= 0.f ? z[i] : -0.5f * z[i];
      break;
  }
}

/*
 * da ← da · act'(z) in place (a = act(z)), the derivatives tf.js's gradients of those formulas
 * take: relu' = [z > 0], relu6' = [0 < z ≤ 6], selu' = scale·([z > 0] + α·e^{min(z, 0)}·[z ≤ 0]),
 * tanh' = 1 − a², sigmoid' = a(1 − a), silu' = σ + z·σ(1 − σ), gelu' = σ + z·σ(1 − σ)·(2c + 3·2ca·z²),
 * leaky' = z ≥ 0 ? 1 : −0.5; then db[c] = Σ_p da[p, c] (in float64, positions in order).
 */
static void KERNEL(bias_act_backward)(int act, size_t n, int C, const float *restrict z, const float *restrict a, float *restrict da, float *restrict db,
                                      double *restrict sum) {
  switch (act) {
    case CONV_ACT_RELU:
      for (size_t i = 0; i < n; i++) da[i] = z[i] > 0.f ? da[i] : 0.f;
      break;
    case CONV_ACT_RELU6:
      for (size_t i = 0; i < n; i++) da[i] = z[i] > 0.f && z[i] <= 6.f ? da[i] : 0.f;
      break;
    case CONV_ACT_SELU:
      for (size_t i = 0; i < n; i++) {
        const float v = z[i], m = v < 0.f ? v : 0.f, g = da[i] * CONV_SELU_SCALE;
        da[i] = (v > 0.f ? g : 0.f) + (v <= 0.f ? g * CONV_SELU_ALPHA * KERNEL(exp_f)(m) : 0.f);
      }
      break;
    case CONV_ACT_TANH:
      for (size_t i = 0; i < n; i++) da[i] *= 1.f - a[i] * a[i];
      break;
    case CONV_ACT_COS:
    case CONV_ACT_SIN: {
      /* cos' = −sin, sin' = cos: the rare out-of-range values first, then a vectorised pass that leaves them (× 1) */
      const int want_cos = act == CONV_ACT_SIN;
      const float sign = act == CONV_ACT_COS ? -1.f : 1.f;
      for (size_t i = 0; i < n; i++)
        if (!KERNEL(sincos_in_range)(z[i])) da[i] *= sign * KERNEL(sincos_libm)(z[i], want_cos);
      for (size_t i = 0; i < n; i++) {
        const float d = sign * KERNEL(sincos_f)(z[i], want_cos);
        da[i] *= KERNEL(sincos_in_range)(z[i]) ? d : 1.f;
      }
      break;
    }
    case CONV_ACT_SIGMOID:
      for (size_t i = 0; i < n; i++) da[i] *= a[i] * (1.f - a[i]);
      break;
    case CONV_ACT_SILU:
      for (size_t i = 0; i < n; i++) {
        const float s = KERNEL(sigmoid_f)(z[i]);
        da[i] *= s + z[i] * (s * (1.f - s));
      }
      break;
    case CONV_ACT_GELU:
      for (size_t i = 0; i < n; i++) {
        const float v = z[i], v2 = v * v, s = KERNEL(sigmoid_f)(v * (v2 * CONV_GELU_K2 + CONV_GELU_K1));
        da[i] *= s + (v2 * CONV_GELU_K3 + CONV_GELU_K1) * (s * (1.f - s)) * v;
      }
      break;
    case CONV_ACT_LEAKY:
      for (size_t i = 0; i < n; i++) da[i] *= z[i] >= 0.f ? 1.f : -0.5f;
      break;
  }
  for (int c = 0; c < C; c++) sum[c] = 0.0;
  for (size_t p = 0; p < n; p += C)
    for (int c = 0; c < C; c++) sum[c] += da[p + c];
  for (int c = 0; c < C; c++) db[c] = (float)sum[c];
}

/* One task of the convnet (conv_net.h): forward, loss and (grads not NULL) backward; params and grads in the spec's order. */
static float KERNEL(conv_net_task)(const ConvNet *net, int B, int act, const float *image, const int32_t *label, const float *const *params, float *const *grads,
                                   ConvNetScratch *S) {
  const NetPlan *P = &net->P;
  const int L = net->L;
  const int32_t *head = net->ops + NET_OP_LEN * L;
  for (int l = 0; l < L; l++) {
    ConvGeom g;
    net_conv_geom(P, B, net->ops + NET_OP_LEN * l, &g);
    const float *in = l == 0 ? image : S->a[l - 1];
    KERNEL(conv_forward)(&g, in, params[2 * l], S->z[l], S->cols[l] ? S->cols[l] : S->sharedCols);
    KERNEL(bias_act_forward)(act, net_elems(P, B, l + 1), g.Co, params[2 * l + 1], S->z[l], S->a[l]);
  }
  const float loss = net_head_forward(P, B, head, S->a[L - 1], params[2 * L], params[2 * L + 1], label, &S->head);
  if (!grads) return loss;
  for (int l = 0; l < L; l++) memset(S->da[l], 0, sizeof(float) * net_elems(P, B, l + 1));
  for (int i = 0; i < P->numParams; i++) memset(grads[i], 0, sizeof(float) * P->paramSizes[i]);
  net_head_backward(P, B, head, S->a[L - 1], params[2 * L], S->da[L - 1], grads[2 * L], grads[2 * L + 1], &S->head);
  for (int l = L - 1; l >= 0; l--) {
    ConvGeom g;
    net_conv_geom(P, B, net->ops + NET_OP_LEN * l, &g);
    KERNEL(bias_act_backward)(act, net_elems(P, B, l + 1), g.Co, S->z[l], S->a[l], S->da[l], grads[2 * l + 1], S->bsum);
    const float *in = l == 0 ? image : S->a[l - 1];
    KERNEL(conv_backward)(&g, in, params[2 * l], S->da[l], grads[2 * l], l == 0 ? NULL : S->da[l - 1], S->cols[l] ? S->cols[l] : S->sharedCols, S->cols[l] != NULL,
                          S->dcols, S->wt);
  }
  return loss;
}
