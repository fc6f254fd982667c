/*
 * The whole ResNet in one call (included by resnet.c): forward, mean softmax cross-entropy, the
 * backward pass to every parameter, and the batch norms' moving averages updated on the batch
 * statistics, for N stacked tasks of one network on a batch, one task after the other.
 * ResnetTask's tf.js path runs ~400 tf.js kernels a task for the same step (src/resnet.ts).
 * The convolutions (NHWC) are im2col + a register-blocked GEMM (resnet_net_kernel.h, compiled per
 * instruction set); a convolution's patches are kept from the forward for the backward.
 *
 * The network is a plan built in TypeScript from the ResNetSpec (`resnetNetPlan` in
 * src/resnet.ts, which mirrors the tf.js forward op for op), an Int32Array:
 *
 *   [numBuffers, numOps, numParams, numStats,
 *    H, W, C of each buffer (buffer 0: the image; every other one is the output of one op),
 *    the per-task element count of each parameter,
 *    the channels of each batch norm's statistics,
 *    the ops, NET_OP_LEN ints each]
 *
 * ops: [NET_CONV, in, out, w, k, stride]  SAME convolution without bias, w [k, k, C_in, C_out]
 *      [NET_BN, in, out, scale, offset, relu, stat]  training-mode batch norm (+ relu)
 *      [NET_MAXPOOL, in, out]  3x3 stride-2 SAME max pool
 *      [NET_ADD, a, b, out]
 *      [NET_RELU, in, out]
 *      [NET_HEAD, in, w, b, classes]  spatial mean, linear, mean softmax CE (the last op)
 *
 *   resnetNetValueAndGrad(plan, N, B, x, label, params[], loss, grads[] | null,
 *                         prevCounter[] | null, prevHidden[] | null, counter[], hidden[], average[][, variant])
 *
 * x: Float32Array [N, B, H, W, C]; label: Int32Array [N, B]; params[i]: [N, paramSize i];
 * loss: [N] (written); grads: like params (written; null: the loss and averages only). The moving
 * averages, two per batch norm s (e = 2s: its mean, 2s + 1: its variance), updated from the
 * previous ones (null: haiku's first call, counters and hidden values zero) on the batch
 * statistics: prevCounter[e], counter[e]: Int32Array [N]; prevHidden[e], hidden[e], average[e]:
 * Float32Array [N, C_s] (counter, hidden, average written).
 */

enum { NET_CONV = 1, NET_BN = 2, NET_MAXPOOL = 3, NET_ADD = 4, NET_RELU = 5, NET_HEAD = 6 };
#define NET_OP_LEN 8

typedef struct {
  int numBuffers, numOps, numParams, numStats;
  const int32_t *shapes;     /* [numBuffers, 3] */
  const int32_t *paramSizes; /* [numParams] */
  const int32_t *statC;      /* [numStats] */
  const int32_t *ops;        /* [numOps, NET_OP_LEN] */
} NetPlan;

/* A convolution's geometry: input [B, H, W, C], output [B, Ho, Wo, Co], k x k window, stride s, SAME padding top / left. */
typedef struct {
  int B, H, W, C, Ho, Wo, Co, k, s, top, left;
  float *pad; /* scratch for one zero-padded image (im2col; NULL: im2col tests the bounds per element) */
} ConvGeom;

/* The padded image im2col reads a k > 1 convolution's patches from: rows and columns up to the last window's. */
static size_t conv_pad_elems(const ConvGeom *g) { return g->k > 1 ? (size_t)((g->Ho - 1) * g->s + g->k) * ((g->Wo - 1) * g->s + g->k) * g->C : 0; }

typedef struct {
  float **act, **dact, **r;
  int32_t **poolArg; /* per buffer a max pool writes: which window element each output came from */
  float **convCols; /* per convolution in op order: its patches kept from the forward for the backward, or NULL (recomputed) */
  float *cols, *dcols, *wt, *pooled, *logits, *dpooled, *bnf, *pad;
  double *dbl;
} NetScratch;

static size_t net_elems(const NetPlan *P, int B, int buf) { return (size_t)B * P->shapes[3 * buf] * P->shapes[3 * buf + 1] * P->shapes[3 * buf + 2]; }

static int same_out(int n, int s) { return (n + s - 1) / s; }

static void net_conv_geom(const NetPlan *P, int B, const int32_t *op, ConvGeom *g) {
  const int32_t *si = P->shapes + 3 * op[1], *so = P->shapes + 3 * op[2];
  g->B = B;
  g->H = si[0];
  g->W = si[1];
  g->C = si[2];
  g->Ho = so[0];
  g->Wo = so[1];
  g->Co = so[2];
  g->k = op[4];
  g->s = op[5];
  /* tf's SAME: total padding max((out − 1)·s + k − in, 0), the smaller half before */
  g->pad = NULL;
  const int ph = (g->Ho - 1) * g->s + g->k - g->H, pw = (g->Wo - 1) * g->s + g->k - g->W;
  g->top = (ph > 0 ? ph : 0) / 2;
  g->left = (pw > 0 ? pw : 0) / 2;
}

/* Reads and checks a plan; NULL when it is well formed, else what is wrong. */
static const char *net_parse(const int32_t *p, size_t len, NetPlan *P) {
  if (len < 4) return "plan too short";
  P->numBuffers = p[0];
  P->numOps = p[1];
  P->numParams = p[2];
  P->numStats = p[3];
  if (P->numBuffers < 2 || P->numOps < 1 || P->numParams < 2 || P->numStats < 0) return "bad counts";
  const size_t want = 4 + 3 * (size_t)P->numBuffers + P->numParams + P->numStats + (size_t)NET_OP_LEN * P->numOps;
  if (len != want) return "plan length does not match its counts";
  P->shapes = p + 4;
  P->paramSizes = P->shapes + 3 * P->numBuffers;
  P->statC = P->paramSizes + P->numParams;
  P->ops = P->statC + P->numStats;
  for (int i = 0; i < 3 * P->numBuffers; i++)
    if (P->shapes[i] < 1) return "a buffer dimension is not positive";
  for (int i = 0; i < P->numParams; i++)
    if (P->paramSizes[i] < 1) return "a parameter size is not positive";
  char *defined = calloc((size_t)P->numBuffers + P->numStats + 1, 1);
  if (!defined) return "out of memory";
  char *statUsed = defined + P->numBuffers;
  defined[0] = 1;
  const char *err = NULL;
  int bns = 0;
#define NET_CHECK(cond, msg) \
  if (!(cond)) {             \
    err = msg;               \
    break;                   \
  }
#define NET_BUF(i) ((i) >= 0 && (i) < P->numBuffers)
#define NET_PARAM(i) ((i) >= 0 && (i) < P->numParams)
#define NET_SAME(a, b) (P->shapes[3 * (a)] == P->shapes[3 * (b)] && P->shapes[3 * (a) + 1] == P->shapes[3 * (b) + 1] && P->shapes[3 * (a) + 2] == P->shapes[3 * (b) + 2])
  for (int o = 0; o < P->numOps && !err; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    const int isHead = op[0] == NET_HEAD;
    NET_CHECK(isHead == (o == P->numOps - 1), "the head must be the last op, and only it");
    const int in = op[1];
    NET_CHECK(NET_BUF(in) && defined[in], "an op reads a buffer no earlier op wrote");
    const int out = op[0] == NET_ADD ? op[3] : op[2];
    if (!isHead) {
      NET_CHECK(NET_BUF(out) && !defined[out], "an op writes a buffer that is not new");
      defined[out] = 1;
    }
    const int32_t *si = P->shapes + 3 * in, *so = isHead ? NULL : P->shapes + 3 * out;
    switch (op[0]) {
      case NET_CONV:
        NET_CHECK(NET_PARAM(op[3]) && op[4] >= 1 && op[5] >= 1, "conv: bad weight index, kernel size or stride");
        NET_CHECK(so[0] == same_out(si[0], op[5]) && so[1] == same_out(si[1], op[5]), "conv: output size is not ceil(input / stride)");
        NET_CHECK(P->paramSizes[op[3]] == op[4] * op[4] * si[2] * so[2], "conv: weight size is not k·k·C_in·C_out");
        break;
      case NET_BN:
        NET_CHECK(NET_SAME(in, out) && NET_PARAM(op[3]) && NET_PARAM(op[4]) && P->paramSizes[op[3]] == si[2] && P->paramSizes[op[4]] == si[2],
                  "batch norm: shapes or parameters");
        NET_CHECK(op[6] >= 0 && op[6] < P->numStats && !statUsed[op[6]] && P->statC[op[6]] == si[2], "batch norm: statistics index");
        statUsed[op[6]] = 1;
        bns++;
        break;
      case NET_MAXPOOL:
        NET_CHECK(so[0] == same_out(si[0], 2) && so[1] == same_out(si[1], 2) && so[2] == si[2], "max pool: output shape");
        break;
      case NET_ADD:
        NET_CHECK(NET_BUF(op[2]) && defined[op[2]] && NET_SAME(in, op[2]) && NET_SAME(in, out), "add: shapes");
        break;
      case NET_RELU:
        NET_CHECK(NET_SAME(in, out), "relu: shapes");
        break;
      case NET_HEAD:
        NET_CHECK(op[4] >= 1 && NET_PARAM(op[2]) && NET_PARAM(op[3]) && P->paramSizes[op[2]] == si[2] * op[4] && P->paramSizes[op[3]] == op[4],
                  "head: parameters");
        break;
      default:
        err = "unknown op";
    }
  }
  if (!err && bns != P->numStats) err = "every statistics index must have one batch norm";
  for (int i = 0; !err && i < P->numBuffers; i++)
    if (!defined[i]) err = "a buffer no op writes";
#undef NET_CHECK
#undef NET_BUF
#undef NET_PARAM
#undef NET_SAME
  free(defined);
  return err;
}

/*
 * The head's forward: pooled [B, C] = the spatial mean of x, logits = pooled · w + b, and the mean
 * softmax cross-entropy against label (returned); S->logits then holds d loss / d logits.
 */
static float net_head_forward(const NetPlan *P, int B, const int32_t *op, const float *x, const float *w, const float *bias, const int32_t *label, NetScratch *S) {
  const int32_t *s = P->shapes + 3 * op[1];
  const int HW = s[0] * s[1], C = s[2], K = op[4];
  float *pooled = S->pooled, *z = S->logits;
  for (int b = 0; b < B; b++) {
    double *acc = S->dbl;
    for (int c = 0; c < C; c++) acc[c] = 0.0;
    for (int p = 0; p < HW; p++) {
      const float *row = x + ((size_t)b * HW + p) * C;
      for (int c = 0; c < C; c++) acc[c] += row[c];
    }
    for (int c = 0; c < C; c++) pooled[(size_t)b * C + c] = (float)(acc[c] / HW);
  }
  double loss = 0.0;
  for (int b = 0; b < B; b++) {
    float *zb = z + (size_t)b * K;
    const float *pb = pooled + (size_t)b * C;
    for (int j = 0; j < K; j++) {
      double a = 0.0;
      for (int c = 0; c < C; c++) a += (double)pb[c] * w[(size_t)c * K + j];
      zb[j] = (float)a + bias[j];
    }
    float m = zb[0];
    for (int j = 1; j < K; j++) m = zb[j] > m ? zb[j] : m;
    double sum = 0.0;
    for (int j = 0; j < K; j++) sum += exp((double)(zb[j] - m));
    const int y = label[b];
    loss -= (double)(zb[y] - m) - log(sum);
    for (int j = 0; j < K; j++) zb[j] = ((float)(exp((double)(zb[j] - m)) / sum) - (j == y ? 1.f : 0.f)) / (float)B;
  }
  return (float)(loss / B);
}

/* The head's backward from S->logits (d loss / d logits): dw, db (written), dx += d pooled / (H·W). */
static void net_head_backward(const NetPlan *P, int B, const int32_t *op, const float *x, const float *w, float *dx, float *dw, float *db, NetScratch *S) {
  (void)x;
  const int32_t *s = P->shapes + 3 * op[1];
  const int HW = s[0] * s[1], C = s[2], K = op[4];
  const float *dz = S->logits, *pooled = S->pooled;
  for (int j = 0; j < K; j++) {
    double a = 0.0;
    for (int b = 0; b < B; b++) a += dz[(size_t)b * K + j];
    db[j] = (float)a;
  }
  for (int c = 0; c < C; c++)
    for (int j = 0; j < K; j++) {
      double a = 0.0;
      for (int b = 0; b < B; b++) a += (double)pooled[(size_t)b * C + c] * dz[(size_t)b * K + j];
      dw[(size_t)c * K + j] = (float)a;
    }
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      double a = 0.0;
      for (int j = 0; j < K; j++) a += (double)dz[(size_t)b * K + j] * w[(size_t)c * K + j];
      S->dpooled[(size_t)b * C + c] = (float)a / (float)HW;
    }
  for (int b = 0; b < B; b++)
    for (int p = 0; p < HW; p++) {
      float *row = dx + ((size_t)b * HW + p) * C;
      const float *g = S->dpooled + (size_t)b * C;
      for (int c = 0; c < C; c++) row[c] += g[c];
    }
}

#define LOPT_KERNEL_HEADER "resnet_net_kernel.h"
#include "lopt_isa.h"

typedef float (*NetTaskFn)(const NetPlan *, int, const float *, const int32_t *, const float *const *, float *const *, float *const *, float *const *,
                           NetScratch *);

/*
 * The scratch memory, kept between calls (grown as needed), one per N-API environment: each
 * worker thread that loads the addon has its own (napi instance data, freed with the environment).
 */
typedef struct {
  float *floats;
  size_t count;
} NetArena;

static void net_arena_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  NetArena *a = data;
  free(a->floats);
  free(a);
}

/* This environment's arena (created on first use); NULL when out of memory. */
static NetArena *net_arena(napi_env env) {
  NetArena *a = NULL;
  if (napi_get_instance_data(env, (void **)&a) == napi_ok && a) return a;
  a = calloc(1, sizeof *a);
  if (!a || napi_set_instance_data(env, a, net_arena_free, NULL) != napi_ok) {
    free(a);
    return NULL;
  }
  return a;
}

/* the most floats of convolution patches kept from the forward for the backward (else recomputed) */
#define NET_KEEP_COLS_MAX ((size_t)16 << 20)

/* Lays out S in the arena (grown to fit); 0 when out of memory. */
static int net_scratch(const NetPlan *P, int B, NetScratch *S, void **ptrs, NetArena *arena) {
  size_t n = 0, cols = 0, wt = 0, rsum = 0, keep = 0, keepPool = 0, pad = 0;
  int maxC = 1, bns = 0, convs = 0;
  for (int i = 1; i < P->numBuffers; i++) n += 2 * net_elems(P, B, i);
  for (int i = 0; i < P->numBuffers; i++) maxC = P->shapes[3 * i + 2] > maxC ? P->shapes[3 * i + 2] : maxC;
  int classes = 1;
  for (int o = 0; o < P->numOps; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    if (op[0] == NET_CONV) {
      ConvGeom g;
      net_conv_geom(P, B, op, &g);
      const size_t K = (size_t)g.k * g.k * g.C;
      const size_t c = (size_t)B * g.Ho * g.Wo * K;
      cols = c > cols ? c : cols;
      wt = K * g.Co > wt ? K * g.Co : wt;
      if (!(g.k == 1 && g.s == 1)) keep += c + 16;
      pad = conv_pad_elems(&g) > pad ? conv_pad_elems(&g) : pad;
      convs++;
    } else if (op[0] == NET_BN) {
      rsum += P->shapes[3 * op[1] + 2];
      bns++;
    } else if (op[0] == NET_MAXPOOL) {
      keepPool += net_elems(P, B, op[2]) + 16;
    } else if (op[0] == NET_HEAD) {
      classes = op[4];
    }
  }
  const size_t pooled = (size_t)B * maxC, logits = (size_t)B * classes;
  /* + 16 floats of slack per region for the 64-byte rounding */
  if (keep > NET_KEEP_COLS_MAX) keep = 0;
  const size_t total = n + 2 * cols + wt + rsum + 2 * pooled + logits + 2 * 5 * (size_t)maxC + 3 * (size_t)maxC + 16 * (2 * (size_t)P->numBuffers + bns + 10) + keep + keepPool + pad;
  if (!arena) return 0;
  if (total > arena->count) {
    free(arena->floats);
    arena->floats = malloc(sizeof(float) * total);
    arena->count = arena->floats ? total : 0;
    if (!arena->floats) return 0;
  }
  float *at = arena->floats;
#define NET_TAKE(count) (at += ((count) + 15) & ~(size_t)15, at - (((count) + 15) & ~(size_t)15))
  S->act = (float **)ptrs;
  S->dact = S->act + P->numBuffers;
  S->r = S->dact + P->numBuffers;
  S->act[0] = S->dact[0] = NULL;
  for (int i = 1; i < P->numBuffers; i++) {
    S->act[i] = NET_TAKE(net_elems(P, B, i));
    S->dact[i] = NET_TAKE(net_elems(P, B, i));
  }
  int bi = 0;
  for (int o = 0; o < P->numOps; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    if (op[0] == NET_BN) S->r[bi++] = NET_TAKE((size_t)P->shapes[3 * op[1] + 2]);
  }
  S->convCols = (float **)(S->r + bns);
  int ci = 0;
  for (int o = 0; o < P->numOps; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    if (op[0] != NET_CONV) continue;
    ConvGeom g;
    net_conv_geom(P, B, op, &g);
    S->convCols[ci++] = keep && !(g.k == 1 && g.s == 1) ? NET_TAKE((size_t)B * g.Ho * g.Wo * g.k * g.k * g.C) : NULL;
  }
  S->poolArg = (int32_t **)(S->convCols + convs);
  for (int o = 0; o < P->numOps; o++) {
    const int32_t *op = P->ops + (size_t)o * NET_OP_LEN;
    if (op[0] == NET_MAXPOOL) S->poolArg[op[2]] = (int32_t *)NET_TAKE(net_elems(P, B, op[2]));
  }
  S->cols = NET_TAKE(cols);
  S->dcols = NET_TAKE(cols);
  S->wt = NET_TAKE(wt);
  S->pooled = NET_TAKE(pooled);
  S->dpooled = NET_TAKE(pooled);
  S->logits = NET_TAKE(logits);
  S->dbl = (double *)NET_TAKE(2 * 5 * (size_t)maxC);
  S->bnf = NET_TAKE(3 * (size_t)maxC);
  S->pad = NET_TAKE(pad);
#undef NET_TAKE
  return 1;
}

/* hk.BatchNorm's moving-average decay */
#define NET_EMA_DECAY 0.9f

/*
 * The moving averages of one statistic for N tasks (src/resnet.ts `emaUpdateAllStacked`, float32
 * operations each rounded once as tf.js rounds them): counter = prev + 1 (from 0 when prevCounter
 * is NULL), hidden = h·decay + v·(1 − decay) (h = 0 when NULL), average = hidden / (1 − decay^counter).
 */
static void net_ema(int N, int C, const float *v, const int32_t *prevCounter, const float *prevHidden, int32_t *counter, float *hidden, float *average) {
  const float decay = NET_EMA_DECAY, omd = (float)(1.0 - (double)decay);
  for (int n = 0; n < N; n++) {
    const int32_t c = (prevCounter ? prevCounter[n] : 0) + 1;
    counter[n] = c;
    const float debias = (float)(1.0 - (double)powf(decay, (float)c));
    for (int ch = 0; ch < C; ch++) {
      const size_t i = (size_t)n * C + ch;
      const float h = prevHidden ? (float)((double)prevHidden[i] * decay) : 0.0f;
      const float hv = (float)((double)h + (double)(float)((double)v[i] * omd));
      hidden[i] = hv;
      average[i] = (float)((double)hv / (double)debias);
    }
  }
}

static napi_value ResnetNetValueAndGrad(napi_env env, napi_callback_info info) {
  napi_value a[14];
  const int variant = lopt_kernel_args(env, info, "resnetNetValueAndGrad", 13, a);
  if (variant < 0) return NULL;
  const NetTaskFn net_task = (NetTaskFn)LOPT_PICK(net_task, variant);
  int32_t *plan, N, B;
  size_t planLen;
  if (!lopt_i32(env, a[0], &plan, &planLen)) return lopt_fail(env, "resnetNetValueAndGrad: plan must be an Int32Array");
  NetPlan P;
  const char *err = net_parse(plan, planLen, &P);
  if (err) {
    char msg[160];
    snprintf(msg, sizeof msg, "resnetNetValueAndGrad: bad plan (%s)", err);
    return lopt_fail(env, msg);
  }
  if (napi_get_value_int32(env, a[1], &N) != napi_ok || N < 1 || napi_get_value_int32(env, a[2], &B) != napi_ok || B < 1)
    return lopt_fail(env, "resnetNetValueAndGrad: N and B must be positive integers");
  float *x, *loss;
  int32_t *label;
  size_t len;
  const size_t perImage = net_elems(&P, B, 0);
  if (!lopt_f32(env, a[3], &x, &len) || len != (size_t)N * perImage) return lopt_fail(env, "resnetNetValueAndGrad: x must be a Float32Array [N, B, H, W, C]");
  if (!lopt_i32(env, a[4], &label, &len) || len != (size_t)N * B) return lopt_fail(env, "resnetNetValueAndGrad: label must be an Int32Array [N, B]");
  const int classes = P.ops[(size_t)(P.numOps - 1) * NET_OP_LEN + 4];
  for (size_t i = 0; i < (size_t)N * B; i++)
    if (label[i] < 0 || label[i] >= classes) return lopt_fail(env, "resnetNetValueAndGrad: a label is outside [0, number of classes)");
  if (!lopt_f32(env, a[6], &loss, &len) || len != (size_t)N) return lopt_fail(env, "resnetNetValueAndGrad: loss must be a Float32Array [N]");
  napi_valuetype gt, pt;
  napi_typeof(env, a[7], &gt);
  napi_typeof(env, a[8], &pt);
  const int withGrad = gt != napi_null && gt != napi_undefined, fromZero = pt == napi_null || pt == napi_undefined;
  const int np = P.numParams, ns = P.numStats, ne = 2 * ns;
  size_t statFloats = 0;
  for (int s = 0; s < ns; s++) statFloats += 2 * (size_t)N * P.statC[s];
  /* pointers: params, grads, their per-task offsets; per statistic mean, var (and per task); per
   * average prev counter, prev hidden, counter, hidden, average; then act, dact, r, convCols, poolArg */
  void **ptrs = malloc(sizeof(void *) * (4 * (size_t)np + 4 * (size_t)ns + 5 * (size_t)ne + 4 * (size_t)P.numBuffers + (size_t)P.numOps + 1));
  float *stats = malloc(sizeof(float) * (statFloats + 1));
  if (!ptrs || !stats) {
    free(ptrs);
    free(stats);
    return lopt_fail(env, "resnetNetValueAndGrad: out of memory");
  }
  float **params = (float **)ptrs, **grads = params + np, **pn = grads + np, **gn = pn + np;
  float **mean = gn + np, **var = mean + ns, **mn = var + ns, **vn = mn + ns;
  int32_t **prevCounter = (int32_t **)(vn + ns), **counter = prevCounter + ne;
  float **prevHidden = (float **)(counter + ne), **hidden = prevHidden + ne, **average = hidden + ne;
  void **rest = (void **)(average + ne);
  const char *bad = NULL;
  for (int i = 0; i < np && !bad; i++) {
    const size_t want = (size_t)N * P.paramSizes[i];
    if (!lopt_f32_at(env, a[5], (uint32_t)i, &params[i], &len) || len != want) bad = "resnetNetValueAndGrad: params[i] must be a Float32Array [N, paramSize i]";
    else if (withGrad && (!lopt_f32_at(env, a[7], (uint32_t)i, &grads[i], &len) || len != want)) bad = "resnetNetValueAndGrad: grads must be shaped like params";
  }
  float *at = stats;
  for (int s = 0; s < ns; s++) {
    mean[s] = at;
    var[s] = at + (size_t)N * P.statC[s];
    at += 2 * (size_t)N * P.statC[s];
  }
  for (int e = 0; e < ne && !bad; e++) {
    const size_t want = (size_t)N * P.statC[e / 2];
    napi_value el;
    if (fromZero) prevCounter[e] = NULL, prevHidden[e] = NULL;
    else if (napi_get_element(env, a[8], (uint32_t)e, &el) != napi_ok || !lopt_i32(env, el, &prevCounter[e], &len) || len != (size_t)N ||
             !lopt_f32_at(env, a[9], (uint32_t)e, &prevHidden[e], &len) || len != want)
      bad = "resnetNetValueAndGrad: prevCounter[e] must be an Int32Array [N] and prevHidden[e] a Float32Array [N, C]";
    if (!bad && (napi_get_element(env, a[10], (uint32_t)e, &el) != napi_ok || !lopt_i32(env, el, &counter[e], &len) || len != (size_t)N ||
                 !lopt_f32_at(env, a[11], (uint32_t)e, &hidden[e], &len) || len != want || !lopt_f32_at(env, a[12], (uint32_t)e, &average[e], &len) || len != want))
      bad = "resnetNetValueAndGrad: counter[e] must be an Int32Array [N], hidden[e] and average[e] Float32Array [N, C]";
  }
  NetScratch S;
  if (!bad && !net_scratch(&P, B, &S, rest, net_arena(env))) bad = "resnetNetValueAndGrad: out of memory";
  if (bad) {
    free(ptrs);
    free(stats);
    return lopt_fail(env, bad);
  }
  for (int n = 0; n < N; n++) {
    for (int i = 0; i < np; i++) {
      pn[i] = params[i] + (size_t)n * P.paramSizes[i];
      gn[i] = withGrad ? grads[i] + (size_t)n * P.paramSizes[i] : NULL;
    }
    for (int s = 0; s < ns; s++) {
      mn[s] = mean[s] + (size_t)n * P.statC[s];
      vn[s] = var[s] + (size_t)n * P.statC[s];
    }
    loss[n] = net_task(&P, B, x + (size_t)n * perImage, label + (size_t)n * B, (const float *const *)pn, withGrad ? gn : NULL, mn, vn, &S);
  }
  for (int e = 0; e < ne; e++) net_ema(N, P.statC[e / 2], e % 2 ? var[e / 2] : mean[e / 2], prevCounter[e], prevHidden[e], counter[e], hidden[e], average[e]);
  free(ptrs);
  free(stats);
  return NULL;
}
