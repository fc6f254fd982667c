import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { nativeStatus, random, treeDispose, treeLeaves, treeStack, useNativeVariant } from '@lopt/core';
import { MLPLOpt, MLPLOptOptimizer, MLPLOptState, mlpLoptNative, mlpLoptUpdateOps } from '../index';
import { flat, randTensor, rng, useTestBackend, named, randomMLPLOptState } from './helpers';

beforeAll(useTestBackend);

const hasCompiler = ['cc', 'gcc', 'clang'].some((c) => spawnSync(c, ['--version']).status === 0);
const wanted = (process.env.LOPT_NATIVE ?? 'auto').toLowerCase() !== 'off';

test('the native kernel is built and loaded wherever a C compiler is (npm run build builds it)', () => {
  if (!hasCompiler || !wanted) {
    expect(mlpLoptNative()).toBeNull();
    return;
  }
  mlpLoptNative();
  // on failure the status says why, e.g. "MLPLOpt off: not built (...); build them with ..."
  expect(nativeStatus()).toMatch(/MLPLOpt \((avx512|avx2|base)\)/);
  expect(mlpLoptNative()).not.toBeNull();
  expect(mlpLoptNative()!.kernelVariants()).toContain('base');
});

const native = mlpLoptNative() ? describe : describe.skip;

function perTaskTheta(lopt: MLPLOpt, N: number): any {
  return treeStack(
    Array.from({ length: N }, (_, n) => {
      const t: any = lopt.init(random.PRNGKey(n + 1));
      for (const k of Object.keys(t)) t[k].b = randTensor(rng(n + 50), t[k].b.shape, 0.3);
      return t;
    }),
  );
}

/** Leaves whose sizes are not multiples of the kernel's 4-row block, a scalar leaf, nonzero momenta and iterations. */
function makeState(iterations: number[]): { state: MLPLOptState; grad: any } {
  return randomMLPLOptState({ a: [5, 7], b: [3], c: [] }, iterations);
}

// Every instruction-set variant is compared with the readable tf.js ops in mlp_lopt_kernels.test.ts.
native('native MLPLOpt kernel', () => {
  test('a variant this CPU lacks is refused by name', () => {
    expect(() => useNativeVariant('sse9')).toThrow(/native variant 'sse9': this CPU runs .*base/);
  });

  test('a NaN gradient makes only its own task NaN (relu keeps NaN as jax.nn.relu does)', () => {
    const lopt = new MLPLOpt();
    const theta = perTaskTheta(lopt, 2);
    const { state, grad } = makeState([1, 1]);
    const g = grad.a.arraySync();
    g[1][0][0] = NaN;
    grad.a = tf.tensor(g);
    const opt = lopt.optFn(theta, false, true) as MLPLOptOptimizer;
    const viaNative = opt.updateBatch(state, grad);
    const { inputs, attrs } = opt.kernelArgs(state, grad);
    const viaOps = mlpLoptUpdateOps(inputs, attrs);
    const a = flat(named(viaNative.params).a);
    expect(a.slice(0, 35).every(Number.isFinite)).toBe(true);
    expect(a.slice(35).every(Number.isNaN)).toBe(true);
    expect(flat(viaOps[0]).slice(0, 35).every(Number.isFinite)).toBe(true);
    expect(flat(viaOps[0]).slice(35).every(Number.isNaN)).toBe(true);
  });

  test('no tensor leak over 100 native updates', () => {
    const lopt = new MLPLOpt();
    const theta = perTaskTheta(lopt, 2);
    const { state, grad } = makeState([0, 0]);
    const opt = lopt.optFn(theta, false, true);
    let s = opt.updateBatch(state, grad);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const next = opt.updateBatch(s, grad);
      treeDispose(s);
      s = next;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(flat(s.iteration)).toEqual([101, 101]);
    expect(treeLeaves<tf.Tensor>(s.params).every((x) => flat(x).every(Number.isFinite))).toBe(true);
  });

  test('a θ without the task axis (thetaIsVector) is refused with the expected shapes', () => {
    const lopt = new MLPLOpt();
    const theta = lopt.init(random.PRNGKey(0));
    const { state, grad } = makeState([0, 0]);
    expect(() => lopt.optFn(theta, false, true).updateBatch(state, grad)).toThrow(
      "MLPLOpt theta 'mlp/~/linear_0': w [19,32], b [32]; expected w [2,19,32], b [2,32] (thetaIsVector: one θ per task, N = 2)",
    );
  });

  test('bad arguments to the addon are refused with the argument named', () => {
    const addon = mlpLoptNative()!;
    const f = (n: number) => new Float32Array(n);
    const theta = [f(19 * 32), f(32), f(32 * 32), f(32), f(64), f(2)];
    const args = (over: Partial<Record<string, unknown>>) => {
      const a: any = { N: 1, perTask: false, p: [f(4)], g: [f(4)], m: [f(24)], pOut: [f(4)], mOut: [f(24)], theta, it: new Int32Array(1), ...over };
      return () => addon.mlpLoptStep(a.N, a.perTask, a.p, a.g, a.m, a.pOut, a.mOut, a.theta, a.it, new Float32Array(6), new Float32Array(11), 1e-3, 1e-3);
    };
    expect(args({})).not.toThrow();
    expect(args({ theta: theta.slice(0, 5) })).toThrow(/theta must be 6 Float32Arrays/);
    expect(args({ perTask: true, N: 2, p: [f(4)], g: [f(4)], m: [f(24)], pOut: [f(4)], mOut: [f(24)], it: new Int32Array(2) })).toThrow(/theta/);
    expect(args({ m: [f(23)] })).toThrow(/leaf sizes disagree/);
    expect(args({ it: new Float32Array(1) })).toThrow(/iteration must be an Int32Array/);
    expect(args({ g: [f(4), f(4)] })).toThrow(/one entry per leaf/);
  });
});
