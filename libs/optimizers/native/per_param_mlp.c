/*
 * The per-parameter MLP of the Adafactor-feature learned optimizers (HyperV2: reference
 * `research/general_lopt/hyper_v2.py`, `_ff_mod`; AdafacMLPLOpt / AdafacNominal:
 * `learned_optimizers/adafac_mlp_lopt.py` / `adafac_nominal.py`, `_mod`) on one leaf of N stacked
 * tasks, fused: the per-parameter features are computed from the leaf's arrays (params, gradient,
 * momenta, RMS, Adafactor accumulators) block by block, second-moment normalised over the leaf
 * (`common.second_moment_normalize(x, axis=[0])`), and fed through the MLP, writing only the wanted
 * outputs of its last layer, `[N, S]` each. No `[S, features]` or `[S, hidden]` array is stored:
 * pass 1 computes the features' second moments, pass 2 computes them again and runs the MLP.
 *
 * The tf.js side (src/per_param_native.ts) describes the features as a small program: each op
 * makes k feature columns from one or two sources (a source of width 1 broadcasts):
 *   COPY a | CLIP a to [-eps, eps] | RSQRT 1/sqrt(a + eps) | MUL_RSQRT a / sqrt(b + eps) |
 *   MUL_SAFE_RSQRT a / sqrt(max(b + eps, 1e-9)) | MUL_FACTORS a * rowFactor * colFactor
 * The Adafactor row / column features themselves are constant along one axis of the leaf: tf.js
 * multiplies them into the first layer at their factored size and passes the result (`term`),
 * which is added per element through an index walk that drops that axis.
 *
 *   perParamMLP(N, S, sources[], widths, factors[2], factorWidth, walks, terms[2], ops, eps,
 *               sizes, w0, bias, layers[], outCols, outs[], stepP, stepScale, expMult, pOut[, variant])
 *
 * sources[s]: [N, S, widths[s]]; factors[a]: the Adafactor row (a = 0) / column (a = 1) factors
 * [N, R_a, factorWidth] or null; walks: Int32Array(6), per slot a (outer, dim, inner) of the axis
 * the slot's arrays lack (dim 0: no walk); terms[a]: [N, R_a, H0] or null; ops: Int32Array of
 * 6 ints per op (code, k, a's channel, a's width, b's channel or -1, b's width); eps: Float32Array,
 * one per op; sizes: Int32Array [F, H0, ..., out] (D = sizes.length - 1 layers); w0: [F, H0] or
 * [N, F, H0]; bias: [N, H0] (b0 and anything else constant over the leaf); layers: w1, b1, ...,
 * each shared or with a leading N (told apart by their length); outCols: Int32Array, the last
 * layer's wanted columns; outs[j]: [N, S]. With stepP ([N, S], else null) the kernel writes the
 * update instead of the outputs: outCols are (direction, magnitude), outs is [], and
 * pOut = stepP − (direction · exp(magnitude · expMult)) · stepScale[n] ([N, S]; stepScale: [N]).
 */
#include <math.h>
#include "lopt_napi.h"

#define BLK 64        /* elements per block */
#define PP_MAX_SRC 16 /* sources per leaf */
#define PP_MAX_CH 64  /* their channels, with the two factors' */
#define PP_MAX_F 64   /* full-size feature columns */
#define PP_MAX_H 64   /* layer widths */
#define PP_MAX_L 8    /* layers */
#define PP_MAX_OUT 8  /* wanted outputs */
#define PP_OP_INTS 6

enum { PP_COPY = 0, PP_CLIP = 1, PP_RSQRT = 2, PP_MUL_RSQRT = 3, PP_MUL_SAFE_RSQRT = 4, PP_MUL_FACTORS = 5 };

/* One leaf of one task, every pointer at that task's data. */
typedef struct {
  int64_t S;
  int nsrc;
  const float *src[PP_MAX_SRC];
  int width[PP_MAX_SRC];
  int walked[2];
  int64_t outer[2], dim[2], inner[2];
  const float *factor[2];
  int factorWidth, factorChannel[2];
  const float *term[2];
  int nops;
  const int32_t *ops;
  const float *eps;
  int F, D;
  const int32_t *sizes;
  const float *w0, *bias;
  const float *w[PP_MAX_L], *b[PP_MAX_L];
  int nout;
  const int32_t *outCols;
  float *out[PP_MAX_OUT];
  /* the step instead of the outputs (stepP non-null): pOut = p − d·exp(m·expMult)·stepScale */
  const float *stepP;
  float *stepOut;
  float stepScale, expMult;
} PPTask;

/* Element index -> index of the same element with one axis dropped: e = (o·dim + j)·inner + i -> o·inner + i. */
typedef struct {
  int64_t dim, inner, o, j, i;
} PPWalk;

static void pp_walk_reset(const PPTask *t, PPWalk w[2]) {
  for (int a = 0; a < 2; a++) w[a] = (PPWalk){t->dim[a], t->inner[a], 0, 0, 0};
}

static inline int64_t pp_walk_next(PPWalk *w) {
  const int64_t at = w->o * w->inner + w->i;
  if (++w->i == w->inner) {
    w->i = 0;
    if (++w->j == w->dim) {
      w->j = 0;
      w->o++;
    }
  }
  return at;
}

#define LOPT_KERNEL_HEADER "per_param_mlp_kernel.h"
#include "lopt_isa.h"

typedef void (*PPTaskFn)(const PPTask *);

static int pp_f32_or_null(napi_env env, napi_value arr, uint32_t i, float **data, size_t *len) {
  napi_value el;
  napi_valuetype type;
  if (napi_get_element(env, arr, i, &el) != napi_ok || napi_typeof(env, el, &type) != napi_ok) return 0;
  if (type == napi_null || type == napi_undefined) {
    *data = NULL;
    *len = 0;
    return 1;
  }
  return lopt_f32(env, el, data, len);
}

/* A layer's array: shared (`size` floats) or per task (N · size); the offset of task n's copy. */
static int pp_per_task(size_t len, size_t size, int32_t N, size_t *stride) {
  if (len == size) *stride = 0;
  else if (len == (size_t)N * size) *stride = size;
  else return 0;
  return 1;
}

#define FAIL(msg) return lopt_fail(env, "perParamMLP: " msg)

static napi_value PerParamMLP(napi_env env, napi_callback_info info) {
  napi_value a[21];
  const int variant = lopt_kernel_args(env, info, "perParamMLP", 20, a);
  if (variant < 0) return NULL;
  const PPTaskFn task_fn = (PPTaskFn)LOPT_PICK(pp_task, variant);
  int32_t N;
  int64_t S;
  if (napi_get_value_int32(env, a[0], &N) != napi_ok || N < 1) FAIL("N must be a positive integer");
  if (napi_get_value_int64(env, a[1], &S) != napi_ok || S < 1) FAIL("S must be a positive integer");
  PPTask t;
  memset(&t, 0, sizeof t);
  t.S = S;
  uint32_t nsrc;
  if (napi_get_array_length(env, a[2], &nsrc) != napi_ok || nsrc < 1 || nsrc > PP_MAX_SRC) FAIL("sources must be an array of 1 to 16 Float32Arrays");
  int32_t *widths;
  size_t wl;
  if (!lopt_i32(env, a[3], &widths, &wl) || wl != nsrc) FAIL("widths must be an Int32Array, one per source");
  float *srcBase[PP_MAX_SRC];
  int ch = 0;
  for (uint32_t s = 0; s < nsrc; s++) {
    size_t len;
    if (!lopt_f32_at(env, a[2], s, &srcBase[s], &len)) FAIL("every source must be a Float32Array");
    if (widths[s] < 1 || len != (size_t)N * (size_t)S * (size_t)widths[s]) FAIL("a source's length is not N * S * its width");
    t.width[s] = widths[s];
    ch += widths[s];
  }
  t.nsrc = (int)nsrc;
  int32_t factorWidth;
  if (napi_get_value_int32(env, a[5], &factorWidth) != napi_ok || factorWidth < 0) FAIL("factorWidth must be a non-negative integer");
  int32_t *walks;
  size_t wkl;
  if (!lopt_i32(env, a[6], &walks, &wkl) || wkl != 6) FAIL("walks must be an Int32Array(6): (outer, dim, inner) per slot");
  float *factorBase[2], *termBase[2];
  size_t factorLen[2], termLen[2], rowsOf[2];
  for (int s = 0; s < 2; s++) {
    t.outer[s] = walks[3 * s];
    t.dim[s] = walks[3 * s + 1];
    t.inner[s] = walks[3 * s + 2];
    t.walked[s] = t.dim[s] > 0;
    if (t.walked[s] && (t.outer[s] < 1 || t.inner[s] < 1 || t.outer[s] * t.dim[s] * t.inner[s] != S)) FAIL("a walk's outer * dim * inner is not S");
    rowsOf[s] = t.walked[s] ? (size_t)(t.outer[s] * t.inner[s]) : 0;
    if (!pp_f32_or_null(env, a[4], s, &factorBase[s], &factorLen[s])) FAIL("factors must be [Float32Array | null, Float32Array | null]");
    if (!pp_f32_or_null(env, a[7], s, &termBase[s], &termLen[s])) FAIL("terms must be [Float32Array | null, Float32Array | null]");
    if ((factorBase[s] || termBase[s]) && !t.walked[s]) FAIL("a factor or term needs its slot's walk");
    if (factorBase[s] && (factorWidth < 1 || factorLen[s] != (size_t)N * rowsOf[s] * (size_t)factorWidth)) FAIL("a factor's length is not N * rows * factorWidth");
    if (factorBase[s]) {
      t.factorChannel[s] = ch;
      ch += factorWidth;
    }
  }
  t.factorWidth = factorWidth;
  if (ch > PP_MAX_CH) FAIL("more than 64 source channels");
  int32_t *ops;
  float *eps;
  size_t opl, epl;
  if (!lopt_i32(env, a[8], &ops, &opl) || opl % PP_OP_INTS != 0) FAIL("ops must be an Int32Array of 6 ints per op");
  if (!lopt_f32(env, a[9], &eps, &epl) || epl * PP_OP_INTS != opl) FAIL("eps must be a Float32Array, one per op");
  int F = 0;
  for (size_t o = 0; o < epl; o++) {
    const int32_t *op = ops + o * PP_OP_INTS;
    const int needsB = op[0] == PP_MUL_RSQRT || op[0] == PP_MUL_SAFE_RSQRT;
    if (op[0] < PP_COPY || op[0] > PP_MUL_FACTORS || op[1] < 1) FAIL("an op has an unknown code or no width");
    if (op[2] < 0 || op[3] < 1 || op[2] + op[3] > ch || (op[3] != 1 && op[3] != op[1])) FAIL("an op's first operand is not a source's channels");
    if (needsB && (op[4] < 0 || op[5] < 1 || op[4] + op[5] > ch || (op[5] != 1 && op[5] != op[1]))) FAIL("an op's second operand is not a source's channels");
    if (op[0] == PP_MUL_FACTORS && (!factorBase[0] || !factorBase[1] || (factorWidth != 1 && factorWidth != op[1]))) FAIL("MUL_FACTORS needs both factors, of width 1 or the op's");
    if (!needsB && op[4] >= 0) FAIL("an op with one operand has a second");
    F += op[1];
  }
  if (F < 1 || F > PP_MAX_F) FAIL("1 to 64 feature columns");
  t.nops = (int)epl;
  t.ops = ops;
  t.eps = eps;
  int32_t *sizes;
  size_t nsizes;
  if (!lopt_i32(env, a[10], &sizes, &nsizes) || nsizes < 2 || nsizes > PP_MAX_L + 1 || sizes[0] != F) FAIL("sizes must be an Int32Array [F, H0, ..., out] with F the ops' columns, at most 8 layers");
  for (size_t l = 1; l < nsizes; l++)
    if (sizes[l] < 1 || sizes[l] > PP_MAX_H) FAIL("layer widths must be 1 to 64");
  t.F = F;
  t.D = (int)nsizes - 1;
  t.sizes = sizes;
  const int H0 = sizes[1];
  for (int s = 0; s < 2; s++)
    if (termBase[s] && termLen[s] != (size_t)N * rowsOf[s] * (size_t)H0) FAIL("a term's length is not N * rows * H0");
  float *w0, *bias;
  size_t w0l, bl, w0Stride;
  if (!lopt_f32(env, a[11], &w0, &w0l) || !pp_per_task(w0l, (size_t)F * H0, N, &w0Stride)) FAIL("w0 must be a Float32Array [F, H0] or [N, F, H0]");
  if (!lopt_f32(env, a[12], &bias, &bl) || bl != (size_t)N * H0) FAIL("bias must be a Float32Array [N, H0]");
  uint32_t nl;
  if (napi_get_array_length(env, a[13], &nl) != napi_ok || nl != 2 * (uint32_t)(t.D - 1)) FAIL("layers must be [w1, b1, ...] for the layers after the first");
  float *wBase[PP_MAX_L] = {0}, *bBase[PP_MAX_L] = {0};
  size_t wStride[PP_MAX_L] = {0}, bStride[PP_MAX_L] = {0};
  for (int l = 1; l < t.D; l++) {
    size_t len;
    if (!lopt_f32_at(env, a[13], 2 * (l - 1), &wBase[l], &len) || !pp_per_task(len, (size_t)sizes[l] * sizes[l + 1], N, &wStride[l])) FAIL("a layer's w must be [in, out] or [N, in, out]");
    if (!lopt_f32_at(env, a[13], 2 * (l - 1) + 1, &bBase[l], &len) || !pp_per_task(len, (size_t)sizes[l + 1], N, &bStride[l])) FAIL("a layer's b must be [out] or [N, out]");
  }
  int32_t *outCols;
  size_t nout;
  if (!lopt_i32(env, a[14], &outCols, &nout) || nout < 1 || nout > PP_MAX_OUT) FAIL("outCols must be an Int32Array of 1 to 8 columns");
  for (size_t j = 0; j < nout; j++)
    if (outCols[j] < 0 || outCols[j] >= sizes[t.D]) FAIL("an output column is past the last layer");
  /* the step: stepP [N, S] or null, stepScale [N], expMult, pOut [N, S] (then outs is []) */
  float *stepP, *stepScale = NULL, *stepOut = NULL;
  size_t lsp, lss, lso;
  double expMult = 0;
  {
    napi_value holder;
    napi_create_array_with_length(env, 1, &holder);
    napi_set_element(env, holder, 0, a[16]);
    if (!pp_f32_or_null(env, holder, 0, &stepP, &lsp)) FAIL("stepP must be a Float32Array [N, S] or null");
  }
  if (stepP) {
    if (lsp != (size_t)N * (size_t)S || nout != 2) FAIL("the step needs stepP [N, S] and the outputs direction, magnitude");
    if (!lopt_f32(env, a[17], &stepScale, &lss) || lss != (size_t)N) FAIL("stepScale must be a Float32Array [N]");
    if (napi_get_value_double(env, a[18], &expMult) != napi_ok) FAIL("expMult must be a number");
    if (!lopt_f32(env, a[19], &stepOut, &lso) || lso != (size_t)N * (size_t)S) FAIL("pOut must be a Float32Array [N, S]");
  }
  uint32_t nouts;
  if (napi_get_array_length(env, a[15], &nouts) != napi_ok || nouts != (stepP ? 0 : nout)) FAIL("outs must hold one Float32Array per output column (none with the step)");
  float *outBase[PP_MAX_OUT];
  for (uint32_t j = 0; j < nouts; j++) {
    size_t len;
    if (!lopt_f32_at(env, a[15], j, &outBase[j], &len) || len != (size_t)N * (size_t)S) FAIL("every output must be a Float32Array [N, S]");
  }
  t.expMult = (float)expMult;
  t.nout = (int)nout;
  t.outCols = outCols;
  for (int32_t n = 0; n < N; n++) {
    for (int s = 0; s < t.nsrc; s++) t.src[s] = srcBase[s] + (size_t)n * S * t.width[s];
    for (int s = 0; s < 2; s++) {
      t.factor[s] = factorBase[s] ? factorBase[s] + (size_t)n * rowsOf[s] * factorWidth : NULL;
      t.term[s] = termBase[s] ? termBase[s] + (size_t)n * rowsOf[s] * H0 : NULL;
    }
    t.w0 = w0 + n * w0Stride;
    t.bias = bias + (size_t)n * H0;
    for (int l = 1; l < t.D; l++) {
      t.w[l] = wBase[l] + n * wStride[l];
      t.b[l] = bBase[l] + n * bStride[l];
    }
    for (size_t j = 0; j < nouts; j++) t.out[j] = outBase[j] + (size_t)n * S;
    t.stepP = stepP ? stepP + (size_t)n * S : NULL;
    t.stepOut = stepP ? stepOut + (size_t)n * S : NULL;
    t.stepScale = stepP ? stepScale[n] : 0.f;
    task_fn(&t);
  }
  return NULL;
}

/*
 * tensorStats(N, S, p, m, km, rms, kr, out): HyperV2's per-tensor LSTM statistics of one leaf
 * (reference hyper_v2.py, `lstm_features_for_tensor`), per task: with
 * nm = rsqrt(max(1e-9, mean p²)), m' = m·nm, rms' = rms·nm (over the leaf):
 *   out[n] = [mean rms' (kr), var m' (km), mean (rms' − mean m')² (max(km, kr))]
 * (sic: the RMS is centred on the momentum's mean, as the reference does). Two passes, sums in
 * double. p: [N, S]; m: [N, S, km]; rms: [N, S, kr]; out: [N, kr + km + max(km, kr)].
 */
#define TS_MAX_K 16
static napi_value TensorStats(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value a[8];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc != 8) return lopt_fail(env, "tensorStats: expected 8 arguments");
  int32_t N, km, kr;
  int64_t S;
  if (napi_get_value_int32(env, a[0], &N) != napi_ok || N < 1) return lopt_fail(env, "tensorStats: N must be a positive integer");
  if (napi_get_value_int64(env, a[1], &S) != napi_ok || S < 1) return lopt_fail(env, "tensorStats: S must be a positive integer");
  if (napi_get_value_int32(env, a[4], &km) != napi_ok || km < 1 || km > TS_MAX_K || napi_get_value_int32(env, a[6], &kr) != napi_ok || kr < 1 || kr > TS_MAX_K ||
      (km != kr && km != 1 && kr != 1))
    return lopt_fail(env, "tensorStats: km and kr must be 1 to 16 and broadcast");
  const int kb = km > kr ? km : kr;
  float *p, *m, *rms, *out;
  size_t lp, lm, lr, lo;
  if (!lopt_f32(env, a[2], &p, &lp) || lp != (size_t)N * S) return lopt_fail(env, "tensorStats: p must be a Float32Array [N, S]");
  if (!lopt_f32(env, a[3], &m, &lm) || lm != (size_t)N * S * km) return lopt_fail(env, "tensorStats: m must be a Float32Array [N, S, km]");
  if (!lopt_f32(env, a[5], &rms, &lr) || lr != (size_t)N * S * kr) return lopt_fail(env, "tensorStats: rms must be a Float32Array [N, S, kr]");
  if (!lopt_f32(env, a[7], &out, &lo) || lo != (size_t)N * (kr + km + kb)) return lopt_fail(env, "tensorStats: out must be a Float32Array [N, kr + km + max(km, kr)]");
  for (int32_t n = 0; n < N; n++) {
    const float *pn = p + (size_t)n * S, *mn = m + (size_t)n * S * km, *rn = rms + (size_t)n * S * kr;
    double sp = 0;
    for (int64_t e = 0; e < S; e++) sp += (double)pn[e] * pn[e];
    const float meanSq = (float)(sp / (double)S);
    const float nm = 1.f / sqrtf(meanSq > 1e-9f ? meanSq : 1e-9f);
    double sm[TS_MAX_K] = {0}, sr[TS_MAX_K] = {0};
    for (int64_t e = 0; e < S; e++) {
      for (int c = 0; c < km; c++) sm[c] += mn[e * km + c] * nm;
      for (int c = 0; c < kr; c++) sr[c] += rn[e * kr + c] * nm;
    }
    float meanM[TS_MAX_K];
    for (int c = 0; c < km; c++) meanM[c] = (float)(sm[c] / (double)S);
    double vm[TS_MAX_K] = {0}, vr[TS_MAX_K] = {0};
    for (int64_t e = 0; e < S; e++) {
      for (int c = 0; c < km; c++) {
        const float d = mn[e * km + c] * nm - meanM[c];
        vm[c] += d * d;
      }
      for (int c = 0; c < kb; c++) {
        const float d = rn[e * kr + (kr == 1 ? 0 : c)] * nm - meanM[km == 1 ? 0 : c];
        vr[c] += d * d;
      }
    }
    float *o = out + (size_t)n * (kr + km + kb);
    for (int c = 0; c < kr; c++) o[c] = (float)(sr[c] / (double)S);
    for (int c = 0; c < km; c++) o[kr + c] = (float)(vm[c] / (double)S);
    for (int c = 0; c < kb; c++) o[kr + km + c] = (float)(vr[c] / (double)S);
  }
  return NULL;
}

/* Adds perParamMLP and tensorStats to the optimizers addon's exports (called from mlp_lopt_step.c's module init). */
void lopt_register_per_param_mlp(napi_env env, napi_value exports) {
  lopt_export(env, exports, "perParamMLP", PerParamMLP);
  lopt_export(env, exports, "tensorStats", TensorStats);
}
