/**
 * Every implementation of the `MLPLOptUpdate` kernel (each instruction-set variant of the native C
 * kernel that is built, each wasm tf.js variant) equals the readable tf.js-ops update
 * `mlpLoptUpdateOps`, on the cpu and wasm backends, shared and per-task θ, matrix / vector / scalar
 * leaves whose sizes are not multiples of the kernels' blocks, nonzero momenta and iterations.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { random, treeDispose, treeStack } from '@lopt/core';
import { MLPLOpt, MLPLOptOptimizer, MLPLOptState, mlpLoptUpdate, mlpLoptUpdateOps } from '../mlp_lopt';
import { mlpLoptKernelApplies, mlpLoptNative, mlpLoptUpdateImpls } from '../native';
import { expectClose, flat, randTensor, rng, named, randomMLPLOptState } from './helpers';

const LEAVES: Record<string, Record<string, number[]>> = {
  // 39 values per task: the wasm blocks variant's batched-matMul MLP
  small: { a: [5, 7], b: [3], c: [] },
  // 121 values per task: its per-task fused-matMul MLP; 13 and 9 are no multiple of 2, 3, 8, 12 or 16
  large: { a: [13, 9], b: [3], c: [] },
};
const ITERATIONS = [0, 37, 5000];

function theta(lopt: MLPLOpt, perTask: boolean): any {
  const one = (seed: number) => {
    const t: any = lopt.init(random.PRNGKey(seed));
    for (const k of Object.keys(t)) {
      tf.dispose(t[k].b);
      t[k].b = randTensor(rng(seed + 50), t[k].b.shape, 0.3);
    }
    return t;
  };
  if (!perTask) return one(4);
  const ts = [1, 2, 3].map(one);
  const stacked = treeStack(ts);
  treeDispose(ts);
  return stacked;
}

function state(shapes: Record<string, number[]>): { state: MLPLOptState; grad: any } {
  return randomMLPLOptState(shapes, ITERATIONS);
}

/**
 * The outputs equal the readable ones to float rounding: the step p − p' to 1e-5 of the largest
 * step plus two float32 ulps of p (p' is rounded), the momenta to 1e-6, the counters exactly.
 */
function expectSameUpdate(got: tf.Tensor[], want: tf.Tensor[], L: number, inputs: Record<string, tf.Tensor>): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < L; i++) {
    expect(got[i].shape).toEqual(want[i].shape);
    const p0 = flat(inputs[`p${i}`]);
    const stepGot = flat(got[i]).map((x, e) => p0[e] - x);
    const stepWant = flat(want[i]).map((x, e) => p0[e] - x);
    const scale = Math.max(...stepWant.map(Math.abs));
    expect(scale).toBeGreaterThan(1e-4); // the update is not trivially 0
    expectClose(stepGot, stepWant, 1e-5 * scale + 2.4e-7, 1e-5);
    expect(got[L + i].shape).toEqual(want[L + i].shape);
    expectClose(flat(got[L + i]), flat(want[L + i]), 1e-7, 1e-6);
  }
  // the counters, iteration + 1 and t + 1
  for (const c of [2 * L, 2 * L + 1]) {
    expect(got[c].dtype).toBe('int32');
    expect(got[c].shape).toEqual(want[c].shape);
    expect(flat(got[c])).toEqual(flat(want[c]));
  }
}

const built = mlpLoptNative() !== null;
const impls = mlpLoptUpdateImpls();

test('the implementations: each native variant where the kernel is built, and the two wasm tf.js variants', () => {
  const names = impls.map((i) => i.name);
  expect(names).toEqual(expect.arrayContaining(['wasm tf.js: host', 'wasm tf.js: blocks']));
  const native = names.filter((n) => n.startsWith('native ('));
  if (built) expect(native).toEqual(mlpLoptNative()!.kernelVariants().map((v) => `native (${v})`));
  else expect(native).toEqual([]);
});

describe.each(['cpu', 'wasm'])('%s backend', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    await tf.ready();
  });

  // [leaves, θ, hidden size, per-task θ]: hidden size 8 is no shape the native kernel is built for
  const cases: Array<[string, string, number, boolean]> = [];
  for (const leaves of Object.keys(LEAVES)) for (const perTask of [false, true]) for (const hidden of [32, 8]) cases.push([leaves, perTask ? 'per-task θ' : 'shared θ', hidden, perTask]);

  test.each(cases)('%s leaves, %s, hidden size %d: every implementation that takes the inputs equals mlpLoptUpdateOps', (leaves, _label, hidden, perTask) => {
    const lopt = new MLPLOpt({ expMult: 0.1, stepMult: 0.01, hiddenSize: hidden });
    const th = theta(lopt, perTask);
    const { state: s, grad } = state(LEAVES[leaves]);
    const opt = lopt.optFn(th, false, perTask) as MLPLOptOptimizer;
    const { inputs, attrs } = opt.kernelArgs(s, grad);
    const want = mlpLoptUpdateOps(inputs, attrs);
    const ran: string[] = [];
    for (const impl of impls) {
      if (!impl.handles(inputs, attrs)) continue;
      const before = tf.memory().numTensors;
      const got = impl.run(inputs, attrs);
      expect(tf.memory().numTensors - before).toBe(got.length); // only the outputs are new
      try {
        expectSameUpdate(got, want, attrs.numLeaves, inputs);
      } catch (e) {
        throw new Error(`${impl.name}: ${(e as Error).message}`);
      }
      ran.push(impl.name);
      tf.dispose(got);
    }
    // what each case must have compared
    expect(ran).toEqual(expect.arrayContaining(['wasm tf.js: host', 'wasm tf.js: blocks']));
    if (built && hidden === 32) expect(ran.filter((n) => n.startsWith('native ('))).toHaveLength(mlpLoptNative()!.kernelVariants().length);
    // the optimizer itself runs a registered kernel where one takes the inputs, else these ops
    const viaOptimizer = opt.updateBatch(s, grad);
    const expectKernel = (built && hidden === 32) || backend === 'wasm';
    expect(mlpLoptKernelApplies(inputs, attrs)).toBe(expectKernel);
    const viaOptimizerOut = [...Object.values(named(viaOptimizer.params)), ...Object.values(named(viaOptimizer.rollingFeatures.m)), viaOptimizer.iteration, viaOptimizer.rollingFeatures.t] as tf.Tensor[];
    expectSameUpdate(viaOptimizerOut, want, attrs.numLeaves, inputs);
    expect(flat(viaOptimizer.iteration)).toEqual(ITERATIONS.map((i) => i + 1));
    expect(viaOptimizer.iteration.dtype).toBe('int32');
    expect(flat(viaOptimizer.rollingFeatures.t)).toEqual(ITERATIONS.flatMap((i) => new Array(6).fill(i + 1)));
    treeDispose([want, viaOptimizer, s, grad, th]);
  });

  test('under a gradient tape no kernel runs: the update is differentiable and equals the ops', () => {
    const lopt = new MLPLOpt({ expMult: 0.1, stepMult: 0.01 });
    const th: any = theta(lopt, true);
    const { state: s, grad } = state(LEAVES.small);
    const opt = lopt.optFn(th, false, true) as MLPLOptOptimizer;
    const { inputs, attrs } = opt.kernelArgs(s, grad);
    const lossOf = (run: typeof mlpLoptUpdateOps) => (w0: tf.Tensor) => tf.sum(tf.square(run({ ...inputs, w0 }, attrs)[0]));
    let applied: boolean | undefined;
    const g = flat(
      tf.grad((w0: tf.Tensor) => {
        applied = mlpLoptKernelApplies(inputs, attrs);
        return lossOf(mlpLoptUpdate)(w0);
      })(inputs.w0),
    );
    expect(applied).toBe(false);
    expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(0);
    expectClose(g, flat(tf.grad(lossOf(mlpLoptUpdateOps))(inputs.w0)), 1e-6, 1e-4);
    treeDispose([s, grad, th]);
  });
});

// The native kernel puts parameters in the vector lanes, a tile of 32 (avx512), 24 (avx2) or 8
// (base) at a time, the last tile of a leaf partly filled: leaves of every size around those
// tiles, large and small alternating, on three tasks.
const TILE_LEAVES: Record<string, number[]> = { a: [7], b: [33], c: [8], d: [65], e: [9], f: [23], g: [1], h: [24], i: [5, 5], j: [31], k: [32], l: [64], m: [] };

(built ? describe : describe.skip)('native tiles', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  test('each native variant equals mlpLoptUpdateOps on leaves of every size around its tiles', () => {
    const lopt = new MLPLOpt({ expMult: 0.1, stepMult: 0.01 });
    const th = theta(lopt, true);
    const { state: s, grad } = state(TILE_LEAVES);
    const opt = lopt.optFn(th, false, true) as MLPLOptOptimizer;
    const { inputs, attrs } = opt.kernelArgs(s, grad);
    const want = mlpLoptUpdateOps(inputs, attrs);
    const native = impls.filter((i) => i.name.startsWith('native ('));
    expect(native.map((i) => i.name)).toEqual(mlpLoptNative()!.kernelVariants().map((v) => `native (${v})`));
    for (const impl of native) {
      expect(impl.handles(inputs, attrs)).toBe(true);
      const got = impl.run(inputs, attrs);
      try {
        expectSameUpdate(got, want, attrs.numLeaves, inputs);
      } catch (e) {
        throw new Error(`${impl.name}: ${(e as Error).message}`);
      }
      tf.dispose(got);
    }
    treeDispose([want, s, grad, th]);
  });
});
