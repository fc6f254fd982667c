/*
 * A plain convnet in one call (included by resnet.c after resnet_net.h, whose convolution, head
 * and scratch arena it reuses): layers of SAME convolution + bias + activation, then the spatial
 * mean, a linear layer and the mean softmax cross-entropy, forward and backward, for N stacked
 * tasks of one network on a batch, one task after the other. The nets of src/conv.ts's ConvTask
 * (reference tasks/fixed/conv.py, no normalisation, mean pool) and of
 * src/parametric/image_conv.ts (reference tasks/parametric/image_conv.py), whose tf.js paths run
 * ~100 tf.js kernels a task for one step.
 *
 *   convNetValueAndGrad(spec, acts, N, B, x, label, params[], loss, grads[] | null[, variant])
 *
 * spec: Int32Array [L, H, W, C, classes, then per layer C_out, k, stride] (k x k filters, SAME
 * padding, output side ceil(input / stride)); acts: Int32Array [N], each task's activation (CONV_ACT_*);
 * x: Float32Array [N, B, H, W, C]; label: Int32Array [N, B]; params: w0, b0, ..., w_{L-1},
 * b_{L-1}, head w, head b, each [N, size] (w_l [k, k, C_in, C_out], b_l [C_out], head w
 * [C_last, classes], b [classes]); loss [N] written; grads like params (written; null: loss only).
 */

/* Activations (src/conv_net.ts CONV_NET_ACTIVATIONS, in this order). */
enum { CONV_ACT_RELU, CONV_ACT_RELU6, CONV_ACT_SELU, CONV_ACT_TANH, CONV_ACT_COS, CONV_ACT_SIN, CONV_ACT_SIGMOID, CONV_ACT_SILU, CONV_ACT_GELU, CONV_ACT_LEAKY, CONV_ACT_COUNT };

#define CONV_NET_MAX_LAYERS 16

/*
 * A spec as resnet_net.h's NetPlan (so that net_conv_geom and the head take it): buffer 0 the
 * image, buffer l + 1 layer l's activation; ops [NET_CONV, l, l + 1, 2l, k, stride] then
 * [NET_HEAD, L, 2L, 2L + 1, classes].
 */
typedef struct {
  NetPlan P;
  int L;
  int32_t shapes[3 * (CONV_NET_MAX_LAYERS + 1)];
  int32_t sizes[2 * CONV_NET_MAX_LAYERS + 2];
  int32_t ops[NET_OP_LEN * (CONV_NET_MAX_LAYERS + 1)];
} ConvNet;

/* Reads and checks a spec; NULL when it is well formed, else what is wrong. */
static const char *conv_net_parse(const int32_t *s, size_t len, ConvNet *net) {
  if (len < 5) return "spec too short";
  const int L = s[0];
  if (L < 1 || L > CONV_NET_MAX_LAYERS) return "the number of layers must be in [1, 16]";
  if (len != 5 + 3 * (size_t)L) return "spec length does not match its number of layers";
  for (size_t i = 1; i < len; i++)
    if (s[i] < 1) return "a size is not positive";
  memset(net, 0, sizeof *net);
  net->L = L;
  net->shapes[0] = s[1];
  net->shapes[1] = s[2];
  net->shapes[2] = s[3];
  for (int l = 0; l < L; l++) {
    const int32_t *ly = s + 5 + 3 * l, *in = net->shapes + 3 * l;
    int32_t *out = net->shapes + 3 * (l + 1), *op = net->ops + NET_OP_LEN * l;
    out[0] = same_out(in[0], ly[2]);
    out[1] = same_out(in[1], ly[2]);
    out[2] = ly[0];
    net->sizes[2 * l] = ly[1] * ly[1] * in[2] * ly[0];
    net->sizes[2 * l + 1] = ly[0];
    op[0] = NET_CONV, op[1] = l, op[2] = l + 1, op[3] = 2 * l, op[4] = ly[1], op[5] = ly[2];
  }
  net->sizes[2 * L] = net->shapes[3 * L + 2] * s[4];
  net->sizes[2 * L + 1] = s[4];
  int32_t *head = net->ops + NET_OP_LEN * L;
  head[0] = NET_HEAD, head[1] = L, head[2] = 2 * L, head[3] = 2 * L + 1, head[4] = s[4];
  net->P.numBuffers = L + 1;
  net->P.numOps = L + 1;
  net->P.numParams = 2 * L + 2;
  net->P.numStats = 0;
  net->P.shapes = net->shapes;
  net->P.paramSizes = net->sizes;
  net->P.statC = NULL;
  net->P.ops = net->ops;
  return NULL;
}

/* Scratch of one call: per layer its pre-activation z, activation a, d a (then d z in place) and kept patches. */
typedef struct {
  float *z[CONV_NET_MAX_LAYERS], *a[CONV_NET_MAX_LAYERS], *da[CONV_NET_MAX_LAYERS], *cols[CONV_NET_MAX_LAYERS];
  float *sharedCols, *dcols, *wt;
  double *bsum;
  NetScratch head; /* pooled, dpooled, logits, dbl: what net_head_forward / backward use */
} ConvNetScratch;

/* Lays out S in the arena (grown to fit); 0 when out of memory. */
static int conv_net_scratch(const ConvNet *net, int B, ConvNetScratch *S, NetArena *arena) {
  const NetPlan *P = &net->P;
  size_t total = 0, cols = 0, wt = 0, keep = 0;
  int maxC = 1;
  for (int l = 0; l < net->L; l++) {
    ConvGeom g;
    net_conv_geom(P, B, net->ops + NET_OP_LEN * l, &g);
    const size_t K = (size_t)g.k * g.k * g.C, c = (size_t)B * g.Ho * g.Wo * K;
    cols = c > cols ? c : cols;
    wt = K * g.Co > wt ? K * g.Co : wt;
    if (!(g.k == 1 && g.s == 1)) keep += c + 16;
    total += 3 * (net_elems(P, B, l + 1) + 16);
    maxC = g.Co > maxC ? g.Co : maxC;
  }
  if (keep > NET_KEEP_COLS_MAX) keep = 0;
  const int classes = net->ops[NET_OP_LEN * net->L + 4];
  const size_t pooled = (size_t)B * maxC, logits = (size_t)B * classes;
  /* + 16 floats of slack per region for the 64-byte rounding */
  total += keep + 2 * cols + wt + 2 * pooled + logits + 4 * (size_t)maxC + 16 * 8;
  if (!arena) return 0;
  if (total > arena->count) {
    free(arena->floats);
    arena->floats = malloc(sizeof(float) * total);
    arena->count = arena->floats ? total : 0;
    if (!arena->floats) return 0;
  }
  float *at = arena->floats;
#define CONV_TAKE(count) (at += ((count) + 15) & ~(size_t)15, at - (((count) + 15) & ~(size_t)15))
  for (int l = 0; l < net->L; l++) {
    ConvGeom g;
    net_conv_geom(P, B, net->ops + NET_OP_LEN * l, &g);
    S->z[l] = CONV_TAKE(net_elems(P, B, l + 1));
    S->a[l] = CONV_TAKE(net_elems(P, B, l + 1));
    S->da[l] = CONV_TAKE(net_elems(P, B, l + 1));
    S->cols[l] = keep && !(g.k == 1 && g.s == 1) ? CONV_TAKE((size_t)B * g.Ho * g.Wo * g.k * g.k * g.C) : NULL;
  }
  S->sharedCols = CONV_TAKE(cols);
  S->dcols = CONV_TAKE(cols);
  S->wt = CONV_TAKE(wt);
  S->head.pooled = CONV_TAKE(pooled);
  S->head.dpooled = CONV_TAKE(pooled);
  S->head.logits = CONV_TAKE(logits);
  S->head.dbl = (double *)CONV_TAKE(2 * (size_t)maxC);
  S->bsum = (double *)CONV_TAKE(2 * (size_t)maxC);
#undef CONV_TAKE
  return 1;
}

#undef LOPT_KERNEL_HEADER
#define LOPT_KERNEL_HEADER "conv_net_kernel.h"
#include "lopt_isa.h"

typedef float (*ConvNetTaskFn)(const ConvNet *, int, int, const float *, const int32_t *, const float *const *, float *const *, ConvNetScratch *);

static napi_value ConvNetValueAndGrad(napi_env env, napi_callback_info info) {
  napi_value a[10];
  const int variant = lopt_kernel_args(env, info, "convNetValueAndGrad", 9, a);
  if (variant < 0) return NULL;
  const ConvNetTaskFn task = (ConvNetTaskFn)LOPT_PICK(conv_net_task, variant);
  int32_t *spec, *acts, N, B;
  size_t len;
  if (!lopt_i32(env, a[0], &spec, &len)) return lopt_fail(env, "convNetValueAndGrad: spec must be an Int32Array");
  ConvNet net;
  const char *err = conv_net_parse(spec, len, &net);
  if (err) {
    char msg[160];
    snprintf(msg, sizeof msg, "convNetValueAndGrad: bad spec (%s)", err);
    return lopt_fail(env, msg);
  }
  if (napi_get_value_int32(env, a[2], &N) != napi_ok || N < 1 || napi_get_value_int32(env, a[3], &B) != napi_ok || B < 1)
    return lopt_fail(env, "convNetValueAndGrad: N and B must be positive integers");
  if (!lopt_i32(env, a[1], &acts, &len) || len != (size_t)N) return lopt_fail(env, "convNetValueAndGrad: acts must be an Int32Array [N]");
  for (int n = 0; n < N; n++)
    if (acts[n] < 0 || acts[n] >= CONV_ACT_COUNT) return lopt_fail(env, "convNetValueAndGrad: an activation code is out of range");
  const NetPlan *P = &net.P;
  float *x, *loss;
  int32_t *label;
  const size_t perImage = net_elems(P, B, 0);
  if (!lopt_f32(env, a[4], &x, &len) || len != (size_t)N * perImage) return lopt_fail(env, "convNetValueAndGrad: x must be a Float32Array [N, B, H, W, C]");
  if (!lopt_i32(env, a[5], &label, &len) || len != (size_t)N * B) return lopt_fail(env, "convNetValueAndGrad: label must be an Int32Array [N, B]");
  const int classes = spec[4];
  for (size_t i = 0; i < (size_t)N * B; i++)
    if (label[i] < 0 || label[i] >= classes) return lopt_fail(env, "convNetValueAndGrad: a label is outside [0, number of classes)");
  if (!lopt_f32(env, a[7], &loss, &len) || len != (size_t)N) return lopt_fail(env, "convNetValueAndGrad: loss must be a Float32Array [N]");
  napi_valuetype gt;
  napi_typeof(env, a[8], &gt);
  const int withGrad = gt != napi_null && gt != napi_undefined;
  const int np = P->numParams;
  float *params[2 * CONV_NET_MAX_LAYERS + 2], *grads[2 * CONV_NET_MAX_LAYERS + 2], *pn[2 * CONV_NET_MAX_LAYERS + 2], *gn[2 * CONV_NET_MAX_LAYERS + 2];
  for (int i = 0; i < np; i++) {
    const size_t want = (size_t)N * P->paramSizes[i];
    if (!lopt_f32_at(env, a[6], (uint32_t)i, &params[i], &len) || len != want) return lopt_fail(env, "convNetValueAndGrad: params[i] must be a Float32Array [N, paramSize i]");
    if (withGrad && (!lopt_f32_at(env, a[8], (uint32_t)i, &grads[i], &len) || len != want)) return lopt_fail(env, "convNetValueAndGrad: grads must be shaped like params");
  }
  ConvNetScratch S;
  if (!conv_net_scratch(&net, B, &S, net_arena(env))) return lopt_fail(env, "convNetValueAndGrad: out of memory");
  for (int n = 0; n < N; n++) {
    for (int i = 0; i < np; i++) {
      pn[i] = params[i] + (size_t)n * P->paramSizes[i];
      gn[i] = withGrad ? grads[i] + (size_t)n * P->paramSizes[i] : NULL;
    }
    loss[n] = task(&net, B, acts[n], x + (size_t)n * perImage, label + (size_t)n * B, (const float *const *)pn, withGrad ? gn : NULL, &S);
  }
  return NULL;
}
