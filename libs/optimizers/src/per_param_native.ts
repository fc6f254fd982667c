/**
 * The `PerParamMLP` kernel: the per-parameter MLP of the Adafactor-feature learned optimizers
 * (HyperV2, AdafacMLPLOpt, AdafacNominal) on one leaf of N stacked tasks as one native C kernel
 * (`native/per_param_mlp.c`), registered for the wasm and cpu backends like the MLPLOpt kernel
 * (native.ts): the features computed from the leaf's arrays block by block, second-moment
 * normalised over the leaf, the MLP, only the wanted outputs written (`[N, S]` each). It replaces
 * `perParamFirstLayer` + `perParamOutputs` (per_param_mlp.ts), the readable tf.js form that stays
 * the reference (and runs under a gradient tape, on other backends, with LOPT_NATIVE=off, or
 * where the addon is not built): those need tens of elementwise kernels over `[N, S, k]` arrays.
 *
 * The caller describes the MLP's inputs in the order of the first layer's rows: each either a
 * {@link NativeFeature} (an elementwise formula of `[N, S, k]` arrays, computed in the kernel) or an
 * Adafactor row / column input at its factored size (a `PerParamInput` with `broadcastAt`), whose
 * first-layer term tf.js computes at that size, as `perParamFirstLayer` does, and the kernel adds
 * per element.
 */
import * as tf from '@tensorflow/tfjs';
import { nativeUsable, nativeVariantArg, registerNativeKernel } from '@lopt/core';
import { mlpLoptNative } from './native';
import type { Linear, PerParamInput } from './per_param_mlp';

/** The kernel's name (tf.js kernel registry). */
export const PER_PARAM_MLP = 'PerParamMLP';

/**
 * One full-size input of the MLP, `width` feature columns computed per element from `[N, S, k]`
 * arrays (an array of width 1 broadcasts over the columns):
 * `copy` a · `clip` a to [−eps, eps] · `rsqrt` 1/√(a + eps) · `mulRsqrt` a/√(b + eps) ·
 * `mulSafeRsqrt` a/√max(b + eps, 1e-9) · `mulFactors` a · rowFactor · colFactor (the leaf's
 * Adafactor factors, {@link PerParamNativeLeaf}.factors).
 */
export interface NativeFeature {
  op: 'copy' | 'clip' | 'rsqrt' | 'mulRsqrt' | 'mulSafeRsqrt' | 'mulFactors';
  a: tf.Tensor;
  b?: tf.Tensor;
  eps?: number;
  width: number;
}

/** One leaf for the kernel: its shape `[N, ...leaf]`, the MLP's inputs in W0's row order, the Adafactor factors. */
export interface PerParamNativeLeaf {
  leafShape: number[];
  inputs: Array<NativeFeature | PerParamInput>;
  /**
   * `row` (the leaf without axis d0, `[N, ..., kf]`) and `col` (without d1): the Adafactor row and
   * column factors that `mulFactors` multiplies by.
   */
  factors?: { row: tf.Tensor; col: tf.Tensor; d0: number; d1: number };
}

const OPS = ['copy', 'clip', 'rsqrt', 'mulRsqrt', 'mulSafeRsqrt', 'mulFactors'] as const;
/** The C kernel's limits (per_param_mlp.c). */
const MAX = { sources: 16, channels: 64, features: 64, width: 64, layers: 8, outputs: 8 };

function isNative(x: NativeFeature | PerParamInput): x is NativeFeature {
  return (x as NativeFeature).op !== undefined;
}

let registered = false;

/** The addon, with the kernel registered; null where the native kernels are not in use. */
function addon() {
  const native = mlpLoptNative();
  if (native && !registered) {
    registered = true;
    registerNativeKernel(PER_PARAM_MLP, (inputs, attrs, io) => {
      const a = attrs as Record<string, any>;
      const N = a.N as number;
      const S = a.S as number;
      // with the step, one output (the new parameters) instead of the MLP's outputs
      const outTensors = Array.from({ length: a.withStep ? 1 : (a.outCols as Int32Array).length }, () => io.alloc([N, S], 'float32'));
      const f32 = (name: string) => (inputs[name] ? (io.view(inputs[name]) as Float32Array) : null);
      const layers: Float32Array[] = [];
      for (let l = 1; l < a.numLayers; l++) layers.push(f32(`w${l}`)!, f32(`b${l}`)!);
      native.perParamMLP(
        N,
        S,
        Array.from({ length: a.numSources }, (_, s) => f32(`s${s}`)!),
        a.widths,
        [f32('factor0'), f32('factor1')],
        a.factorWidth,
        a.walks,
        [f32('term0'), f32('term1')],
        a.ops,
        a.eps,
        a.sizes,
        f32('w0')!,
        f32('bias')!,
        layers,
        a.outCols,
        a.withStep ? [] : outTensors.map((t) => io.view(t) as Float32Array),
        a.withStep ? f32('stepP') : null,
        a.withStep ? f32('stepScale') : null,
        a.expMult ?? 0,
        a.withStep ? (io.view(outTensors[0]) as Float32Array) : null,
        nativeVariantArg(),
      );
      return outTensors;
    });
    registerNativeKernel(TENSOR_STATS, (inputs, attrs, io) => {
      const { N, S, km, kr } = attrs as Record<string, number>;
      const out = io.alloc([N, kr + km + Math.max(km, kr)], 'float32');
      const f32 = (t: (typeof inputs)[string]) => io.view(t) as Float32Array;
      native.tensorStats(N, S, f32(inputs.p), f32(inputs.m), km, f32(inputs.rms), kr, f32(out));
      return [out];
    });
  }
  return native;
}

/** The HyperV2 tensor-statistics kernel's name (tf.js kernel registry). */
export const TENSOR_STATS = 'HyperV2TensorStats';

/**
 * HyperV2's per-tensor LSTM statistics of one leaf (reference hyper_v2.py,
 * `lstm_features_for_tensor`) by the native kernel, or null where it does not run: with
 * `nm = rsqrt(max(1e-9, mean p²))` over the leaf, `meanRms = mean(rms·nm)` `[N, kr]`,
 * `varM = mean((m·nm − mean(m·nm))²)` `[N, km]` and `varRms = mean((rms·nm − mean(m·nm))²)`
 * `[N, max(km, kr)]` (the RMS centred on the momenta's mean, as the reference does). `p`:
 * `[N, ...leaf]`, `m` / `rms`: `[N, ...leaf, km / kr]`.
 */
export function tensorStatsNative(p: tf.Tensor, m: tf.Tensor, rms: tf.Tensor): { meanRms: tf.Tensor; varM: tf.Tensor; varRms: tf.Tensor } | null {
  const [km, kr] = [m.shape[m.rank - 1], rms.shape[rms.rank - 1]];
  if (!perParamNativeUsable() || km > 16 || kr > 16 || [p, m, rms].some((t) => t.dtype !== 'float32')) return null;
  const N = p.shape[0];
  const S = p.size / N;
  if (S === 0) return null;
  const [out] = tf.engine().runKernel(TENSOR_STATS, { p, m, rms } as any, { N, S, km, kr } as any) as unknown as tf.Tensor[];
  const kb = Math.max(km, kr);
  return { meanRms: tf.slice(out, [0, 0], [N, kr]), varM: tf.slice(out, [0, kr], [N, km]), varRms: tf.slice(out, [0, kr + km], [N, kb]) };
}

/** Whether the kernel can run now: the addon is in use, the backend is wasm or cpu, no gradient tape records. */
export function perParamNativeUsable(): boolean {
  return nativeUsable() && addon() !== null;
}

/** `(outer, dim, inner)` of axis `at` of `shape`: element e = (o·dim + j)·inner + i. */
function walkOf(shape: number[], at: number): number[] {
  const prod = (s: number[]) => s.reduce((x, y) => x * y, 1);
  return [prod(shape.slice(0, at)), shape[at], prod(shape.slice(at + 1))];
}

/**
 * The step the kernel can apply itself, from the MLP's outputs (direction d, magnitude m):
 * `p − (d · exp(m · expMult)) · scale` per task, `p` the leaf `[N, ...]`, `scale` `[N]`.
 */
export interface PerParamNativeStep {
  p: tf.Tensor;
  scale: tf.Tensor;
  expMult: number;
}

/**
 * The MLP's outputs `outputs` (columns of its last layer), `[N, S]` each, for one leaf by the native
 * kernel, or null where it does not run (see {@link perParamNativeUsable}; also for shapes past its
 * limits): the caller then runs the tf.js form. `w0`: the first layer's rows for `leaf.inputs`,
 * `[F, H]` or `[N, F, H]`; `b0`: `[N, H]` (the bias plus anything constant over the leaf);
 * `layers`: the MLP's layers (the first one's weights are `w0`), shared or per task (`perTask`).
 * With `step` (and `outputs` the direction and magnitude columns) it returns instead the one
 * tensor `p − (d · exp(m · expMult)) · scale` `[N, S]`, without the outputs ever stored.
 */
export function perParamMLPNative(
  leaf: PerParamNativeLeaf,
  w0: tf.Tensor,
  b0: tf.Tensor,
  layers: Linear[],
  outputs: number[],
  perTask: boolean,
  step?: PerParamNativeStep,
): tf.Tensor[] | null {
  if (!perParamNativeUsable() || leaf.leafShape.includes(0)) return null;
  const [N, ...shp] = leaf.leafShape;
  const S = Math.max(1, shp.reduce((x, y) => x * y, 1));
  const H = b0.shape[1] as number;
  const widths = leaf.inputs.map((x) => (isNative(x) ? x.width : (x.x.shape[2] as number)));
  const full = leaf.inputs.filter(isNative);
  const F = full.reduce((s, f) => s + f.width, 0);
  const sizes = [F, ...layers.map((l) => l.w.shape[l.w.rank - 1] as number)];
  if (F < 1 || F > MAX.features || layers.length > MAX.layers || outputs.length > MAX.outputs || sizes.slice(1).some((s) => s > MAX.width)) return null;
  const lead = perTask ? [N] : [];
  const z = lead.map(() => 0);
  // the first layer's rows of the full-size inputs, and of the factored ones (their term below)
  const rowsOf = (keep: (i: number) => boolean): tf.Tensor | null => {
    const parts: tf.Tensor[] = [];
    let off = 0;
    leaf.inputs.forEach((_, i) => {
      if (keep(i)) parts.push(tf.slice(w0, [...z, off, 0], [...lead, widths[i], H]));
      off += widths[i];
    });
    return parts.length === 0 ? null : parts.length === 1 ? parts[0] : tf.concat(parts, lead.length);
  };
  const w0Full = rowsOf((i) => isNative(leaf.inputs[i]));
  // the Adafactor row / column inputs: slot 0 is the axis the row factors lack (d0), slot 1 the column's (d1)
  const axes: number[] = leaf.factors ? [leaf.factors.d0, leaf.factors.d1] : [];
  const factored = leaf.inputs.filter((x): x is PerParamInput => !isNative(x));
  for (const f of factored) if (!axes.includes(f.broadcastAt!)) axes.push(f.broadcastAt!);
  if (axes.length > 2) return null;
  const terms: (tf.Tensor | null)[] = [null, null];
  if (factored.length > 0) {
    // as perParamFirstLayer: r = rsqrt(1e-5 + mean x²) per column over the factored rows (the mean
    // over the leaf of a broadcast input), each input times its scaled rows, summed per axis
    const wF = rowsOf((i) => !isNative(leaf.inputs[i]))!;
    const meanSq = factored.map(({ x }) => tf.mean(tf.square(x), 1));
    const r = tf.rsqrt(tf.add(1e-5, meanSq.length === 1 ? meanSq[0] : tf.concat(meanSq, 1)));
    const wScaled = tf.mul(wF, tf.expandDims(r, 2)); // [N, Ff, H]
    let off = 0;
    factored.forEach(({ x, broadcastAt }) => {
      const k = x.shape[2] as number;
      const t = tf.matMul(x, tf.slice(wScaled, [0, off, 0], [N, k, H])); // [N, R, H]
      off += k;
      const slot = axes.indexOf(broadcastAt!);
      terms[slot] = terms[slot] ? tf.add(terms[slot]!, t) : t;
    });
  }
  // the sources: every distinct array the features read, as [N, S, k]
  const sources: tf.Tensor[] = [];
  const channel: number[] = [];
  let channels = 0;
  const sourceOf = (t: tf.Tensor): [number, number] => {
    let s = sources.findIndex((u) => u === t);
    if (s < 0) {
      if (t.dtype !== 'float32' || t.size % (N * S) !== 0) throw new Error(`PerParamMLP: a feature source of shape [${t.shape}] is not float32 [N, S, k] (N = ${N}, S = ${S})`);
      s = sources.push(t) - 1;
      channel.push(channels);
      channels += t.size / (N * S);
    }
    return [channel[s], sources[s].size / (N * S)];
  };
  const ops: number[] = [];
  const eps: number[] = [];
  for (const f of full) {
    const [ac, aw] = sourceOf(f.a);
    const [bc, bw] = f.b ? sourceOf(f.b) : [-1, 0];
    ops.push(OPS.indexOf(f.op), f.width, ac, aw, bc, bw);
    eps.push(f.eps ?? 0);
  }
  const kf = leaf.factors ? (leaf.factors.row.shape[leaf.factors.row.rank - 1] as number) : 0;
  if (sources.length > MAX.sources || channels + 2 * kf > MAX.channels) return null;
  const walks = [0, 1].flatMap((slot) => (slot < axes.length ? walkOf(shp, axes[slot]) : [0, 0, 0]));
  const inputs: Record<string, tf.Tensor> = { w0: w0Full!, bias: b0 };
  sources.forEach((t, s) => (inputs[`s${s}`] = t));
  if (leaf.factors) {
    inputs.factor0 = leaf.factors.row;
    inputs.factor1 = leaf.factors.col;
  }
  terms.forEach((t, slot) => {
    if (t) inputs[`term${slot}`] = t;
  });
  layers.slice(1).forEach((l, i) => {
    inputs[`w${i + 1}`] = l.w;
    inputs[`b${i + 1}`] = l.b;
  });
  if (step) {
    if (outputs.length !== 2 || step.p.size !== N * S || step.scale.size !== N) throw new Error(`PerParamMLP: the step needs 2 outputs (direction, magnitude), p [N, S] and scale [N] (N = ${N}, S = ${S})`);
    inputs.stepP = step.p;
    inputs.stepScale = step.scale;
  }
  const attrs = {
    N,
    S,
    numSources: sources.length,
    numLayers: layers.length,
    widths: Int32Array.from(sources.map((t) => t.size / (N * S))),
    factorWidth: kf,
    walks: Int32Array.from(walks),
    ops: Int32Array.from(ops),
    eps: Float32Array.from(eps),
    sizes: Int32Array.from(sizes),
    outCols: Int32Array.from(outputs),
    withStep: step !== undefined,
    expMult: step?.expMult ?? 0,
  };
  return tf.engine().runKernel(PER_PARAM_MLP, inputs as any, attrs as any) as unknown as tf.Tensor[];
}
