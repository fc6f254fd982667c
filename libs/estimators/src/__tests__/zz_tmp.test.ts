import * as tf from '@tensorflow/tfjs';
import { random } from '@lopt/core';
import { QuadraticTask } from '@lopt/tasks';
test('x', async () => {
  await tf.setBackend('cpu');
  const task = new QuadraticTask({ dim: 10 });
  const p = task.initBatch([random.PRNGKey(0)]);
  for (let i = 0; i < 3; i++) {
    const b = tf.memory().numTensors;
    const r = tf.tidy(() => { const o = task.valueAndGradBatch(p, null, null, null); return o.loss; });
    r.dispose();
    console.log('vg', tf.memory().numTensors - b);
    const b2 = tf.memory().numTensors;
    const s = task.init(random.PRNGKey(1)) as tf.Tensor; s.dispose();
    console.log('init', tf.memory().numTensors - b2);
  }
});
