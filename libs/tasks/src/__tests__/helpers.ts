import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { SplitDatasets, TensorBatchStream, type Datasets, type SplitName } from '../index';

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
export async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}

/** A small synthetic 8x8 dataset (learnable: label = argmax of 10 pixel blocks). */
export function syntheticDatasets(): Datasets {
  const n = 512;
  const load = () =>
    tf.tidy(() => {
      const x = random.uniform(random.PRNGKey(0), [n, 8, 8, 1]);
      const label = tf.argMax(tf.reshape(tf.slice(tf.reshape(x, [n, 64]), [0, 0], [n, 60]), [n, 10, 6]).sum(-1), -1).toInt();
      return { image: x, label };
    });
  const abstract = { image: { shape: [8, 8, 1], dtype: 'float32' as tf.DataType }, label: { shape: [], dtype: 'int32' as tf.DataType } };
  const streams = Object.fromEntries(
    ['train', 'inner_valid', 'outer_valid', 'test'].map((s, i) => [s, new TensorBatchStream(load, 128, abstract, i)]),
  ) as Record<SplitName, TensorBatchStream>;
  return new SplitDatasets(streams, { num_classes: 10 });
}


/**
 * Batch-norm test inputs for an NHWC `shape`: x (a sine ramp, shifted by `shift`), per-channel
 * scale and offset ([1, 1, 1, C]), and `up`, an upstream gradient of x's shape.
 */
export function batchNormInputs(shape: number[], shift: number): { x: tf.Tensor4D; scale: tf.Tensor4D; offset: tf.Tensor4D; up: tf.Tensor4D } {
  const n = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  const s4 = shape as [number, number, number, number];
  const x = tf.add(tf.tensor4d(Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2), s4), shift) as tf.Tensor4D;
  const scale = tf.tensor4d(Array.from({ length: c }, (_, i) => 0.5 + Math.cos(i)), [1, 1, 1, c]);
  const offset = tf.tensor4d(Array.from({ length: c }, (_, i) => Math.sin(i * 2)), [1, 1, 1, c]);
  const up = tf.tensor4d(Array.from({ length: n }, (_, i) => Math.cos(i * 0.91)), s4);
  return { x, scale, offset, up };
}
