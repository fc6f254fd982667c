/**
 * The `MLPLOptUpdate` kernel's contract, shared by the readable update (mlp_lopt.ts) and the
 * registered implementations (native.ts, mlp_lopt_wasm.ts): one MLPLOpt update of N stacked tasks.
 *
 * Inputs: `p0..p{L-1}` (leaf i of all N tasks, `[N, ...leaf_i]`), `g0..` (same shapes), `m0..`
 * (`[N, ...leaf_i, K]`, one momentum per decay), `t` (the momenta's int32 counters `[N, K]`),
 * `w0, b0, ..., w{D-1}, b{D-1}` (θ: Haiku's `mlp/~/linear_j`, `w [in, out]`, `b [out]`, with a
 * leading `[N]` when `perTask`), `iteration` (int32 `[N]`).
 * Outputs: the new `p0..p{L-1}`, the new `m0..m{L-1}`, `iteration + 1`, `t + 1`.
 */
import * as tf from '@tensorflow/tfjs';
import type { Linear } from './per_param_mlp';

export const MLPLOPT_UPDATE = 'MLPLOptUpdate';

export interface MLPLOptUpdateAttrs {
  /** L, the number of leaves. */
  numLeaves: number;
  /** D, the number of linear layers (hidden layers + 1). */
  numLayers: number;
  /** θ has a leading task axis (thetaIsVector). */
  perTask: boolean;
  expMult: number;
  stepMult: number;
  /** The momenta's decays (K of them). */
  decays: number[];
}

/** The kernel's named inputs. */
export type MLPLOptUpdateInputs = Record<string, tf.Tensor>;

/** An implementation of the kernel other than the readable one (for the comparison test). */
export interface MLPLOptUpdateImpl {
  name: string;
  /** Whether it takes these inputs on the current backend. */
  handles(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): boolean;
  /** Run it on the current backend (no gradient tape). */
  run(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): tf.Tensor[];
}

export interface MLPLOptUpdateArgs {
  ps: tf.Tensor[];
  gs: tf.Tensor[];
  ms: tf.Tensor[];
  t: tf.Tensor;
  layers: Linear[];
  iteration: tf.Tensor;
}

/**
 * The named inputs for leaves `ps, gs, ms` (K momenta per value) and θ `layers` (checked against
 * the MLP's `sizes`, e.g. [19, 32, 32, 2]); a wrong shape is refused with what was expected.
 */
export function packMLPLOptInputs(args: MLPLOptUpdateArgs, sizes: number[], perTask: boolean, K: number): MLPLOptUpdateInputs {
  const { ps, gs, ms, t, layers, iteration } = args;
  const N = iteration.shape[0];
  const inputs: MLPLOptUpdateInputs = {};
  ps.forEach((p, i) => {
    if (p.shape[0] !== N || gs[i].shape.join() !== p.shape.join() || ms[i].shape.join() !== [...p.shape, K].join()) {
      throw new Error(
        `MLPLOpt: leaf ${i} has params of shape [${p.shape}], grads [${gs[i].shape}], momenta [${ms[i].shape}]; expected equal shapes and momenta with a trailing ${K} (N = ${N} tasks first)`,
      );
    }
    inputs[`p${i}`] = p;
    inputs[`g${i}`] = gs[i];
    inputs[`m${i}`] = ms[i];
  });
  layers.forEach((l, j) => {
    const lead = perTask ? [N] : [];
    const want = [
      [...lead, sizes[j], sizes[j + 1]],
      [...lead, sizes[j + 1]],
    ];
    if (l.w.shape.join() !== want[0].join() || l.b.shape.join() !== want[1].join()) {
      throw new Error(
        `MLPLOpt theta 'mlp/~/linear_${j}': w [${l.w.shape}], b [${l.b.shape}]; expected w [${want[0]}], b [${want[1]}]` +
          (perTask ? ` (thetaIsVector: one θ per task, N = ${N})` : ''),
      );
    }
    inputs[`w${j}`] = l.w;
    inputs[`b${j}`] = l.b;
  });
  const int32 = (x: tf.Tensor) => (x.dtype === 'int32' ? x : tf.cast(x, 'int32'));
  inputs.t = int32(t);
  inputs.iteration = int32(iteration);
  return inputs;
}

/** The inverse of `packMLPLOptInputs`. */
export function unpackMLPLOptInputs(inputs: MLPLOptUpdateInputs, attrs: MLPLOptUpdateAttrs): MLPLOptUpdateArgs {
  const leaves = (prefix: string) => Array.from({ length: attrs.numLeaves }, (_, i) => inputs[`${prefix}${i}`]);
  return {
    ps: leaves('p'),
    gs: leaves('g'),
    ms: leaves('m'),
    t: inputs.t,
    layers: Array.from({ length: attrs.numLayers }, (_, j) => ({ w: inputs[`w${j}`], b: inputs[`b${j}`] })),
    iteration: inputs.iteration,
  };
}
