import * as tf from '@tensorflow/tfjs';
import { treeDispose } from '@lopt/core';
import type { Optimizer, OptState, Params } from '../base';
import type { MLPLOptState } from '../mlp_lopt';

/** Deterministic float generator for test data (not library code). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export function randArray(r: () => number, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => Math.fround((r() * 2 - 1) * scale));
}

export function randTensor(r: () => number, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(randArray(r, n, scale), shape);
}

/** The values of a tensor leaf of a state or tree (typed loosely: states hold `PyTree`s). */
export function flat(t: unknown): number[] {
  if (!(t instanceof tf.Tensor)) throw new Error(`flat: expected a tensor, got ${typeof t}`);
  return Array.from(t.dataSync());
}

/** A dict-shaped tree (params, gradients, momenta) as the tensors it holds by name. */
export function named(tree: unknown): Record<string, tf.Tensor> {
  return tree as Record<string, tf.Tensor>;
}

export function expectClose(actual: number[], expected: number[], atol = 1e-6, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const tol = atol + rtol * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      throw new Error(`element ${i}: ${actual[i]} vs expected ${expected[i]} (tol ${tol})`);
    }
  }
}

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
export async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}

/** `steps` updates with the same gradient, each replaced state disposed: the tensor count must stay flat. Returns the last state. */
export function expectNoLeakOverUpdates(opt: Optimizer, state: OptState, grad: Params, steps = 100): OptState {
  let s = state;
  const before = tf.memory().numTensors;
  for (let i = 0; i < steps; i++) {
    const ns = opt.update(s, grad);
    treeDispose(s);
    s = ns;
  }
  expect(tf.memory().numTensors).toBe(before);
  return s;
}

/**
 * A stacked MLPLOpt state for N = `iterations.length` tasks (leaves of `shapes` after the task
 * axis, six nonzero momenta, the given iterations) and a gradient, drawn from `rng(9)`.
 */
export function randomMLPLOptState(shapes: Record<string, number[]>, iterations: number[]): { state: MLPLOptState; grad: any } {
  const N = iterations.length;
  const r = rng(9);
  const params: any = {};
  const grad: any = {};
  const m: any = {};
  for (const [k, s] of Object.entries(shapes)) {
    params[k] = randTensor(r, [N, ...s]);
    grad[k] = randTensor(r, [N, ...s], 0.5);
    m[k] = randTensor(r, [N, ...s, 6], 0.2);
  }
  const t = tf.tensor2d(iterations.flatMap((i) => new Array(6).fill(i)), [N, 6], 'int32');
  return { state: { params, rollingFeatures: { m, t }, iteration: tf.tensor1d(iterations, 'int32'), state: null }, grad };
}
