/**
 * Regression: on the wasm backend MLPMixer_FashionMnist_tiny16 aborted the WebAssembly module
 * (`Aborted()` / `memory access out of bounds`) from batch 64 (valueAndGrad) and 128 (loss): the
 * wasm heap is capped at 4 GiB and autodiff of the composed MlpBlock (Dense, gelu, Dense) kept
 * ~10 tensors of the token-mixing hidden size (B·hidden_dim·tokens_mlp_dim) per block alive until
 * the end of backprop. The block is now one op that recomputes its hidden activations in the
 * backward pass. Checked at small sizes: the peak memory of valueAndGradBatch no longer grows
 * with the block count in hidden-size units, and the block's first and second derivatives equal
 * autodiff of the composed formula.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, random } from '@lopt/core';
import { MLPMixerTask, mixerMlpBlock } from '../mlp_mixer';
import { gelu, geluDerivative, geluValue, geluWithDerivative, linear } from '../lm_modules';
import type { FlaxTree } from '../flax_modules';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});

function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), scale);
}

describe('MLP-Mixer on wasm: memory of the MlpBlocks', () => {
  /** valueAndGradBatch's peak live bytes above the start, in token-mixing hidden-layer tensors. */
  function peakHiddenTensors(numBlocks: number): number {
    // Fashion-MNIST 28x28, patch 16 -> 4 tokens; the token-mixing hidden layer is [B, D, tokensMlpDim].
    const B = 16;
    const cfg = { datasetName: 'fashion_mnist' as const, batchSize: B, patchSize: 16, hiddenDim: 64, numBlocks, tokensMlpDim: 256, channelsMlpDim: 128 };
    const task = new MLPMixerTask(cfg);
    const keys = random.split(random.PRNGKey(0), 1);
    const [params, state] = task.initWithStateBatch(keys);
    const data = { image: tf.randomUniform([1, B, 28, 28, 1], 0, 1, 'float32', 1), label: tf.randomUniform([1, B], 0, 10, 'int32', 2) };
    // The engine's live byte count after every kernel.
    const engine = tf.engine() as unknown as { state: { numBytes: number }; runKernel: (...a: unknown[]) => unknown };
    const before = engine.state.numBytes;
    let peak = before;
    const orig = engine.runKernel;
    engine.runKernel = (...a: unknown[]) => {
      const r = orig.apply(engine, a);
      peak = Math.max(peak, engine.state.numBytes);
      return r;
    };
    try {
      const out = task.valueAndGradBatch(params, state, keys, data);
      expect(Number.isFinite(out.loss.dataSync()[0])).toBe(true);
      tf.dispose(out as unknown as tf.TensorContainer);
    } finally {
      engine.runKernel = orig;
    }
    tf.dispose([params as tf.TensorContainer, state as tf.TensorContainer, data.image, data.label]);
    return (peak - before) / (B * cfg.hiddenDim * cfg.tokensMlpDim * 4);
  }

  test('valueAndGradBatch peak memory does not grow by hidden activations per block', () => {
    const one = peakHiddenTensors(1);
    const four = peakHiddenTensors(4);
    // Before the fix each block kept ~11 hidden-size tensors alive until the end of backprop (the
    // wasm heap ran out from batch 64 in tiny16); now a block keeps only small ones (< 1).
    expect((four - one) / 3).toBeLessThan(2);
    expect(four).toBeLessThan(16);
  });

  function block(seed: number): { m: FlaxTree; x: tf.Tensor } {
    const [N, I, H, O] = [2, 5, 7, 3];
    const m: FlaxTree = {
      Dense_0: { kernel: randn([N, I, H], seed + 1), bias: randn([N, H], seed + 2, 0.5) },
      Dense_1: { kernel: randn([N, H, O], seed + 3), bias: randn([N, O], seed + 4, 0.5) },
    };
    return { m, x: randn([N, 4, 2, I], seed) };
  }
  const leaves = (m: FlaxTree) => ['Dense_0', 'Dense_1'].flatMap((d) => [(m[d] as FlaxTree).kernel as tf.Tensor, (m[d] as FlaxTree).bias as tf.Tensor]);
  const withLeaves = (ws: tf.Tensor[]): FlaxTree => ({ Dense_0: { kernel: ws[0]!, bias: ws[1]! }, Dense_1: { kernel: ws[2]!, bias: ws[3]! } });
  const composed = (m: FlaxTree, x: tf.Tensor) => {
    const d = (n: string) => m[n] as FlaxTree;
    return linear(gelu(linear(x, d('Dense_0').kernel as tf.Tensor, d('Dense_0').bias as tf.Tensor)), d('Dense_1').kernel as tf.Tensor, d('Dense_1').bias as tf.Tensor);
  };

  test("gelu's first and second derivatives match central differences of the float64 formula", () => {
    const c = Math.sqrt(2 / Math.PI);
    const a = 0.044715;
    const d1 = (x: number) => {
      const t = Math.tanh(c * (x + a * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x);
    };
    const xs = [-3.2, -1.5, -0.3, 0, 0.4, 1.1, 2.7];
    const [g1, g2] = tf.tidy(() => {
      const x = tf.tensor1d(xs);
      const first = (x: tf.Tensor) => tf.grad((x: tf.Tensor) => tf.sum(gelu(x)))(x);
      return [first(x).arraySync() as number[], tf.grad((x: tf.Tensor) => tf.sum(first(x)))(x).arraySync() as number[]];
    });
    xs.forEach((x, i) => {
      expect(g1[i]).toBeCloseTo(d1(x), 5);
      // (tf.js autodiff of the composed formula gives a different, wrong second derivative here.)
      expect(g2[i]).toBeCloseTo((d1(x + 1e-5) - d1(x - 1e-5)) / 2e-5, 4);
    });
  });

  for (const backend of ['wasm', 'cpu']) {
    test(`${backend}: gelu (x·σ(2c(x + a·x³))) equals the tanh formula in float64; geluWithDerivative = [geluValue, geluDerivative]`, async () => {
      await tf.setBackend(backend);
      try {
        const c = Math.sqrt(2 / Math.PI);
        const a = 0.044715;
        const tanhForm = (x: number) => 0.5 * x * (1 + Math.tanh(c * (x + a * x ** 3)));
        const d1 = (x: number) => {
          const t = Math.tanh(c * (x + a * x ** 3));
          return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x);
        };
        const xs = Array.from({ length: 401 }, (_, i) => -12 + 0.06 * i);
        tf.tidy(() => {
          const x = tf.tensor1d(xs);
          const [g, d] = geluWithDerivative(x);
          const v = geluValue(x).dataSync();
          const dv = geluDerivative(x).dataSync();
          expect(Array.from(g.dataSync())).toEqual(Array.from(v));
          expect(Array.from(d.dataSync())).toEqual(Array.from(dv));
          xs.forEach((xi, i) => {
            expect(Math.abs(v[i]! - tanhForm(xi))).toBeLessThan(2e-6 * Math.max(1, Math.abs(xi)));
            expect(Math.abs(dv[i]! - d1(xi))).toBeLessThan(2e-6);
          });
        });
      } finally {
        await tf.setBackend('wasm');
      }
    });
  }

  for (const backend of ['wasm', 'cpu']) {
    test(`${backend}: mixerMlpBlock's values, gradients and second derivatives equal autodiff of Dense-gelu-Dense`, async () => {
      await tf.setBackend(backend);
      try {
        const { m, x } = block(10);
        const c = randn([2, 4, 2, 3], 20);
        type F = (m: FlaxTree, x: tf.Tensor) => tf.Tensor;
        const first = (f: F) => tf.grads((x: tf.Tensor, ...ws: tf.Tensor[]) => tf.sum(tf.mul(f(withLeaves(ws), x), c)) as tf.Scalar);
        // Second order: d/d(x, w) of the squared norm of the first gradient.
        const second = (f: F) =>
          // (w.r.t. all but Dense_1's bias, which no first derivative depends on)
          tf.grads((x: tf.Tensor, w0: tf.Tensor, b0: tf.Tensor, w1: tf.Tensor) => {
            const g = first(f)([x, w0, b0, w1, leaves(m)[3]!]);
            return tf.addN(g.map((t) => tf.sum(tf.square(t)))) as tf.Scalar;
          });
        const args = [x, ...leaves(m)];
        const check = (a: tf.Tensor[], b: tf.Tensor[], tol: number) => {
          expect(a.length).toBe(b.length);
          a.forEach((t, i) => {
            expect(t.shape).toEqual(b[i]!.shape);
            const scale = Math.max(1, tf.max(tf.abs(b[i]!)).dataSync()[0]!);
            expect(tf.max(tf.abs(tf.sub(t, b[i]!))).dataSync()[0]! / scale).toBeLessThan(tol);
          });
        };
        tf.tidy(() => {
          expect(Array.from(mixerMlpBlock(m, x).dataSync())).toEqual(Array.from(composed(m, x).dataSync()));
          check(first(mixerMlpBlock)(args), first(composed)(args), 1e-5);
          check(second(mixerMlpBlock)(args.slice(0, 4)), second(composed)(args.slice(0, 4)), 1e-4);
        });
        tf.dispose([x, c, ...leaves(m)]);
      } finally {
        await tf.setBackend('wasm');
      }
    });
  }
});
