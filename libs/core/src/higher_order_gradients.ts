/**
 * Gradients of gradients in tfjs-core 4.22 (what TruncatedGrad / FullGrad meta-gradients take
 * through an inner training step, and any Hessian-vector product) drop every term that flows
 * through a kernel's *saved output*. Kernels whose gradient reuses their output (Exp, Tanh,
 * Sigmoid, Softmax, LogSoftmax, Elu, Pow; customGrad ops that save an output) have it cloned for
 * the backward pass (engine.js `saveTensorsForBackwardMode`), and `Engine.clone` records the
 * clone on the tape at once: *before* the node of the kernel that made the output. Backprop walks
 * the tape in reverse, so it passes the kernel's node before it reaches the clone's, and the
 * gradient that arrives through the clone never reaches the kernel's input. Measured before this
 * fix: d/dx [exp'(x)·x] came out exp(x) instead of exp(x)·(1 + x), silently.
 *
 * `fixHigherOrderGradients` (run when @lopt/core loads) moves the tape nodes of clones made while
 * a kernel runs to just after that kernel's node; nothing else changes (first-order gradients have
 * the same ops and values). It also gives the comparison and logical kernels that have no
 * gradient in tfjs-core a zero one (their outputs are piecewise constant), so nested gradients
 * through masks (`where(x > 0, ...)`, `logSumExp`'s max) do not throw, and Elu's gradient kernel
 * (EluGrad) the gradient it lacks.
 */
import * as tf from '@tensorflow/tfjs';

interface TapeEngine {
  state: { kernelDepth: number; activeTape: unknown[] | null; activeScope: { name: string } };
  clone(x: tf.Tensor): tf.Tensor;
  addTapeNode(kernelName: string, inputs: Record<string, tf.Tensor>, outputs: tf.Tensor[], gradientsFunc: unknown, saved: tf.Tensor[], attrs: Record<string, unknown>): void;
  runKernel(kernelName: string, inputs: Record<string, tf.Tensor>, attrs?: Record<string, unknown>): tf.Tensor;
}

/** Kernels without a registered gradient whose outputs are piecewise constant in their inputs. */
export const ZERO_GRADIENT_KERNELS = ['Equal', 'NotEqual', 'Less', 'LessEqual', 'Greater', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'LogicalXor'] as const;

let fixed = false;

/** Applies the fix described in the file comment to tf.js's engine (idempotent). */
export function fixHigherOrderGradients(): void {
  if (fixed) return;
  fixed = true;
  const engine = tf.engine() as unknown as TapeEngine;
  const addTapeNode = engine.addTapeNode.bind(engine);
  const clone = engine.clone.bind(engine);
  // clones made inside the running kernel, waiting for its own tape node
  let pending: Array<{ tape: unknown[] | null; x: tf.Tensor; y: tf.Tensor }> = [];
  engine.clone = (x: tf.Tensor): tf.Tensor => {
    if (engine.state.kernelDepth === 0) return clone(x);
    // the Identity kernel alone, as Engine.clone runs it; its tape node comes after the kernel's
    const y = engine.runKernel('Identity', { x });
    pending.push({ tape: engine.state.activeTape, x, y });
    return y;
  };
  engine.addTapeNode = (kernelName, inputs, outputs, gradientsFunc, saved, attrs) => {
    const clones = pending;
    pending = [];
    addTapeNode(kernelName, inputs, outputs, gradientsFunc, saved, attrs);
    for (const c of clones) {
      if (c.tape !== engine.state.activeTape) continue;
      // the gradient Engine.clone gives its node: dy as float32
      const grad = (dy: tf.Tensor) => ({ x: () => engine.runKernel('Cast', { x: dy }, { dtype: 'float32' }) });
      addTapeNode(engine.state.activeScope.name, { x: c.x }, [c.y], grad, [], {});
    }
  };
  // Elu's gradient kernel has none: EluGrad(dy, y) = dy·(y < 0 ? y + 1 : 1), so
  // ∂/∂dy = EluGrad(g, y) and ∂/∂y = g·dy·[y < 0]
  if (!tf.getGradient('EluGrad')) {
    tf.registerGradient({
      kernelName: 'EluGrad',
      inputsToSave: ['dy', 'y'],
      gradFunc: (g, saved) => {
        const [dy, y] = saved;
        const neg = tf.cast(tf.less(y, 0), 'float32');
        return { dy: () => engine.runKernel('EluGrad', { dy: g as tf.Tensor, y }), y: () => tf.mul(tf.mul(g as tf.Tensor, dy), neg) };
      },
    });
  }
  // Backprop kernels of convolutions and pools, which tf.js can run but not differentiate (a convnet
  // under TruncatedGrad / FullGrad threw "gradient function not found for Conv2DBackpropFilter").
  // Each is linear in dy (and a conv's in x too), so its gradient is another of these kernels.
  type Attrs = Record<string, unknown>;
  const once = (kernelName: string, config: Omit<tf.GradConfig, 'kernelName'>) => {
    if (!tf.getGradient(kernelName)) tf.registerGradient({ kernelName, ...config });
  };
  // dW = Conv2DBackpropFilter(x, dy): ∂/∂x = Conv2DBackpropInput(dy, G), ∂/∂dy = conv2d(x, G)
  once('Conv2DBackpropFilter', {
    inputsToSave: ['x', 'dy'],
    gradFunc: (g, [x, dy], attrs) => {
      const { strides, pad, dataFormat, dimRoundingMode } = attrs as Attrs;
      return {
        x: () => engine.runKernel('Conv2DBackpropInput', { dy, filter: g as tf.Tensor }, { strides, pad, dataFormat, dimRoundingMode, inputShape: x.shape }),
        dy: () => engine.runKernel('Conv2D', { x, filter: g as tf.Tensor }, { strides, pad, dataFormat, dilations: 1, dimRoundingMode }),
      };
    },
  });
  // the same for depthwise convolutions
  once('DepthwiseConv2dNativeBackpropFilter', {
    inputsToSave: ['x', 'dy'],
    gradFunc: (g, [x, dy], attrs) => {
      const { strides, pad, dimRoundingMode, dilations } = attrs as Attrs;
      return {
        x: () => engine.runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: g as tf.Tensor }, { strides, pad, dimRoundingMode, dilations, inputShape: x.shape }),
        dy: () => engine.runKernel('DepthwiseConv2dNative', { x, filter: g as tf.Tensor }, { strides, pad, dimRoundingMode, dilations, dataFormat: 'NHWC' }),
      };
    },
  });
  // dx = DepthwiseConv2dNativeBackpropInput(dy, W): ∂/∂dy = depthwiseConv2d(G, W), ∂/∂W = BackpropFilter(G, dy)
  once('DepthwiseConv2dNativeBackpropInput', {
    inputsToSave: ['dy', 'filter'],
    gradFunc: (g, [dy, filter], attrs) => {
      const { strides, pad, dimRoundingMode, dilations } = attrs as Attrs;
      return {
        dy: () => engine.runKernel('DepthwiseConv2dNative', { x: g as tf.Tensor, filter }, { strides, pad, dimRoundingMode, dilations, dataFormat: 'NHWC' }),
        filter: () => engine.runKernel('DepthwiseConv2dNativeBackpropFilter', { x: g as tf.Tensor, dy }, { strides, pad, dimRoundingMode, dilations, filterShape: filter.shape }),
      };
    },
  });
  // dx = AvgPoolGrad(dy, x): linear in dy, ∂/∂dy = avgPool(G); x only gives the shape
  once('AvgPoolGrad', {
    inputsToSave: ['input'],
    gradFunc: (g, [input], attrs) => {
      const { filterSize, strides, pad, dimRoundingMode } = attrs as Attrs;
      return {
        dy: () => engine.runKernel('AvgPool', { x: g as tf.Tensor }, { filterSize, strides, pad, dimRoundingMode }),
        input: () => tf.zeros(input.shape, 'float32'),
      };
    },
  });
  // dx = MaxPoolGrad(dy, input, output) = Aᵀ·dy, where A picks each window's maximum of `input`
  // (the backend's own tie rule: cpu takes the first in row-major order, wasm differs on ties).
  // Linear in dy: ∂/∂dy = A·G, G at each window's maximum, gathered at the indices of
  // MaxPoolWithArgmax on the same backend (the same element MaxPoolGrad picks; checked on cpu and
  // wasm, ties included, in __tests__/higher_order_gradients.test.ts). Piecewise constant in input
  // and output: zero.
  once('MaxPoolGrad', {
    inputsToSave: ['dy', 'input', 'output'],
    gradFunc: (g, [dy, input, output], attrs) => {
      const { filterSize, strides, pad } = attrs as Attrs;
      return {
        dy: () => {
          const [result, indexes] = engine.runKernel('MaxPoolWithArgmax', { x: input }, { filterSize, strides, pad, includeBatchInIndex: true }) as unknown as tf.Tensor[];
          result.dispose();
          if (!tf.util.arraysEqual(indexes.shape, dy.shape)) {
            throw new Error(`MaxPoolGrad's gradient: MaxPoolWithArgmax gave [${indexes.shape}] for dy [${dy.shape}] (pool ${JSON.stringify(attrs)})`);
          }
          return tf.reshape(tf.gather(tf.reshape(g as tf.Tensor, [-1]), tf.reshape(indexes, [-1])), dy.shape);
        },
        input: () => tf.zeros(input.shape, 'float32'),
        output: () => tf.zeros(output.shape, 'float32'),
      };
    },
  });
  for (const kernelName of ZERO_GRADIENT_KERNELS) {
    if (tf.getGradient(kernelName)) continue;
    const names = kernelName === 'LogicalNot' ? ['x'] : ['a', 'b'];
    tf.registerGradient({ kernelName, inputsToSave: names, gradFunc: (_dy, saved) => Object.fromEntries(names.map((k, i) => [k, () => tf.zeros(saved[i].shape, 'float32')])) });
  }
}
