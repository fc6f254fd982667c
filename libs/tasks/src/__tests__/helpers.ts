import * as tf from '@tensorflow/tfjs';

/** The backend the test run asks for (LOPT_TEST_BACKEND -> LOPT_BACKEND, cpu by default). */
export async function useTestBackend(): Promise<void> {
  const name = process.env.LOPT_BACKEND || 'cpu';
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(name);
  await tf.ready();
}
