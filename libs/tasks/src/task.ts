/**
 * BaseTask (single-task methods derived from the batched ones, autodiff `valueAndGradBatch`),
 * `singleTaskToFamily`, and small helpers shared by every task (reference `tasks/base.py`:
 * `Task`'s default methods, `single_task_to_family`, `softmax_cross_entropy`).
 */
import * as tf from '@tensorflow/tfjs';
import { random, treeFlatten, treeMap, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, Datasets, LossAndGrad, LossWithState, ModelState, Params, Task, TaskFamily } from './base';

/** Add a leading axis of 1 to every tensor leaf (one task -> a stack of one). */
export function expandTree<T extends PyTree>(tree: T): T {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.expandDims(x, 0) : x), tree);
}

/** Remove the leading axis of 1 from every tensor leaf (a stack of one -> one task). */
export function squeezeTree<T extends PyTree>(tree: T): T {
  return treeMap((x: unknown) => (x instanceof tf.Tensor ? tf.squeeze(x, [0]) : x), tree);
}

/** Run `fn` in `tf.tidy` for any pytree result (tidy keeps the tensors of the returned tree). */
export function tidyTree<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as unknown as T;
}

function prod(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One host-side draw per key, stacked into a single `[N, ...shape]` tensor (one upload). */
export function stackedSample(
  keys: PRNGKey[],
  shape: number[],
  sampler: (key: PRNGKey, size: number) => Float32Array,
): tf.Tensor {
  const size = prod(shape);
  const out = new Float32Array(keys.length * size);
  keys.forEach((k, i) => out.set(sampler(k, size), i * size));
  return tf.tensor(out, [keys.length, ...shape], 'float32');
}

/** `[N, ...shape]` with row i ~ N(0, 1) from keys[i]. */
export function stackedNormal(keys: PRNGKey[], shape: number[]): tf.Tensor {
  return stackedSample(keys, shape, random.normalArray);
}

/** `[N, ...shape]` with row i ~ U[0, 1) from keys[i]. */
export function stackedUniform(keys: PRNGKey[], shape: number[]): tf.Tensor {
  return stackedSample(keys, shape, (k, n) => random.uniformArray(k, n));
}

/** `jax.lax.stop_gradient`: the value of x, no gradient through it. */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as any) as (x: tf.Tensor) => tf.Tensor;

/** `-Σ labels · log_softmax(logits)` over the last axis. */
export function softmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1)));
}

/** The per-task keys of a stochastic task, or an error naming `who` when `keys` is null. */
function requireKeys(keys: PRNGKey[] | null, who: string): PRNGKey[] {
  if (!keys) throw new Error(`${who}: this task is stochastic and needs one key per task (keys was null)`);
  return keys;
}
export { requireKeys };

/**
 * A task whose subclasses implement `initBatch` and `lossBatch` (and optionally
 * `lossWithStateAndAuxBatch`, `normalizer`, a hand-written `valueAndGradBatch`); everything else
 * follows. The single-task methods add a leading axis of 1 to params and data and remove it again.
 */
export abstract class BaseTask implements Task {
  abstract readonly name: string;
  datasets: Datasets | null = null;

  abstract initBatch(keys: PRNGKey[]): Params;
  abstract lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor;

  initWithStateBatch(keys: PRNGKey[]): [Params, ModelState] {
    return [this.initBatch(keys), null];
  }

  lossWithStateBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch): LossWithState {
    if (state !== null && state !== undefined) {
      throw new Error(`${this.name}: this task has no model state, got a non-null state`);
    }
    return { loss: this.lossBatch(params, keys, data), state: null };
  }

  /** Default: no aux values. Tasks with aux override this. */
  lossWithStateAndAuxBatch(
    params: Params,
    state: ModelState,
    keys: PRNGKey[] | null,
    data: Batch,
  ): LossWithState & { aux: Record<string, tf.Tensor> } {
    return { ...this.lossWithStateBatch(params, state, keys, data), aux: {} };
  }

  /**
   * Autodiff over the sum of the per-task losses: task i's loss depends only on row i of the
   * params, so the gradient of the sum w.r.t. the stack is every task's own gradient.
   */
  valueAndGradBatch(
    params: Params,
    state: ModelState,
    keys: PRNGKey[] | null,
    data: Batch,
    opts: { withAux?: boolean } = {},
  ): LossAndGrad {
    const [leaves, def] = treeFlatten<tf.Tensor>(params);
    let loss: tf.Tensor | null = null;
    let newState: ModelState = null;
    let aux: Record<string, tf.Tensor> = {};
    const f = (...xs: tf.Tensor[]) => {
      const p = treeUnflatten(def, xs);
      const out = opts.withAux
        ? this.lossWithStateAndAuxBatch(p, state, keys, data)
        : { ...this.lossWithStateBatch(p, state, keys, data), aux: {} as Record<string, tf.Tensor> };
      loss = tf.keep(out.loss);
      newState = out.state;
      if (newState) treeMap((t: unknown) => (t instanceof tf.Tensor ? tf.keep(t) : t), newState);
      aux = out.aux;
      for (const v of Object.values(aux)) tf.keep(v);
      return tf.sum(out.loss) as tf.Scalar;
    };
    const { grads, value } = tf.valueAndGrads(f)(leaves);
    value.dispose();
    // `tf.keep` let these out of the gradient scope but would also hide them from the caller's
    // tf.tidy: hand back tracked clones (same data) and release the kept originals.
    const untrack = (t: tf.Tensor) => {
      const c = tf.clone(t);
      t.dispose();
      return c;
    };
    const res: LossAndGrad = {
      loss: untrack(loss!),
      grad: treeUnflatten(def, grads),
      state: newState ? treeMap((t: unknown) => (t instanceof tf.Tensor ? untrack(t) : t), newState) : newState,
    };
    const auxOut: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(aux)) auxOut[k] = untrack(v);
    if (opts.withAux) res.aux = auxOut;
    return res;
  }

  normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.clone(loss);
  }

  // ---- single task: the N=1 case ----
  init(key: PRNGKey): Params {
    return tidyTree(() => squeezeTree(this.initBatch([key])));
  }

  initWithState(key: PRNGKey): [Params, ModelState] {
    return tidyTree(() => {
      const [p, s] = this.initWithStateBatch([key]);
      return [squeezeTree(p), s === null || s === undefined ? null : squeezeTree(s)] as [Params, ModelState];
    });
  }

  loss(params: Params, key: PRNGKey | null, data: Batch): tf.Scalar {
    return tf.tidy(() =>
      tf.reshape(this.lossBatch(expandTree(params), key ? [key] : null, expandTree(data)), []),
    ) as tf.Scalar;
  }

  lossWithState(params: Params, state: ModelState, key: PRNGKey | null, data: Batch): [tf.Scalar, ModelState] {
    return tidyTree(() => {
      const out = this.lossWithStateBatch(
        expandTree(params),
        state === null || state === undefined ? null : expandTree(state),
        key ? [key] : null,
        expandTree(data),
      );
      return [tf.reshape(out.loss, []) as tf.Scalar, out.state ? squeezeTree(out.state) : null] as [tf.Scalar, ModelState];
    });
  }

  lossAndAux(params: Params, key: PRNGKey | null, data: Batch): [tf.Scalar, Record<string, tf.Tensor>] {
    return tidyTree(() => {
      const out = this.lossWithStateAndAuxBatch(expandTree(params), null, key ? [key] : null, expandTree(data));
      const aux: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(out.aux)) aux[k] = tf.reshape(v, v.shape.slice(1));
      return [tf.reshape(out.loss, []) as tf.Scalar, aux] as [tf.Scalar, Record<string, tf.Tensor>];
    });
  }

  /** Single-task value and gradient (params unstacked). */
  valueAndGrad(params: Params, state: ModelState, key: PRNGKey | null, data: Batch): LossAndGrad {
    return tidyTree(() => {
      const out = this.valueAndGradBatch(
        expandTree(params),
        state === null || state === undefined ? null : expandTree(state),
        key ? [key] : null,
        expandTree(data),
      );
      return {
        loss: tf.reshape(out.loss, []),
        grad: squeezeTree(out.grad),
        state: out.state ? squeezeTree(out.state) : null,
      } as LossAndGrad;
    });
  }
}

/** Base for families: `sample` is the N=1 case of `sampleBatch`. */
export abstract class BaseTaskFamily implements TaskFamily {
  abstract readonly name: string;
  datasets: Datasets | null = null;
  abstract sampleBatch(keys: PRNGKey[]): PyTree;
  abstract taskFn(taskParam: PyTree): Task;
  sample(key: PRNGKey): PyTree {
    return tidyTree(() => squeezeTree(this.sampleBatch([key])));
  }
}

/**
 * `single_task_to_family(task)`: a family whose `sample` returns a scalar 0 (`sampleBatch`: `[N]`
 * zeros) and whose `taskFn` always returns `task`; name and datasets from the task.
 */
export function singleTaskToFamily(task: Task, name?: string): TaskFamily {
  return {
    name: name ?? task.name,
    datasets: task.datasets,
    sample: () => tf.scalar(0, 'int32'),
    sampleBatch: (keys: PRNGKey[]) => tf.zeros([keys.length], 'int32'),
    taskFn: () => task,
    ...(task.numParams ? { valueCounts: () => ({ taskParam: 1, params: task.numParams!() }) } : {}),
  };
}
